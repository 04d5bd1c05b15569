"""The user-facing spec language: `apiVersion: specc.dev/v1alpha1`, `kind: TrainingJob`.

Strict pydantic v2 models (unknown keys are errors) with defaults, so a minimal spec is a few
lines. They are the one definition of the language; compiler/validator.py validates with their
pydantic-core schema (snapshotted by `python -m compiler.snapshot`), so every rule here is
data (types, bounds, patterns, unions). Rules that span fields live in compiler/checks.py.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

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

Text = Annotated[str, Field(max_length=4096, pattern=TEXT)]
Arg = Annotated[str, Field(max_length=4096, pattern=TEXT)]
Name63 = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)]
Subdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
Quantity = Annotated[str, Field(max_length=32, pattern=QUANTITY)]
LabelKey = Annotated[str, Field(max_length=317, pattern=QUALIFIED_NAME)]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]
AbsPath = Annotated[str, Field(min_length=1, max_length=1024, pattern=MOUNT_PATH_PATTERN)]

#: Bounds of the Kubernetes API's int32 and int64 fields (tests check them against the CRDs).
INT32 = 2**31 - 1
INT64 = 2**63 - 1

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
    """Container resources; GPUs become `nvidia.com/gpu` limits."""

    cpu: Quantity | None = Field(default=None, description="CPU request. No CPU limit unless cpuLimit (a limit throttles training).")
    memory: Quantity | None = Field(default=None, description="Memory request, and the memory limit unless memoryLimit.")
    cpuLimit: Quantity | None = Field(default=None, description="CPU limit; at least cpu.")
    memoryLimit: Quantity | None = Field(default=None, description="Memory limit; at least memory.")
    gpus: int = Field(default=0, ge=0, le=64)


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


class Replica(Strict):
    """One replica type: how many, how they restart, what they get."""

    count: int = Field(default=1, ge=1, le=1024)
    restartPolicy: RestartPolicy | None = Field(default=None, description="Operator default when omitted.")
    resources: Resources | None = None
    env: EnvMap = Field(default_factory=dict, max_length=256)
    args: list[Arg] = Field(default_factory=list, max_length=256, description="Extra args appended to the container's.")


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


class RuntimeRef(Strict):
    """A Kubeflow Trainer v2 runtime the cluster already has (target trainjob)."""

    name: Subdomain = Field(description="e.g. torch-distributed, jax-distributed, xgboost-distributed.")
    kind: Literal["ClusterTrainingRuntime", "TrainingRuntime"] = Field(
        default="ClusterTrainingRuntime", description="TrainingRuntime: one in the job's namespace.")


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
    target: Literal["v1", "trainjob"] = Field(
        default="v1",
        description="v1: training-operator v1 kinds (TFJob, PyTorchJob); trainjob: a Kubeflow Trainer v2 TrainJob "
                    "(v2.3). The default comes from .specc.yaml above the spec, else v1. Changing it renames the job.",
    )
    runtime: RuntimeRef | None = Field(
        default=None,
        description="target trainjob: run on this runtime of the cluster; without it specc picks torch-distributed "
                    "for custom PyTorch images whose pod fits its runtimePatches, else renders its own TrainingRuntime.",
    )
    image: str | None = Field(default=None, max_length=512, pattern=IMAGE, description="Runtime image for built-in trainers.")
    trainer: TrainerConfig | None = Field(default=None, description="A built-in trainer of the runtime.")
    container: Container | None = Field(default=None, description="A custom image + command instead of a trainer.")
    replicas: dict[Literal[REPLICA_TYPES], ReplicaField] | None = Field(default=None, description="Replica types -> settings; default one Worker (PyTorch: Master + Worker).")
    resources: Resources | None = Field(default=None, description="Default resources for every replica.")
    env: EnvMap = Field(default_factory=dict, max_length=256, description="Env for every replica.")
    runPolicy: RunPolicy = Field(default_factory=RunPolicy)
    successPolicy: Literal["", "AllWorkers"] | None = None
    elasticPolicy: ElasticPolicy | None = None
    nprocPerNode: Annotated[str, Field(pattern=NPROC)] | None = None
    volumes: list[Volume] = Field(default_factory=list, max_length=32)
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
