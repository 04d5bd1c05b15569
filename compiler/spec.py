"""The user-facing spec language: `apiVersion: specc.dev/v1alpha1`, `kind: TrainingJob`.

Strict pydantic v2 models (unknown keys are errors) with defaults, so a minimal spec is a few
lines. They are the one definition of the language; compiler/validator.py validates with their
pydantic-core schema (snapshotted by `python -m compiler.snapshot`), so every rule here is
data (types, bounds, patterns, unions). Rules that span fields live in compiler/checks.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from compiler.kinds import REPLICA_TYPES
from runtime.config import Framework, StorageConfig, TrainerConfig
from runtime.contract import DEFAULT_IMAGE, MOUNT_PATH_PATTERN  # noqa: F401 - DEFAULT_IMAGE re-exported

API_VERSION = "specc.dev/v1alpha1"
KIND = "TrainingJob"

from compiler.patterns import (
    CONFIG_KEY, DNS1035, DNS1123_LABEL, DNS1123_SUBDOMAIN, ENV_NAME, FIELD_PATH, IMAGE, LABEL_VALUE, LINE, NPROC,
    QUALIFIED_NAME, QUANTITY, RULE_NAME, TEXT, TOLERATION_KEY,
)

#: Bounds of the Kubernetes API's int32 and int64 fields (tests check them against the CRDs).
INT32 = 2**31 - 1
INT64 = 2**63 - 1

Text = Annotated[str, Field(max_length=4096, pattern=TEXT)]
Arg = Annotated[str, Field(max_length=4096, pattern=TEXT)]
Name63 = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)]
Subdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
#: A Kubernetes quantity: `500m`, `2`, `1.5`, `4Gi`, or a number (rendered as a string).
Quantity = Union[Annotated[str, Field(max_length=32, pattern=QUANTITY)], Annotated[int, Field(ge=0, le=INT64)],
                 Annotated[float, Field(ge=0, le=1e15)]]
LabelKey = Annotated[str, Field(max_length=317, pattern=QUALIFIED_NAME)]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]
AbsPath = Annotated[str, Field(min_length=1, max_length=1024, pattern=MOUNT_PATH_PATTERN)]

RestartPolicy = Literal["Always", "OnFailure", "ExitCode", "Never"]


class Strict(BaseModel):
    """Base for spec models: unknown keys are errors, no type coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True, allow_inf_nan=False)


class Metadata(Strict):
    """Name (DNS-1035 label), namespace, labels and annotations of the job."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS1035)
    namespace: Name63 = "default"
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)
    annotations: dict[LabelKey, Text] = Field(default_factory=dict, max_length=64)


class Resources(Strict):
    """Container resources. A replica's resources merge field by field over the spec's."""

    cpu: Quantity | None = Field(default=None, description="CPU request. No CPU limit unless cpuLimit (a limit throttles training).",
                                 examples=["2", "500m", 1.5])
    memory: Quantity | None = Field(default=None, description="Memory request, and the memory limit unless memoryLimit.",
                                    examples=["4Gi"])
    cpuLimit: Quantity | None = Field(default=None, description="CPU limit; at least cpu.", examples=["4"])
    memoryLimit: Quantity | None = Field(default=None, description="Memory limit; at least memory.", examples=["8Gi"])
    gpus: int = Field(default=0, ge=0, le=64, description="NVIDIA GPUs (the nvidia.com/gpu limit).", examples=[1])
    extended: dict[Annotated[str, Field(max_length=253, pattern=QUALIFIED_NAME)], Annotated[int, Field(ge=1, le=INT32)]] = Field(
        default_factory=dict, max_length=16,
        description="Other extended resources (amd.com/gpu, intel.com/gpu, ...) by count; Kubernetes needs their request "
                    "equal to their limit, so they are rendered as limits.", examples=[{"amd.com/gpu": 1}])
    ephemeralStorage: Quantity | None = Field(default=None, description="Local scratch disk request, and its limit unless "
                                              "ephemeralStorageLimit.", examples=["20Gi"])
    ephemeralStorageLimit: Quantity | None = Field(default=None, description="Local scratch disk limit; at least ephemeralStorage.")
    shm: Quantity | None = Field(default=None, description="Size of /dev/shm (a memory-backed emptyDir), for PyTorch DataLoader "
                                 "workers; it counts against the memory limit.", examples=["2Gi"])


class SecretKeyRef(Strict):
    name: Subdomain
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=CONFIG_KEY)]
    optional: bool | None = None


class ConfigMapKeyRef(SecretKeyRef):
    pass


class FieldRef(Strict):
    fieldPath: Annotated[str, Field(min_length=1, max_length=256, pattern=FIELD_PATH)]


class EnvFrom(Strict):
    """A reference instead of a literal value (exactly one)."""

    secretKeyRef: SecretKeyRef | None = None
    configMapKeyRef: ConfigMapKeyRef | None = None
    fieldRef: FieldRef | None = None


EnvValue = Union[Text, EnvFrom]
EnvMap = dict[Annotated[str, Field(min_length=1, max_length=256, pattern=ENV_NAME)], EnvValue]


class PodMetadata(Strict):
    """Labels and annotations for the pods (e.g. `sidecar.istio.io/inject: "false"`)."""

    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64, description="Pod labels.")
    annotations: dict[LabelKey, Text] = Field(default_factory=dict, max_length=64, description="Pod annotations.",
                                              examples=[{"sidecar.istio.io/inject": "false"}])


class PodTemplate(Strict):
    """A Kubernetes PodTemplateSpec fragment merged over the pod specc generates (a strategic merge:
    maps key by key; containers, volumes, env and the like by their merge keys). The main container
    is the one named as the operator names it (tensorflow, pytorch, ... trainer for a batch Job)."""

    metadata: PodMetadata | None = Field(default=None, description="Pod labels and annotations.")
    spec: dict[Annotated[str, Field(max_length=63)], Any] | None = Field(
        default=None, max_length=64,
        description="Any PodSpec fields (checked against the pinned Kubernetes schema): imagePullSecrets, affinity, "
                    "schedulerName, securityContext, initContainers, sidecar containers, volumes, envFrom...",
        examples=[{"imagePullSecrets": [{"name": "regcred"}], "containers": [{"name": "pytorch", "envFrom": [{"secretRef": {"name": "hf-token"}}]}]}])


class Replica(Strict):
    """One replica type: how many, how they restart, what they get."""

    count: int = Field(default=1, ge=1, le=1024, description="How many pods of this type.", examples=[2])
    restartPolicy: RestartPolicy | None = Field(default=None, description="Operator default when omitted (Never for TFJob, "
                                                "OnFailure for PyTorchJob); ExitCode retries exits >= 128 only.")
    resources: Resources | None = Field(default=None, description="Resources of this type, merged field by field over spec.resources.")
    env: EnvMap = Field(default_factory=dict, max_length=256, description="Env for this type, over spec.env.")
    image: str | None = Field(default=None, max_length=512, pattern=IMAGE, description="Image for this type (over spec.image, or "
                              "spec.container.image for a custom container), e.g. a PS with a different image.")
    command: list[Arg] | None = Field(default=None, max_length=256, description="Command for this type (custom containers "
                                      "only), instead of spec.container.command.")
    args: list[Arg] = Field(default_factory=list, max_length=256, description="Extra args appended to the container's.")
    podTemplate: PodTemplate | None = Field(default=None, description="A pod template fragment for this type, merged over "
                                            "spec.podTemplate.")


#: `Worker: 2` is shorthand for `Worker: {count: 2}` (compiler.kinds.replicas expands it).
ReplicaCount = Annotated[int, Field(ge=1, le=1024)]
ReplicaField = Union[ReplicaCount, Replica]


class Container(Strict):
    """A custom image with its own command (the book's images), instead of a built-in trainer."""

    image: str = Field(max_length=512, pattern=IMAGE)
    command: list[Arg] = Field(default_factory=list, max_length=256)
    args: list[Arg] = Field(default_factory=list, max_length=256)
    workingDir: AbsPath | None = None


class EmptyDir(Strict):
    medium: Literal["", "Memory"] = ""
    sizeLimit: Quantity | None = None


class Volume(Strict):
    """A PersistentVolumeClaim or emptyDir mounted into every replica."""

    name: Name63
    mountPath: AbsPath
    persistentVolumeClaim: Subdomain | None = Field(default=None, description="Claim name.")
    emptyDir: EmptyDir | None = None
    readOnly: bool = False


class Credentials(Strict):
    """S3 credentials by reference to a Kubernetes Secret (never literal values)."""

    secretName: Subdomain
    accessKeyKey: Annotated[str, Field(max_length=253, pattern=CONFIG_KEY)] = "AWS_ACCESS_KEY_ID"
    secretKeyKey: Annotated[str, Field(max_length=253, pattern=CONFIG_KEY)] = "AWS_SECRET_ACCESS_KEY"


class Storage(StorageConfig):
    """S3/MinIO endpoint for the trainer's URIs and the Secret holding its credentials."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True, allow_inf_nan=False)
    credentials: Credentials | None = None


class SchedulingPolicy(Strict):
    """runPolicy.schedulingPolicy for gang schedulers (Volcano / scheduler-plugins)."""

    minAvailable: int | None = Field(default=None, ge=1, le=INT32)
    queue: Text | None = None
    minResources: dict[Annotated[str, Field(max_length=253, pattern=QUALIFIED_NAME)], Quantity] | None = None
    priorityClass: Subdomain | None = None
    scheduleTimeoutSeconds: int | None = Field(default=None, ge=1, le=INT32)


class RunPolicy(Strict):
    cleanPodPolicy: Literal["All", "Running", "None"] | None = None
    backoffLimit: int | None = Field(default=None, ge=0, le=1000)
    activeDeadlineSeconds: int | None = Field(default=None, ge=1, le=INT64)
    ttlSecondsAfterFinished: int | None = Field(default=None, ge=0, le=INT32)
    schedulingPolicy: SchedulingPolicy | None = None
    suspend: bool | None = None


class RdzvConf(Strict):
    key: Text
    value: Text


class ElasticPolicy(Strict):
    """PyTorchJob elastic training (torchrun rendezvous)."""

    minReplicas: int | None = Field(default=None, ge=1, le=INT32)
    maxReplicas: int | None = Field(default=None, ge=1, le=INT32)
    rdzvBackend: Literal["c10d", "etcd", "etcd-v2"] | None = None
    rdzvPort: int | None = Field(default=None, ge=1, le=65535)
    rdzvHost: Text | None = None
    rdzvId: Text | None = None
    rdzvConf: list[RdzvConf] | None = None
    standalone: bool | None = None
    maxRestarts: int | None = Field(default=None, ge=0, le=INT32)


class Toleration(Strict):
    """A pod toleration, checked as the API server checks it."""

    key: Annotated[str, Field(max_length=317, pattern=TOLERATION_KEY)] | None = Field(
        default=None, description="Taint key; empty with operator Exists tolerates every taint.")
    operator: Literal["Exists", "Equal"] | None = None
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = Field(default=None, ge=-INT64 - 1, le=INT64, description="Only with effect NoExecute.")


class Scheduling(Strict):
    """Where pods may run and which Kueue queue admits the job."""

    nodeSelector: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list, max_length=64)
    priorityClassName: Subdomain | None = None
    queue: Name63 | None = Field(default=None, description="Kueue LocalQueue (label kueue.x-k8s.io/queue-name).")
    serviceAccountName: Subdomain | None = None


LintRule = Annotated[str, Field(min_length=1, max_length=63, pattern=RULE_NAME)]


class Allow(Strict):
    """One accepted finding: the rule and the field it is about, as diagnostics print it."""

    rule: LintRule = Field(description="The rule, e.g. literal-credential.")
    at: Annotated[str, Field(min_length=1, max_length=1024, pattern=LINE)] = Field(
        description="The field, exactly as the finding names it, e.g. spec.env.PUBLIC_SALT.")
    reason: Text | None = Field(default=None, description="Why this is not a problem (for reviewers).")


class Lint(Strict):
    """`specc lint` settings for this spec; they never change the rendered manifests or the name hash."""

    ignore: list[LintRule] = Field(
        default_factory=list, max_length=32,
        description="Lint rules silenced for this whole spec (`specc lint --list-rules` names them).",
    )
    allow: list[Allow] = Field(
        default_factory=list, max_length=256,
        description="Findings accepted one place at a time (the way to silence a literal-credential false positive).",
    )


class Spec(Strict):
    """What to run, on how many replicas, with which policies."""

    framework: Framework = Field(description="tensorflow -> TFJob, pytorch -> PyTorchJob, sklearn/python -> batch/v1 Job.")
    image: str | None = Field(default=None, max_length=512, pattern=IMAGE, description="Runtime image for built-in trainers.")
    trainer: TrainerConfig | None = Field(default=None, description="A built-in trainer of the runtime.")
    container: Container | None = Field(default=None, description="A custom image + command instead of a trainer.")
    replicas: dict[Literal[REPLICA_TYPES], ReplicaField] | None = Field(default=None, description="Replica types -> settings; default one Worker (PyTorch: Master + Worker).")
    resources: Resources | None = Field(default=None, description="Default resources for every replica.")
    env: EnvMap = Field(default_factory=dict, max_length=256, description="Env for every replica.")
    runPolicy: RunPolicy = Field(default_factory=RunPolicy)
    successPolicy: Literal["", "AllWorkers"] | None = None
    elasticPolicy: ElasticPolicy | None = None
    nprocPerNode: Annotated[str, Field(pattern=NPROC)] | Annotated[int, Field(ge=1, le=9999)] | None = Field(
        default=None, description="Processes per PyTorch node: auto, cpu, gpu or a number.", examples=[4, "gpu"])
    volumes: list[Volume] = Field(default_factory=list, max_length=32)
    podTemplate: PodTemplate | None = Field(default=None, description="A pod template fragment merged over every replica's "
                                            "pod (replica podTemplate over this, this over what specc generates).")
    storage: Storage | None = None
    scheduling: Scheduling = Field(default_factory=Scheduling)
    naming: Literal["hashed", "fixed"] = Field(
        default="hashed",
        description="hashed: append a content hash to the job name so a changed spec re-runs; fixed: keep the name.",
    )
    lint: Lint = Field(default_factory=Lint, description="`specc lint` settings (rules to ignore); not rendered.")


class TrainingJob(Strict):
    """One training job: the whole document of a spec file."""

    apiVersion: Literal[API_VERSION]
    kind: Literal[KIND]
    metadata: Metadata
    spec: Spec
