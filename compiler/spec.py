"""The user-facing spec language: `apiVersion: specc.dev/v1alpha1`, `kind: TrainingJob`.

Strict pydantic v2 models (unknown keys are errors) with defaults, so a minimal spec is a few
lines. They are the one definition of the language; compiler/validator.py validates with their
pydantic-core schema (snapshotted by `python -m compiler.snapshot`), so every rule here is
data (types, bounds, patterns, unions). Rules that span fields live in compiler/checks.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field

from compiler.kinds import REPLICA_TYPES
from runtime.config import Framework, StorageConfig, Strict, TrainerConfig
from runtime.contract import DEFAULT_IMAGE, MOUNT_PATH_PATTERN  # noqa: F401 - DEFAULT_IMAGE re-exported

API_VERSION = "specc.dev/v1alpha1"
KIND = "TrainingJob"

from compiler.patterns import (
    CONFIG_KEY, DNS1035, DNS1123_LABEL, DNS1123_SUBDOMAIN, ENV_NAME, FIELD_PATH, GROUP_VERSION, IMAGE, KIND_NAME,
    LABEL_VALUE, LINE, METRIC_NAME, NPROC, QUALIFIED_NAME, QUANTITY, RULE_NAME, SUB_PATH, TEXT, TOLERATION_KEY,
)

#: Bounds of the Kubernetes API's int32 and int64 fields (tests check them against the CRDs).
INT32 = 2**31 - 1
INT64 = 2**63 - 1

Text = Annotated[str, Field(max_length=4096, pattern=TEXT)]
Arg = Text
Name63 = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)]
Subdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
#: A Kubernetes quantity: `500m`, `2`, `1.5`, `4Gi`, or a number (rendered as a string).
Quantity = Union[Annotated[str, Field(max_length=32, pattern=QUANTITY)], Annotated[int, Field(ge=0, le=INT64)],
                 Annotated[float, Field(ge=0, le=1e15)]]
LabelKey = Annotated[str, Field(max_length=317, pattern=QUALIFIED_NAME)]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]
AbsPath = Annotated[str, Field(min_length=1, max_length=1024, pattern=MOUNT_PATH_PATTERN)]

RestartPolicy = Literal["Always", "OnFailure", "ExitCode", "Never"]


class Metadata(Strict):
    """Name (DNS-1035 label), namespace, labels and annotations of the job."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS1035, description="The job's name; with hashed naming a content "
                      "hash is appended, and it must leave room for pod names (63 characters).", examples=["mnist"])
    namespace: Name63 = Field(default="default", description="The namespace the job runs in.", examples=["kubeflow"])
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64, description="Labels on every object and pod.",
                                               examples=[{"team": "nlp"}])
    annotations: dict[LabelKey, Text] = Field(default_factory=dict, max_length=64, description="Annotations on every object.",
                                              examples=[{"example.com/owner": "ml-platform"}])


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
    ephemeralStorageLimit: Quantity | None = Field(default=None, description="Local scratch disk limit; at least ephemeralStorage.", examples=["40Gi"])
    shm: Quantity | None = Field(default=None, description="Size of /dev/shm (a memory-backed emptyDir), for PyTorch DataLoader "
                                 "workers; it counts against the memory limit.", examples=["2Gi"])


class SecretKeyRef(Strict):
    """A key of a Secret."""

    name: Subdomain = Field(description='Name of the Secret (or ConfigMap).', examples=['minio-credentials'])
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=CONFIG_KEY)] = Field(
        description="Key in it.", examples=["accesskey"])
    optional: bool | None = Field(default=None, description='Start the pod even if the Secret or key does not exist.', examples=[True])


class ConfigMapKeyRef(SecretKeyRef):
    """A key of a ConfigMap."""


class FieldRef(Strict):
    """A field of the pod (the downward API)."""

    fieldPath: Annotated[str, Field(min_length=1, max_length=256, pattern=FIELD_PATH)] = Field(
        description="A pod field (downward API).", examples=["metadata.name"])


class EnvFrom(Strict):
    """A reference instead of a literal value (exactly one)."""

    secretKeyRef: SecretKeyRef | None = Field(default=None, description='The value of a Secret key.', examples=[{'name': 'hf-token', 'key': 'token'}])
    configMapKeyRef: ConfigMapKeyRef | None = Field(default=None, description='The value of a ConfigMap key.', examples=[{'name': 'train-config', 'key': 'lr'}])
    fieldRef: FieldRef | None = Field(default=None, description='A pod field (downward API).', examples=[{'fieldPath': 'metadata.namespace'}])


EnvValue = Union[Text, EnvFrom]
EnvMap = dict[Annotated[str, Field(min_length=1, max_length=256, pattern=ENV_NAME)], EnvValue]


class PodMetadata(Strict):
    """Labels and annotations for the pods (e.g. `sidecar.istio.io/inject: "false"`)."""

    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64, description="Pod labels.", examples=[{"team": "nlp"}])
    annotations: dict[LabelKey, Text] = Field(default_factory=dict, max_length=64, description="Pod annotations.",
                                              examples=[{"sidecar.istio.io/inject": "false"}])


class PodTemplate(Strict):
    """A Kubernetes PodTemplateSpec fragment merged over the pod specc generates (a strategic merge:
    maps key by key; containers, volumes, env and the like by their merge keys). The main container
    is the one named as the operator names it (tensorflow, pytorch, ... trainer for a batch Job)."""

    metadata: PodMetadata | None = Field(default=None, description="Pod labels and annotations.", examples=[{"annotations": {"sidecar.istio.io/inject": "false"}}])
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
    resources: Resources | None = Field(default=None, description="Resources of this type, merged field by field over spec.resources.", examples=[{"gpus": 8}])
    env: EnvMap = Field(default_factory=dict, max_length=256, description="Env for this type, over spec.env.", examples=[{"NCCL_DEBUG": "INFO"}])
    image: str | None = Field(default=None, max_length=512, pattern=IMAGE, description="Image for this type (over spec.image, or "
                              "spec.container.image for a custom container), e.g. a PS with a different image.", examples=["registry.example.com/ranker/ps:5.0"])
    command: list[Arg] | None = Field(default=None, max_length=256, description="Command for this type (custom containers "
                                      "only), instead of spec.container.command.", examples=[["python", "-m", "ranker.ps"]])
    args: list[Arg] = Field(default_factory=list, max_length=256, description="Extra args appended to the container's.", examples=[["--verbose"]])
    podTemplate: PodTemplate | None = Field(default=None, description="A pod template fragment for this type, merged over "
                                            "spec.podTemplate.", examples=[{"spec": {"nodeSelector": {"pool": "gpu"}}}])


#: `Worker: 2` is shorthand for `Worker: {count: 2}` (compiler.kinds.replicas expands it).
ReplicaCount = Annotated[int, Field(ge=1, le=1024)]
ReplicaField = Union[ReplicaCount, Replica]


class Container(Strict):
    """A custom image with its own command (the book's images), instead of a built-in trainer."""

    image: str = Field(max_length=512, pattern=IMAGE, description="The image to run.",
                       examples=["gcr.io/kubeflow-ci/tf-mnist-with-summaries:1.0"])
    command: list[Arg] = Field(default_factory=list, max_length=256, description="Its command (the image's entrypoint when empty).",
                               examples=[["python", "/var/tf_mnist/mnist_with_summaries.py"]])
    args: list[Arg] = Field(default_factory=list, max_length=256, description="Its arguments.", examples=[["--log_dir=/train/logs"]])
    workingDir: AbsPath | None = Field(default=None, description='Its working directory.', examples=['/workspace'])


class EmptyDir(Strict):
    """A scratch volume that lives as long as the pod."""

    medium: Literal["", "Memory"] = Field(default="", description="'' for node disk, Memory for a tmpfs.", examples=['Memory'])
    sizeLimit: Quantity | None = Field(default=None, description='Largest size before the pod is evicted.', examples=['10Gi'])


class Volume(Strict):
    """A volume mounted into every replica's main container: a PersistentVolumeClaim, an emptyDir,
    a ConfigMap or a Secret (others, CSI included, through podTemplate)."""

    name: Name63 = Field(description="Volume name (DNS-1123 label; names starting with specc- are specc's).", examples=['tfevent-volume'])
    mountPath: AbsPath = Field(description="Where it is mounted in every replica's main container.", examples=['/train'])
    persistentVolumeClaim: Subdomain | None = Field(default=None, description="Claim name.", examples=["tfevent-volume"])
    emptyDir: EmptyDir | None = Field(default=None, description='A scratch folder that lives as long as the pod.', examples=[{'medium': 'Memory', 'sizeLimit': '1Gi'}])
    configMap: Subdomain | None = Field(default=None, description="A ConfigMap's keys as files.", examples=["train-config"])
    secret: Subdomain | None = Field(default=None, description="A Secret's keys as files (mounted read-only).",
                                     examples=["gcp-service-account"])
    subPath: Annotated[str, Field(min_length=1, max_length=1024, pattern=SUB_PATH)] | None = Field(
        default=None, description="Mount only this file or folder of the volume.", examples=["config.yaml"])
    readOnly: bool = Field(default=False, description='Mount it read-only.', examples=[True])


class Credentials(Strict):
    """S3 credentials by reference to a Kubernetes Secret (never literal values)."""

    secretName: Subdomain = Field(description='The Secret holding the S3 access key and secret key.', examples=['minio-credentials'])
    accessKeyKey: Annotated[str, Field(max_length=253, pattern=CONFIG_KEY)] = Field(
        default="AWS_ACCESS_KEY_ID", description="Its key holding the access key id.", examples=["accesskey"])
    secretKeyKey: Annotated[str, Field(max_length=253, pattern=CONFIG_KEY)] = Field(
        default="AWS_SECRET_ACCESS_KEY", description="Its key holding the secret access key.", examples=["secretkey"])


class Storage(StorageConfig):
    """S3/MinIO endpoint for the trainer's URIs and the Secret holding its credentials."""

    credentials: Credentials | None = Field(default=None, description='Where the credentials are (a Secret); injected as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.', examples=[{'secretName': 'minio-credentials'}])


class SchedulingPolicy(Strict):
    """runPolicy.schedulingPolicy for gang schedulers (Volcano / scheduler-plugins)."""

    minAvailable: int | None = Field(default=None, ge=1, le=INT32, description="Pods that must be schedulable together.",
                                     examples=[3])
    queue: Text | None = Field(default=None, description="The gang scheduler's queue (Volcano); immutable once the job exists.", examples=['training'])
    minResources: dict[Annotated[str, Field(max_length=253, pattern=QUALIFIED_NAME)], Quantity] | None = Field(
        default=None, description="Resources the whole gang needs before any pod starts.", examples=[{"cpu": "16", "nvidia.com/gpu": "4"}])
    priorityClass: Subdomain | None = Field(default=None, description='PriorityClass of the PodGroup.', examples=['high-priority'])
    scheduleTimeoutSeconds: int | None = Field(default=None, ge=1, le=INT32, description="How long the gang may wait to be scheduled.",
                                               examples=[600])


class RunPolicy(Strict):
    """The operator's runPolicy: cleanup, restarts, deadline, gang scheduling (batch/v1 Job: the
    Job's own fields)."""

    cleanPodPolicy: Literal["All", "Running", "None"] | None = Field(default=None, description='Which pods to delete when the job ends (operator default: None for TFJob, ... ).', examples=['Running'])
    backoffLimit: int | None = Field(default=None, ge=0, le=1000, description="Restarts allowed before the job fails "
                                     "(batch/v1 Job default 6).", examples=[3])
    activeDeadlineSeconds: int | None = Field(default=None, ge=1, le=INT64, description="Seconds the job may run before it "
                                              "is stopped and failed.", examples=[86400])
    ttlSecondsAfterFinished: int | None = Field(default=None, ge=0, le=INT32, description="Delete the job this long after it "
                                                "ends (fights Argo CD auto-sync: see specc lint).", examples=[3600])
    schedulingPolicy: SchedulingPolicy | None = Field(default=None, description='Gang scheduling (Volcano / scheduler-plugins; the operator needs --gang-scheduler-name).', examples=[{'minAvailable': 3}])
    suspend: bool | None = Field(default=None, description='Create the job suspended (not with scheduling.queue: Kueue owns it then).', examples=[True])


class RdzvConf(Strict):
    """One rendezvous option."""

    key: Text = Field(description='A rendezvous option.', examples=['timeout'])
    value: Text = Field(description='Its value.', examples=['900'])


class MetricTarget(Strict):
    """The value a metric is held at (autoscaling/v2 MetricTarget): `type` names the field it sets."""

    type: Literal["Utilization", "Value", "AverageValue"] = Field(
        description="Utilization (averageUtilization), Value (value) or AverageValue (averageValue).", examples=["Utilization"])
    value: Quantity | None = Field(default=None, description="The metric's total value (Object, External).", examples=["10k"])
    averageValue: Quantity | None = Field(default=None, description="The value per pod.", examples=["500m"])
    averageUtilization: int | None = Field(default=None, ge=1, le=INT32,
                                           description="Percent of the pods' requests (Resource, ContainerResource).",
                                           examples=[80])


class LabelRequirement(Strict):
    """A label selector requirement: key, operator and values."""

    key: LabelKey = Field(description="The label.", examples=["app"])
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In and NotIn take values; Exists and DoesNotExist none.", examples=["In"])
    values: list[LabelValue] | None = Field(default=None, max_length=64, description="The label's values.",
                                            examples=[["train"]])


class MetricSelector(Strict):
    """A label selector narrowing a custom or external metric."""

    matchLabels: dict[LabelKey, LabelValue] | None = Field(default=None, max_length=64,
                                                           description="Labels the metric's series must have.",
                                                           examples=[{"queue": "worker-tasks"}])
    matchExpressions: list[LabelRequirement] | None = Field(default=None, max_length=64, description="Requirements on labels.",
                                                            examples=[[{"key": "app", "operator": "In", "values": ["train"]}]])


class MetricIdentifier(Strict):
    """A custom or external metric by name."""

    name: Annotated[str, Field(pattern=METRIC_NAME)] = Field(description="The metric's name.", examples=["samples_per_second"])
    selector: MetricSelector | None = Field(default=None, description="Narrows the metric's series by label.",
                                            examples=[{"matchLabels": {"app": "train"}}])


class ObjectReference(Strict):
    """The object an Object metric describes (autoscaling/v2 CrossVersionObjectReference)."""

    apiVersion: Annotated[str, Field(max_length=253, pattern=GROUP_VERSION)] | None = Field(
        default=None, description="Its apiVersion.", examples=["networking.k8s.io/v1"])
    kind: Annotated[str, Field(pattern=KIND_NAME)] = Field(description="Its kind.", examples=["Ingress"])
    name: Subdomain = Field(description="Its name.", examples=["main-route"])


class ResourceMetric(Strict):
    """A resource of the pods (cpu, memory) against their requests."""

    name: Annotated[str, Field(max_length=317, pattern=QUALIFIED_NAME)] = Field(description="The resource.", examples=["cpu"])
    target: MetricTarget = Field(description="Utilization or AverageValue.",
                                 examples=[{"type": "Utilization", "averageUtilization": 80}])


class ContainerResourceMetric(ResourceMetric):
    """A resource of one container of the pods."""

    container: Name63 = Field(description="The container.", examples=["pytorch"])


class PodsMetric(Strict):
    """A metric of each pod, averaged."""

    metric: MetricIdentifier = Field(description="The metric.", examples=[{"name": "samples_per_second"}])
    target: MetricTarget = Field(description="AverageValue.", examples=[{"type": "AverageValue", "averageValue": "500"}])


class ObjectMetric(Strict):
    """A metric of another object in the namespace."""

    describedObject: ObjectReference = Field(description="The object.",
                                             examples=[{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main-route"}])
    metric: MetricIdentifier = Field(description="The metric.", examples=[{"name": "requests-per-second"}])
    target: MetricTarget = Field(description="Value or AverageValue.", examples=[{"type": "Value", "value": "10k"}])


class ExternalMetric(Strict):
    """A metric from outside the cluster."""

    metric: MetricIdentifier = Field(description="The metric.", examples=[{"name": "queue_messages_ready"}])
    target: MetricTarget = Field(description="Value or AverageValue.", examples=[{"type": "AverageValue", "averageValue": "30"}])


class MetricSpec(Strict):
    """One metric the operator's HorizontalPodAutoscaler scales the workers on (autoscaling/v2
    MetricSpec): `type` names the one source field it sets."""

    type: Literal["Resource", "ContainerResource", "Pods", "Object", "External"] = Field(
        description="Which source field the metric sets.", examples=["Resource"])
    resource: ResourceMetric | None = Field(default=None, description="With type Resource.",
                                            examples=[{"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}])
    containerResource: ContainerResourceMetric | None = Field(
        default=None, description="With type ContainerResource.",
        examples=[{"name": "memory", "container": "pytorch", "target": {"type": "Utilization", "averageUtilization": 70}}])
    pods: PodsMetric | None = Field(default=None, description="With type Pods.",
                                    examples=[{"metric": {"name": "samples_per_second"},
                                               "target": {"type": "AverageValue", "averageValue": "500"}}])
    object: ObjectMetric | None = Field(default=None, description="With type Object.",
                                        examples=[{"describedObject": {"kind": "Ingress", "name": "main-route"},
                                                   "metric": {"name": "requests-per-second"},
                                                   "target": {"type": "Value", "value": "10k"}}])
    external: ExternalMetric | None = Field(default=None, description="With type External.",
                                            examples=[{"metric": {"name": "queue_messages_ready"},
                                                       "target": {"type": "AverageValue", "averageValue": "30"}}])


class ElasticPolicy(Strict):
    """PyTorchJob elastic training (torchrun rendezvous)."""

    minReplicas: int | None = Field(default=None, ge=1, le=INT32, description="Fewest workers training goes on with.", examples=[1])
    maxReplicas: int | None = Field(default=None, ge=1, le=INT32, description="Most workers.", examples=[4])
    rdzvBackend: Literal["c10d", "etcd", "etcd-v2"] | None = Field(default=None, description='The rendezvous backend.', examples=['c10d'])
    rdzvPort: int | None = Field(default=None, ge=1, le=65535, description="The rendezvous port.", examples=[29400])
    rdzvHost: Text | None = Field(default=None, description='The rendezvous host (default: the first worker).', examples=['etcd-service'])
    rdzvId: Text | None = Field(default=None, description='The rendezvous id.', examples=['llm-1'])
    # The operator slices off the last comma of the joined list: an empty one panics its reconcile (elastic.go).
    rdzvConf: list[RdzvConf] | None = Field(default=None, min_length=1, description='Extra rendezvous options.',
                                            examples=[[{'key': 'timeout', 'value': '900'}]])
    standalone: bool | None = Field(default=None, description='torchrun --standalone (a single-node rendezvous).', examples=[True])
    maxRestarts: int | None = Field(default=None, ge=0, le=INT32, description="torchrun --max-restarts.", examples=[3])
    metrics: list[MetricSpec] | None = Field(
        default=None, min_length=1, max_length=32,
        description="Metrics of a HorizontalPodAutoscaler the operator creates to scale the workers "
                    "between minReplicas and maxReplicas.",
        examples=[[{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]])


class Toleration(Strict):
    """A pod toleration, checked as the API server checks it."""

    key: Annotated[str, Field(max_length=317, pattern=TOLERATION_KEY)] | None = Field(
        default=None, description="Taint key; empty with operator Exists tolerates every taint.", examples=["nvidia.com/gpu"])
    operator: Literal["Exists", "Equal"] | None = Field(default=None, description='Equal (default) matches key and value; Exists matches the key.', examples=['Exists'])
    value: LabelValue | None = Field(default=None, description='The taint value (with operator Equal).', examples=['gpu'])
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(default=None, description='The taint effect it tolerates (all when empty).', examples=['NoSchedule'])
    tolerationSeconds: int | None = Field(default=None, ge=-INT64 - 1, le=INT64, description="Only with effect NoExecute.", examples=[300])


class Scheduling(Strict):
    """Where pods may run and which Kueue queue admits the job."""

    nodeSelector: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Node labels the pods need.",
                                                     examples=[{"cloud.google.com/gke-accelerator": "nvidia-l4"}])
    tolerations: list[Toleration] = Field(default_factory=list, max_length=64, description="Taints the pods tolerate.",
                                          examples=[[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]])
    priorityClassName: Subdomain | None = Field(default=None, description="The pods' PriorityClass.", examples=['high-priority'])
    queue: Name63 | None = Field(default=None, description="Kueue LocalQueue (label kueue.x-k8s.io/queue-name).", examples=["team-a"])
    serviceAccountName: Subdomain | None = Field(default=None, description="The pods' service account.", examples=['trainer'])


class RuntimeRef(Strict):
    """A Kubeflow Trainer v2 runtime the cluster already has (target trainjob)."""

    name: Subdomain = Field(description="The runtime's name.", examples=["torch-distributed"])
    kind: Literal["ClusterTrainingRuntime", "TrainingRuntime"] = Field(
        default="ClusterTrainingRuntime", description="ClusterTrainingRuntime, or TrainingRuntime: one in the job's namespace.",
        examples=["TrainingRuntime"])


LintRule = Annotated[str, Field(min_length=1, max_length=63, pattern=RULE_NAME)]


class Allow(Strict):
    """One accepted finding: the rule and the field it is about, as diagnostics print it."""

    rule: LintRule = Field(description="The rule, e.g. literal-credential.", examples=["literal-credential"])
    at: Annotated[str, Field(min_length=1, max_length=1024, pattern=LINE, examples=["spec.env.PUBLIC_SALT"])] = Field(
        description="The field, exactly as the finding names it, e.g. spec.env.PUBLIC_SALT.")
    reason: Text | None = Field(default=None, description="Why this is not a problem (for reviewers).", examples=["a public salt, not a secret"])


class Lint(Strict):
    """`specc lint` settings for this spec; they never change the rendered manifests or the name hash."""

    ignore: list[LintRule] = Field(
        default_factory=list, max_length=32,
        description="Lint rules silenced for this whole spec (`specc lint --list-rules` names them).",
        examples=[["resource-requests", "name-length"]],
    )
    allow: list[Allow] = Field(
        default_factory=list, max_length=256,
        description="Findings accepted one place at a time (the way to silence a literal-credential false positive).",
        examples=[[{"rule": "literal-credential", "at": "spec.env.PUBLIC_SALT", "reason": "a public salt"}]],
    )


class Spec(Strict):
    """What to run, on how many replicas, with which policies."""

    framework: Framework = Field(description="tensorflow -> TFJob, pytorch -> PyTorchJob, xgboost -> XGBoostJob, "
                                            "jax -> JAXJob, paddle -> PaddleJob, sklearn/python -> batch/v1 Job.")
    target: Literal["v1", "trainjob"] = Field(
        default="v1",
        description="v1: training-operator v1 kinds (TFJob, PyTorchJob, ...); trainjob: a Kubeflow Trainer v2 TrainJob "
                    "(v2.3). The default comes from .specc.yaml above the spec, else v1. Changing it renames the job.",
        examples=["trainjob"],
    )
    runtime: RuntimeRef | None = Field(
        default=None,
        description="target trainjob: run on this runtime of the cluster; without it specc picks torch-distributed "
                    "for custom PyTorch images whose pod fits its runtimePatches, else renders its own TrainingRuntime.",
        examples=[{"name": "torch-distributed"}],
    )
    image: str | None = Field(default=None, max_length=512, pattern=IMAGE, description="Runtime image for built-in trainers.", examples=["ghcr.io/specc-dev/specc-runtime:0.1.0"])
    trainer: TrainerConfig | None = Field(default=None, description="A built-in trainer of the runtime.", examples=[{"name": "mnist", "learning_rate": 0.01, "batch_size": 150}])
    container: Container | None = Field(default=None, description="A custom image + command instead of a trainer.", examples=[{"image": "kubeflow/pytorch-dist-mnist:1.0", "command": ["python", "/opt/mnist/src/mnist.py"]}])
    replicas: dict[Literal[REPLICA_TYPES], ReplicaField] | None = Field(default=None, description="Replica types -> settings; default one Worker (PyTorch and XGBoost: Master + Worker).", examples=[{"Master": 1, "Worker": {"count": 2, "resources": {"gpus": 1}}}])
    resources: Resources | None = Field(default=None, description="Default resources for every replica.", examples=[{"cpu": "2", "memory": "4Gi"}])
    env: EnvMap = Field(default_factory=dict, max_length=256, description="Env for every replica.", examples=[{"OMP_NUM_THREADS": "4", "HF_TOKEN": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}])
    runPolicy: RunPolicy = Field(default_factory=RunPolicy, description="Cleanup, restarts, deadline and gang scheduling.",
                                 examples=[{"cleanPodPolicy": "None", "backoffLimit": 3}])
    successPolicy: Literal["", "AllWorkers"] | None = Field(default=None, description="TFJob: '' (the chief, else worker 0, decides) or AllWorkers.", examples=['AllWorkers'])
    elasticPolicy: ElasticPolicy | None = Field(default=None, description='PyTorchJob elastic training (torchrun rendezvous).', examples=[{'minReplicas': 1, 'maxReplicas': 4, 'rdzvBackend': 'c10d'}])
    nprocPerNode: Annotated[str, Field(pattern=NPROC)] | Annotated[int, Field(ge=1, le=9999)] | None = Field(
        default=None, description="Processes per PyTorch node: auto, cpu, gpu or a number.", examples=[4, "gpu"])
    volumes: list[Volume] = Field(default_factory=list, max_length=32, description="PVCs and emptyDirs mounted into every replica.",
                                  examples=[[{"name": "tfevent-volume", "mountPath": "/train", "persistentVolumeClaim": "tfevent-volume"}]])
    podTemplate: PodTemplate | None = Field(default=None, description="A pod template fragment merged over every replica's "
                                            "pod (replica podTemplate over this, this over what specc generates).", examples=[{"spec": {"imagePullSecrets": [{"name": "regcred"}]}}])
    storage: Storage | None = Field(default=None, description="The S3/MinIO endpoint the trainer's s3:// URIs use, and the Secret with its credentials.", examples=[{'endpoint': 'http://minio-service.kubeflow:9000', 'credentials': {'secretName': 'minio-credentials'}}])
    scheduling: Scheduling = Field(default_factory=Scheduling, description="Node selection, tolerations, priority, service account and the Kueue queue.",
                                   examples=[{"queue": "team-a", "nodeSelector": {"pool": "gpu"}}])
    naming: Literal["hashed", "fixed"] = Field(
        default="hashed",
        description="hashed: append a content hash to the job name so a changed spec re-runs; fixed: keep the name.",
    )
    lint: Lint = Field(default_factory=Lint, description="`specc lint` settings (rules to ignore); not rendered.", examples=[{"ignore": ["resource-requests"]}])


class TrainingJob(Strict):
    """One training job: the whole document of a spec file."""

    apiVersion: Literal[API_VERSION] = Field(description='specc.dev/v1alpha1.', examples=['specc.dev/v1alpha1'])
    kind: Literal[KIND] = Field(description='TrainingJob.', examples=['TrainingJob'])
    metadata: Metadata = Field(description="The job's name, namespace, labels and annotations.", examples=[{'name': 'mnist', 'namespace': 'kubeflow'}])
    spec: Spec = Field(description='What to run, on how many replicas, with which policies.', examples=[{'framework': 'tensorflow', 'container': {'image': 'busybox:1.36'}}])
