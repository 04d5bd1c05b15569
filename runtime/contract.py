"""What the compiler and the runtime agree on, importable without pydantic: where the runtime
config lives, its API version, the runtime image, which trainer runs under which framework, the
shape of the URIs and paths both sides accept, and the local runner's path map."""

from __future__ import annotations

RUNTIME_API_VERSION = "specc.dev/runtime/v1"

#: Default runtime image: built from this repository's Dockerfile, tag = package version.
DEFAULT_IMAGE = "ghcr.io/specc-dev/specc-runtime:0.1.0"
#: The non-root user (and group) the runtime image runs as (Dockerfile: USER 10001:10001).
RUNTIME_UID = 10001
#: The runtime's entrypoint in that image.
RUNTIME_COMMAND = "specc-runtime"

#: Where the ConfigMap holding the runtime config is mounted in every container.
CONFIG_MOUNT_DIR = "/etc/specc"
CONFIG_FILE_NAME = "config.json"
CONFIG_PATH = f"{CONFIG_MOUNT_DIR}/{CONFIG_FILE_NAME}"
#: Environment variable that points the runtime at its config file (set in every container).
CONFIG_ENV = "SPECC_CONFIG"
#: Environment variable mapping container mount paths to local folders (JSON object), set by the
#: local runner only; runtime.storage.local_path applies it.
PATH_MAP_ENV = "SPECC_PATH_MAP"

# A node of a Kubeflow Trainer v2 TrainJob (a JobSet pod) finds its place from these; runtime/jobset.py
# turns them into TF_CONFIG or the torch rendezvous variables.
#: The replicated job (and container) of a TrainJob's trainer nodes; pod i's hostname is
#: `<trainjob>-node-0-<i>` under the headless Service `<trainjob>` (JobSet's defaults).
NODE_JOB = "node"
#: Number of nodes, set in the TrainJob's trainer.env.
NUM_NODES_ENV = "SPECC_NUM_NODES"
#: The JobSet's (= the TrainJob's) name, from the pod label below through the downward API.
JOBSET_NAME_ENV = "SPECC_JOBSET_NAME"
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
#: This node's index, from the annotation below (Kubernetes also sets JOB_COMPLETION_INDEX, but
#: after the container's own env, where `$(VAR)` references cannot see it).
NODE_INDEX_ENV = "SPECC_NODE_INDEX"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
#: `host:port` of every node, comma-separated, by index: set by the local runner only, in place of
#: the DNS names that exist only in a cluster.
NODE_ADDRESSES_ENV = "SPECC_NODE_ADDRESSES"
#: The port MultiWorkerMirroredStrategy listens on in a node (the TFJob default), and the torch
#: rendezvous port (Trainer's torch plugin opens 29500 on the node container).
TF_NODE_PORT = 2222
TORCH_NODE_PORT = 29500


def node_host(jobset: str, index: int) -> str:
    """The DNS name of node `index` of a JobSet with JobSet's default network settings."""
    return f"{jobset}-{NODE_JOB}-0-{index}.{jobset}"

#: Which frameworks each built-in trainer runs under.
TRAINER_FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "recommender": ("tensorflow",),
    "income": ("sklearn",),
    "mnist": ("tensorflow", "pytorch"),
}

# Paths: '/'-separated segments without control characters, none of them '..'. Written for the
# Rust regex engine of pydantic-core (no look-around; `$` is the end of the text only).
def _absolute(forbid: str = "") -> str:
    char = rf"[^/{forbid}\x00-\x1f\x7f]"
    first = rf"[^/.{forbid}\x00-\x1f\x7f]"
    segment = rf"(?:\.?|{first}{char}*|\.{first}{char}*|\.\.{char}+)"
    return rf"/{segment}(?:/{segment})*", segment


_ABS, _SEGMENT = _absolute()
#: An absolute path.
#: An absolute path without ':' (a container mountPath or workingDir).
MOUNT_PATH_PATTERN = rf"^{_absolute(':')[0]}$"
#: An s3://bucket/key URI, a file:///absolute URI or an absolute path.
#: An S3 bucket name (3-63 lower-case letters, digits, '.' and '-', a letter or digit at each end).
BUCKET = r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]"
URI_PATTERN = rf"^(?:s3://{BUCKET}(?:/{_SEGMENT})*|file://{_ABS}|{_ABS})$"

_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])"
#: An S3 endpoint: http(s)://host[:port] with no path, user or password.
ENDPOINT_PATTERN = rf"^https?://{_HOST}(?::{_PORT})?/?$"

REGION_PATTERN = r"^[a-z0-9-]{1,32}$"
#: One path segment (the recommender's export folder name).
EXPORT_DIRECTORY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$"

#: The rules above in words, for messages.
PATTERN_RULES = {
    URI_PATTERN: "must be an s3://bucket/key URI, a file:///absolute URI or an absolute path, "
                 "without '..' segments or control characters",
    MOUNT_PATH_PATTERN: "must be an absolute path without ':', '..' segments or control characters",
    ENDPOINT_PATTERN: "must be http(s)://host[:port] (a DNS name, IPv4 or [IPv6] address, port 1-65535), "
                      "e.g. http://minio-service.kubeflow:9000; credentials go in storage.credentials",
    REGION_PATTERN: "must be a region like us-east-1",
    EXPORT_DIRECTORY_PATTERN: "must be one path segment of letters, digits, '.', '_' and '-', starting with a letter or digit",
}


def dump_runtime_config(cfg) -> str:
    """Serialize a runtime config as stable, sorted, indented JSON with a final newline."""
    import json

    return json.dumps(cfg.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
