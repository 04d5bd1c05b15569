"""Spec validation: every problem reported at its line and column, with hints; exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

BASE = """\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata:
  name: demo
spec:
  framework: tensorflow
  trainer:
    name: mnist
    data_dir: /data/mnist
    export_uri: /data/out
"""


def run_validate(tmp_path, text: str, *extra: str):
    f = tmp_path / "spec.yaml"
    f.write_text(textwrap.dedent(text))
    r = subprocess.run([sys.executable, "-m", "compiler", "validate", str(f), *extra],
                       capture_output=True, text=True, cwd=tmp_path)
    assert "Traceback" not in r.stderr, r.stderr
    return r, str(f)


CUSTOM = """\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata:
  name: demo
spec:
  framework: {framework}
  container:
    image: registry.example.com/ml/train:1.0
"""

# (scenario, spec text, expected "line:col: field: message" substrings)
CASES = [
    ("trainer-on-custom-only-framework", BASE.replace("tensorflow", "xgboost"),
     ["8:11: spec.trainer.name: framework xgboost runs a custom image only: set spec.container instead of a trainer; "
      "trainer 'mnist' runs under framework tensorflow or pytorch, not xgboost"]),
    ("xgboost-without-master", CUSTOM.format(framework="xgboost") + "  replicas:\n    Worker: 2\n",
     ["9:3: spec.replicas: an XGBoostJob needs a Master replica (exactly 1; Workers optional)"]),
    ("xgboost-two-masters", CUSTOM.format(framework="xgboost") + "  replicas:\n    Master: 2\n",
     ["10:5: spec.replicas.Master.count: Master must have exactly 1 replica"]),
    ("jax-master", CUSTOM.format(framework="jax") + "  replicas:\n    Master: 1\n    Worker: 2\n",
     ["10:5: spec.replicas.Master: unknown replica type 'Master' for jax; use one of Worker"]),
    ("paddle-without-workers", CUSTOM.format(framework="paddle") + "  replicas:\n    Master: 1\n",
     ["9:3: spec.replicas: a PaddleJob needs Worker replicas (with a Master: parameter-server mode)"]),
    ("elastic-without-workers", CUSTOM.format(framework="pytorch") + "  replicas:\n    Master: 1\n  elasticPolicy: {}\n",
     ["9:3: spec.replicas: an elastic PyTorchJob needs Worker replicas (a Master is optional)"]),
    ("not-elastic-without-master", CUSTOM.format(framework="pytorch") + "  replicas:\n    Worker: 2\n",
     ["9:3: spec.replicas: a PyTorchJob needs a Master replica (Master exactly 1, Worker >= 1; with elasticPolicy, "
      "Workers alone)"]),
    ("operator-env-of-another-kind", CUSTOM.format(framework="jax") + "  env:\n    PROCESS_ID: \"1\"\n",
     ["10:17: spec.env.PROCESS_ID: PROCESS_ID is set by specc or the training operator; do not set it here"]),
    ("empty-rdzv-conf", CUSTOM.format(framework="pytorch") + "  replicas: {Worker: 2}\n  elasticPolicy: {rdzvConf: []}\n",
     ["10:29: spec.elasticPolicy.rdzvConf: List should have at least 1 item"]),
    ("unknown-metric-type", CUSTOM.format(framework="pytorch") + "  replicas: {Worker: 2}\n  elasticPolicy:\n"
     "    metrics: [{type: Cpu}]\n",
     ["11:22: spec.elasticPolicy.metrics[0].type: must be one of 'Resource', 'ContainerResource', 'Pods', 'Object' "
      "or 'External', got 'Cpu'"]),
    ("misspelt-key", BASE + "  replcas:\n    Worker: 2\n",
     ["11:3: spec.replcas: unknown field 'replcas'; did you mean 'replicas'?"]),
    ("misspelt-trainer-param", BASE.replace("    export_uri", "    batchsize: 10\n    export_uri"),
     ["10:5: spec.trainer.batchsize: unknown field 'batchsize'; did you mean 'batch_size'?"]),
    ("wrong-type", BASE + "  replicas:\n    Worker: {count: \"2\"}\n",
     ["12:21: spec.replicas.Worker.count: Input should be a valid integer, got string"]),
    ("out-of-range", BASE.replace("    export_uri: /data/out", "    export_uri: /data/out\n    learning_rate: -1"),
     ["11:20: spec.trainer.learning_rate: Input should be greater than 0"]),
    ("unknown-enum", BASE + "  replicas:\n    Worker: {restartPolicy: OnFailur}\n",
     ["12:29: spec.replicas.Worker.restartPolicy: must be one of 'Always', 'OnFailure', 'ExitCode' or 'Never', got 'OnFailur'; did you mean 'OnFailure'?"]),
    ("unknown-framework", BASE.replace("framework: tensorflow", "framework: tensorflw"),
     ["6:14: spec.framework: must be one of", "did you mean 'tensorflow'?"]),
    ("unknown-trainer", BASE.replace("name: mnist", "name: mnsit"),
     ["8:11: spec.trainer.name: unknown trainer 'mnsit'; built-in trainers are recommender, income, mnist; did you mean 'mnist'?"]),
    ("lower-case-replica-type", BASE + "  replicas:\n    worker: 2\n",
     ["12:5: spec.replicas.worker: must be one of 'Chief', 'Master', 'PS', 'Worker' or 'Evaluator', got 'worker'; did you mean 'Worker'?"]),
    ("pytorch-two-masters", BASE.replace("tensorflow", "pytorch") + "  replicas:\n    Master: 2\n    Worker: 1\n",
     ["12:5: spec.replicas.Master.count: Master must have exactly 1 replica"]),
    ("pytorch-missing-worker", BASE.replace("tensorflow", "pytorch") + "  replicas:\n    Master: 1\n",
     ["11:3: spec.replicas: a PyTorchJob needs a Worker replica"]),
    ("trainer-and-container", BASE + "  container:\n    image: busybox:1.36\n",
     ["5:1: spec: set exactly one of 'trainer'"]),
    ("trainer-wrong-framework", BASE.replace("name: mnist", "name: income").replace("data_dir: /data/mnist", "data_uri: /data/adult.data").replace("export_uri: /data/out", "export_uri: /data/out/"),
     ["8:11: spec.trainer.name: trainer 'income' runs under framework sklearn, not tensorflow"]),
    ("missing-name", BASE.replace("  name: demo\n", "  namespace: ml\n"),
     ["3:1: metadata.name: missing required field 'name'"]),
    ("bad-name", BASE.replace("name: demo", "name: Demo_Job"),
     ["4:9: metadata.name: must be a DNS-1035 label"]),
    ("name-too-long", BASE.replace("name: demo", "name: " + "a" * 50),
     ["4:9: metadata.name: name is 50 characters; at most 45 fit"]),
    ("literal-secret-env", BASE + "  env:\n    AWS_SECRET_ACCESS_KEY: hunter2\n",
     ["12:28: spec.env.AWS_SECRET_ACCESS_KEY: literal credential (a value for AWS_SECRET_ACCESS_KEY)"]),
    ("literal-storage-credentials", BASE + "  storage:\n    endpoint: http://minio:9000\n    secretKey: minio123\n",
     ["13:5: spec.storage.secretKey: literal credentials are not allowed"]),
    ("aws-key-in-arg", BASE + "  replicas:\n    Worker: {args: [\"--key=AKIAIOSFODNN7EXAMPLE\"]}\n",
     ["spec.replicas.Worker.args[0]: literal credential (an AWS access key id)"]),
    ("s3-without-storage", BASE.replace("data_dir: /data/mnist", "data_dir: s3://data/mnist/"),
     ["7:3: spec.trainer: the trainer reads or writes s3:// URIs: set spec.storage.endpoint"]),
    ("volume-both-sources", BASE + "  volumes:\n    - {name: v, mountPath: /v, emptyDir: {}, persistentVolumeClaim: pvc}\n",
     ["12:7: spec.volumes[0]: set exactly one of persistentVolumeClaim, emptyDir, configMap, secret"]),
    ("volume-hides-config", BASE + "  volumes:\n    - {name: v, mountPath: /etc, emptyDir: {}}\n",
     ["spec.volumes[0].mountPath: mountPath /etc would hide the runtime config"]),
    ("kueue-and-suspend", BASE + "  scheduling: {queue: q}\n  runPolicy: {suspend: true}\n",
     ["12:24: spec.runPolicy.suspend: Kueue owns suspend"]),
    ("elastic-on-tf", BASE + "  elasticPolicy: {minReplicas: 1}\n",
     ["11:3: spec.elasticPolicy: elasticPolicy applies to framework pytorch only"]),
    ("operator-env", BASE.replace("tensorflow", "pytorch") + "  env:\n    PET_NNODES: \"4\"\n",
     ["12:17: spec.env.PET_NNODES: PET_NNODES is set by specc or the training operator; do not set it here"]),
    ("env-ref-shape", BASE + "  env:\n    A: {secretKeyRef: {name: s}}\n",
     ["12:9: spec.env.A.secretKeyRef.key: missing required field 'key'"]),
    ("wrong-api-version", BASE.replace("specc.dev/v1alpha1", "specc.dev/v2"),
     ["1:13: apiVersion: must be one of 'specc.dev/v1alpha1', got 'specc.dev/v2'"]),
]


@pytest.mark.parametrize("scenario,text,expected", CASES, ids=[c[0] for c in CASES])
def test_invalid_spec_is_located(tmp_path, scenario, text, expected):
    r, path = run_validate(tmp_path, text)
    assert r.returncode == 2, r.stdout
    for want in expected:
        assert want in r.stderr, f"{scenario}: wanted {want!r} in\n{r.stderr}"
    for line in r.stderr.splitlines()[:-1]:
        assert line.startswith(path + ":"), line


ELASTIC_METRICS = CUSTOM.format(framework="pytorch") + """\
  replicas:
    Worker: 2
  elasticPolicy:
    metrics:
      - type: Pods
        resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
      - type: Resource
        resource: {name: cpu, target: {type: Value, value: "1"}}
      - type: Resource
        resource: {name: memory, target: {type: Utilization, averageValue: "0"}}
      - type: External
        external:
          metric:
            name: ".."
            selector: {matchExpressions: [{key: queue, operator: In}, {key: b, operator: Exists, values: [x]}]}
          target: {type: AverageValue, averageValue: 500m}
      - type: Object
        object:
          describedObject: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: main-route}
          metric: {name: requests-per-second}
          target: {type: Value, value: 10k}
"""


def test_elastic_metrics_are_checked_as_the_api_server_validates_an_hpa(tmp_path):
    """A metric sets the one source its type names, with a target of a type that source takes
    setting that type's field, positive; metric names and selector requirements as Kubernetes
    reads them (the last metric is sound)."""
    r, path = run_validate(tmp_path, ELASTIC_METRICS)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"{path}:{where}" for where in [
        "13:15: spec.elasticPolicy.metrics[0].type: a Pods metric needs pods",
        "14:9: spec.elasticPolicy.metrics[0].resource: a Pods metric sets pods only; remove resource",
        "16:46: spec.elasticPolicy.metrics[1].resource.target.type: a Resource metric's target type is Utilization "
        "or AverageValue, not Value",
        "18:34: spec.elasticPolicy.metrics[2].resource.target: target type Utilization needs averageUtilization",
        "18:76: spec.elasticPolicy.metrics[2].resource.target.averageValue: averageValue must be positive",
        "18:76: spec.elasticPolicy.metrics[2].resource.target.averageValue: target type Utilization sets "
        "averageUtilization only; remove averageValue",
        "22:19: spec.elasticPolicy.metrics[3].external.metric.name: a metric name may not be '..'",
        "23:66: spec.elasticPolicy.metrics[3].external.metric.selector.matchExpressions[0].operator: operator In "
        "needs values",
        "23:98: spec.elasticPolicy.metrics[3].external.metric.selector.matchExpressions[1].values: operator Exists "
        "takes no values",
    ]] + ["specc: 9 errors"]


def test_env_value_of_wrong_type(tmp_path):
    r, _ = run_validate(tmp_path, BASE + "  env:\n    A: 3\n")
    assert "12:8: spec.env.A: must be a string or a mapping (secretKeyRef, configMapKeyRef, fieldRef), got integer" in r.stderr
    assert r.stderr.count("spec.env.A") == 1


def test_all_problems_reported_at_once(tmp_path):
    text = BASE.replace("name: demo", "name: Bad_Name") + "  replcas: {}\n  runPolicy: {backoffLimit: -1}\n"
    r, path = run_validate(tmp_path, text)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert lines[-1] == "specc: 3 errors"
    assert [line.split(": ")[0].split(":", 1)[1] for line in lines[:-1]] == ["4:9", "11:3", "12:29"]


def test_json_format(tmp_path):
    r, path = run_validate(tmp_path, BASE + "  replcas: {}\n", "--format", "json")
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    assert doc["errors"] == 1
    d = doc["diagnostics"][0]
    assert (d["line"], d["col"], d["field"]) == (11, 3, "spec.replcas")
    assert d["path"] == path


def test_valid_spec_passes(tmp_path):
    r, _ = run_validate(tmp_path, BASE)
    assert r.returncode == 0 and "ok: 1 spec valid" in r.stdout


def test_all_examples_valid():
    r = subprocess.run([sys.executable, "-m", "compiler", "validate", "specs"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_duplicate_job_names_across_files(tmp_path):
    (tmp_path / "a.yaml").write_text(BASE)
    (tmp_path / "b.yaml").write_text(BASE)
    r = subprocess.run([sys.executable, "-m", "compiler", "validate", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{tmp_path}/b.yaml:4:9: metadata.name: job name 'demo' is already used by {tmp_path}/a.yaml:4" in r.stderr


def test_directory_without_specs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "compiler", "render", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "no .yaml/.yml specs" in r.stderr and "Traceback" not in r.stderr


def test_usage_error_exits_2():
    r = subprocess.run([sys.executable, "-m", "compiler", "render"], capture_output=True, text=True)
    assert r.returncode == 2
