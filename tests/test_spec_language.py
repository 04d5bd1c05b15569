"""The spec language for real teams' jobs (issue 13): pod template fragments merged as a strategic
merge patch, per-replica settings, resources that merge and mean what they say, near misses.

Rendered output is checked against the pinned CRDs; goldens tests/golden/team-pytorch and
tf-chief-ps-workers cover a whole team spec each.
"""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.compile import compile_job
from compiler.diagnostics import SpecError
from compiler.loader import load_text
from compiler.podtemplate import merge
from compiler.validate import validate
from k8s_schemas import validate_object

BASE = """\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata: {name: team, namespace: ml}
spec:
  framework: pytorch
  container: {image: "registry.example.com/train:1", command: [torchrun, train.py]}
"""


def compiled(text: str):
    return compile_job(validate(load_text(text, "specs/team.yaml")), "specs/team.yaml")


def problems(text: str) -> list:
    try:
        validate(load_text(text, "specs/team.yaml"))
    except SpecError as exc:
        return exc.diagnostics
    return []


def templates(cj) -> dict:
    wl = cj.workload
    key = next(k for k in wl["spec"] if k.endswith("ReplicaSpecs"))
    return {t: rs["template"] for t, rs in wl["spec"][key].items()}


def main_container(template: dict, name: str = "pytorch") -> dict:
    return next(c for c in template["spec"]["containers"] if c["name"] == name)


ISSUE_EXAMPLE = BASE + """\
  podTemplate:
    metadata: {annotations: {sidecar.istio.io/inject: "false"}}
    spec:
      imagePullSecrets: [{name: regcred}]
      containers:
        - name: pytorch
          envFrom: [{secretRef: {name: hf-token}}]
          volumeMounts: [{name: cfg, mountPath: /etc/cfg}]
      volumes: [{name: cfg, configMap: {name: train-config}}]
  replicas:
    Master: 1
    Worker:
      count: 2
      podTemplate:
        spec:
          nodeSelector: {pool: gpu}
          tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
"""


def test_the_issue_example_renders_valid_output():
    cj = compiled(ISSUE_EXAMPLE)
    assert all(validate_object(o) == [] for o in cj.objects)
    t = templates(cj)
    for rtype in ("Master", "Worker"):
        pod = t[rtype]
        assert pod["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
        assert pod["metadata"]["labels"]["specc.dev/job"] == "team"
        assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
        c = main_container(pod)
        assert c["image"] == "registry.example.com/train:1" and c["command"] == ["torchrun", "train.py"]
        assert c["envFrom"] == [{"secretRef": {"name": "hf-token"}}]
        assert c["volumeMounts"] == [{"name": "cfg", "mountPath": "/etc/cfg"}]
        assert pod["spec"]["volumes"] == [{"name": "cfg", "configMap": {"name": "train-config"}}]
    assert t["Worker"]["spec"]["nodeSelector"] == {"pool": "gpu"} and "nodeSelector" not in t["Master"]["spec"]


def test_precedence_replica_over_job_over_generated():
    text = BASE + """\
  scheduling: {nodeSelector: {generated: "yes"}, serviceAccountName: trainer}
  podTemplate:
    spec:
      serviceAccountName: from-job
      nodeSelector: {job: "yes"}
      containers: [{name: pytorch, env: [{name: A, value: job}, {name: B, value: job}]}]
  replicas:
    Master: 1
    Worker:
      count: 1
      podTemplate:
        spec:
          serviceAccountName: from-replica
          containers: [{name: pytorch, env: [{name: B, value: replica}]}]
"""
    t = templates(compiled(text))
    assert t["Master"]["spec"]["serviceAccountName"] == "from-job"
    assert t["Worker"]["spec"]["serviceAccountName"] == "from-replica"
    assert t["Worker"]["spec"]["nodeSelector"] == {"generated": "yes", "job": "yes"}  # maps merge key by key
    env = {e["name"]: e["value"] for e in main_container(t["Worker"])["env"]}
    assert env == {"A": "job", "B": "replica"}  # env merges by name


@pytest.mark.parametrize("fragment, check", [
    ({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "other"}}]},
     lambda pod: pod["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "other"}}]),
    ({"containers": [{"name": "pytorch", "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}]}]},
     lambda pod: main_container(pod)["volumeMounts"] == [{"mountPath": "/data", "name": "data", "readOnly": True}]),
    ({"containers": [{"name": "pytorch", "ports": [{"containerPort": 23456, "name": "renamed"}]}]},
     lambda pod: main_container(pod)["ports"] == [{"containerPort": 23456, "name": "renamed"}]),
    ({"containers": [{"name": "pytorch", "ports": [{"containerPort": 6006, "name": "tb"}]}]},
     lambda pod: [p["containerPort"] for p in main_container(pod)["ports"]] == [23456, 6006]),
    ({"tolerations": [{"key": "b", "operator": "Exists"}]},
     lambda pod: pod["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]),  # no merge key: replaced
])
def test_lists_merge_by_their_own_keys(fragment, check):
    text = BASE + "  scheduling: {tolerations: [{key: a, operator: Exists}]}\n" \
        + "  volumes: [{name: data, mountPath: /data, persistentVolumeClaim: data}]\n" \
        + f"  podTemplate: {{spec: {json.dumps(fragment)}}}\n"
    cj = compiled(text)
    for pod in templates(cj).values():
        assert check(pod), pod
    assert all(validate_object(o) == [] for o in cj.objects)


@pytest.mark.parametrize("framework, trainer, kind_container", [
    ("tensorflow", "{name: mnist, data_dir: /d/, export_uri: /o/}", "tensorflow"),
    ("pytorch", "{name: mnist, data_dir: /d/, export_uri: /o/}", "pytorch"),
    ("sklearn", "{name: income, data_uri: /d/a.data, export_uri: /o/}", "trainer"),
])
def test_the_main_container_is_addressed_by_its_operator_name(framework, trainer, kind_container):
    text = f"""\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata: {{name: t}}
spec:
  framework: {framework}
  trainer: {trainer}
  podTemplate: {{spec: {{containers: [{{name: {kind_container}, envFrom: [{{configMapRef: {{name: extra}}}}]}}]}}}}
"""
    cj = compiled(text)
    wl = cj.workload
    pods = [wl["spec"]["template"]] if wl["kind"] == "Job" else list(templates(cj).values())
    for pod in pods:
        assert len(pod["spec"]["containers"]) == 1
        c = pod["spec"]["containers"][0]
        assert c["name"] == kind_container and c["envFrom"] == [{"configMapRef": {"name": "extra"}}]
        assert c["command"] == ["specc-runtime"]
    assert all(validate_object(o) == [] for o in cj.objects)


@pytest.mark.parametrize("fragment, field, words", [
    ("{spec: {restartPolicy: Always}}", "spec.podTemplate.spec.restartPolicy", "spec.replicas.<Type>.restartPolicy"),
    ("{spec: {containers: [{name: pytorch, command: [x]}]}}", "spec.podTemplate.spec.containers[0].command", "spec.replicas.<Type>.command"),
    ("{spec: {containers: [{name: pytorch, image: 'x:1'}]}}", "spec.podTemplate.spec.containers[0].image", "spec.replicas.<Type>.image"),
    ("{spec: {volumes: [{name: specc-config, emptyDir: {}}]}}", "spec.podTemplate.spec.volumes[0].name", "specc's"),
    ("{spec: {containers: [{name: pytorch, env: [{name: MASTER_ADDR, value: x}]}]}}",
     "spec.podTemplate.spec.containers[0].env[0].name", "set by specc or the training operator"),
    ("{metadata: {labels: {specc.dev/job: x}}}", 'spec.podTemplate.metadata.labels["specc.dev/job"]', "specc's"),
    ("{spec: {nodeSelectr: {a: b}}}", "spec.podTemplate.spec.nodeSelectr", "did you mean 'nodeSelector'?"),
    ("{spec: {containers: [{name: pytorch, resourcs: {}}]}}", "spec.podTemplate.spec.containers[0].resourcs", "did you mean 'resources'?"),
    ("{spec: {terminationGracePeriodSeconds: soon}}", "spec.podTemplate.spec.terminationGracePeriodSeconds", "must be an integer"),
    ("{spec: {containers: [{name: helper}]}}", "spec.podTemplate", "has no image"),
    ("{spec: {containers: [{name: pytorch, volumeMounts: [{name: nope, mountPath: /x}]}]}}", "spec.podTemplate", "does not have"),
    ("{spec: {containers: [{name: pytorch, resources: {requests: {nvidia.com/gpu: 1}}}]}}", "spec.podTemplate", "cannot be overcommitted"),
    ("{spec: {containers: [{name: pytorch, env: [{name: DB_PASSWORD, value: hunter22}]}]}}",
     "spec.podTemplate.spec.containers[0].env[0].value", "literal credential"),
    ("{spec: {containers: [{name: pytorch, args: [--token, hunter22abc]}]}}", "spec.podTemplate.spec.containers[0].args", "set by specc"),
])
def test_fragment_problems_are_located_and_say_what_to_do(fragment, field, words):
    diags = problems(BASE + f"  podTemplate: {fragment}\n")
    hits = [d for d in diags if d.field == field and words in d.message]
    assert hits, [str(d) for d in diags]
    assert all("\n" not in str(d) and "hunter22" not in str(d) for d in diags)


def test_a_built_in_trainer_keeps_its_command_and_restricted_pods():
    text = """\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata: {name: t}
spec:
  framework: tensorflow
  trainer: {name: mnist, data_dir: /d/, export_uri: /o/}
  podTemplate: {spec: {containers: [{name: tensorflow, args: [--x]}]}}
"""
    (d,) = problems(text)
    assert "built-in trainer's args is specc's runtime" in d.message
    pod = templates(compiled(text.replace("args: [--x]", "env: [{name: X, value: y}]")))["Worker"]["spec"]
    assert pod["securityContext"] == {"fsGroup": 10001, "fsGroupChangePolicy": "OnRootMismatch", "runAsGroup": 10001,
                                      "runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def test_per_replica_image_command_and_args():
    text = """\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata: {name: t}
spec:
  framework: tensorflow
  container: {image: "team/train:1", command: [python, train.py], args: [--a]}
  replicas:
    PS: {count: 1, image: "team/ps:1", command: [python, ps.py]}
    Worker: {count: 2, args: [--b]}
"""
    t = templates(compiled(text))
    ps, worker = main_container(t["PS"], "tensorflow"), main_container(t["Worker"], "tensorflow")
    assert (ps["image"], ps["command"], ps["args"]) == ("team/ps:1", ["python", "ps.py"], ["--a"])
    assert (worker["image"], worker["command"], worker["args"]) == ("team/train:1", ["python", "train.py"], ["--a", "--b"])
    bad = text.replace('container: {image: "team/train:1", command: [python, train.py], args: [--a]}',
                       "trainer: {name: mnist, data_dir: /d/, export_uri: /o/}")
    assert any("command applies to custom containers" in d.message for d in problems(bad))


def test_resources_merge_field_by_field_and_numbers_are_quantities():
    text = BASE + """\
  resources: {cpu: 1, memory: 4Gi, ephemeralStorage: 10Gi, shm: 2Gi}
  replicas:
    Master: {count: 1, resources: {cpu: 0.5}}
    Worker: {count: 2, resources: {gpus: 8, extended: {amd.com/gpu: 2}, memoryLimit: 6Gi}}
"""
    cj = compiled(text)
    t = templates(cj)
    master, worker = main_container(t["Master"])["resources"], main_container(t["Worker"])["resources"]
    assert master == {"limits": {"ephemeral-storage": "10Gi", "memory": "4Gi"},
                      "requests": {"cpu": "0.5", "ephemeral-storage": "10Gi", "memory": "4Gi"}}
    assert worker == {"limits": {"amd.com/gpu": "2", "ephemeral-storage": "10Gi", "memory": "6Gi", "nvidia.com/gpu": "8"},
                      "requests": {"cpu": "1", "ephemeral-storage": "10Gi", "memory": "4Gi"}}
    for pod in t.values():
        assert {"name": "specc-shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}} in pod["spec"]["volumes"]
        assert {"mountPath": "/dev/shm", "name": "specc-shm"} in main_container(pod)["volumeMounts"]
    assert all(validate_object(o) == [] for o in cj.objects)


@pytest.mark.parametrize("value, rendered", [(1, "1"), (0.5, "0.5"), ("250m", "250m"), (1.25, "1.25"), (16, "16")])
def test_quantities_accept_numbers(value, rendered):
    cj = compiled(BASE + f"  resources: {{cpu: {json.dumps(value)}}}\n")
    assert main_container(templates(cj)["Master"])["resources"]["requests"]["cpu"] == rendered


def test_a_number_where_text_is_wanted_says_how_to_quote_it():
    (d,) = problems(BASE + "  env: {OMP_NUM_THREADS: 4}\n")
    assert d.field == "spec.env.OMP_NUM_THREADS" and 'quote it: "4"' in d.message


def test_nproc_per_node_takes_a_number():
    cj = compiled(BASE + "  nprocPerNode: 4\n")
    assert cj.workload["spec"]["nprocPerNode"] == "4"


@pytest.mark.parametrize("snippet, words", [
    ('  container: {image: "a:1", env: {A: b}}\n', "env goes in spec.env or spec.replicas.<Type>.env"),
    ("  replicas: {Master: 1, Worker: {replicas: 2}}\n", "use count"),
    ("  replicas: {Master: 1, Worker: {template: {}}}\n", "use podTemplate"),
    ("  env: [{name: A, value: b}]\n", "env is a map NAME: value"),
    ('  container: {image: "a:1", resources: {}}\n', "resources go in spec.resources"),
])
def test_near_misses_get_a_pointer(snippet, words):
    text = BASE.replace('  container: {image: "registry.example.com/train:1", command: [torchrun, train.py]}\n', "") + snippet
    if "container:" not in snippet:
        text += '  container: {image: "a:1"}\n'
    diags = problems(text)
    assert any(words in d.message for d in diags), [str(d) for d in diags]


# Generated fragments: whatever the user sets reaches the pod; what they do not set stays as generated.
_scalars = st.one_of(st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=8), st.integers(0, 99))
_fragments = st.fixed_dictionaries({}, optional={
    "nodeSelector": st.dictionaries(st.sampled_from(["a", "b", "pool"]), st.sampled_from(["x", "y"]), max_size=2),
    "serviceAccountName": st.sampled_from(["sa1", "sa2"]),
    "priorityClassName": st.sampled_from(["high", "low"]),
    "schedulerName": st.sampled_from(["volcano", "default-scheduler"]),
    "hostIPC": st.booleans(),
    "terminationGracePeriodSeconds": st.integers(0, 3600),
    "imagePullSecrets": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["r1", "r2", "r3"])}), max_size=3,
                                 unique_by=lambda d: d["name"]),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_fragments, _fragments)
def test_merged_pods_hold_every_fragment_field_and_stay_valid(job_fragment, worker_fragment):
    text = BASE + f"""\
  scheduling: {{nodeSelector: {{gen: "1"}}, serviceAccountName: gen}}
  podTemplate: {{spec: {json.dumps(job_fragment)}}}
  replicas:
    Master: 1
    Worker: {{count: 2, podTemplate: {{spec: {json.dumps(worker_fragment)}}}}}
"""
    cj = compiled(text)
    assert all(validate_object(o) == [] for o in cj.objects)
    t = templates(cj)
    expected = {"Master": merge(merge({"nodeSelector": {"gen": "1"}, "serviceAccountName": "gen"}, job_fragment, ("spec",)), {}, ("spec",)),
                "Worker": merge(merge({"nodeSelector": {"gen": "1"}, "serviceAccountName": "gen"}, job_fragment, ("spec",)),
                                worker_fragment, ("spec",))}
    for rtype, want in expected.items():
        pod = t[rtype]["spec"]
        for key, value in want.items():
            assert pod[key] == value, (rtype, key)
        assert main_container(t[rtype])["image"] == "registry.example.com/train:1"
    # Byte-stable: the same spec renders the same text.
    from compiler.render import render_stream

    assert render_stream([cj]) == render_stream([compiled(text)])
    assert list(yaml.safe_load_all(render_stream([cj]))) == list(cj.objects)


def test_pod_template_schema_is_the_pinned_crds():
    """compiler/podtemplate.schema.json is what `python -m compiler.podtemplate` derives today."""
    from compiler import podtemplate
    from conftest import CRDS

    assert podtemplate.main(["--check", str(CRDS)]) == 0


def test_config_map_and_secret_volumes_with_sub_paths():
    text = BASE + """\
  volumes:
    - {name: cfg, mountPath: /etc/cfg/train.yaml, configMap: train-config, subPath: train.yaml}
    - {name: sa, mountPath: /var/secrets/gcp, secret: gcp-sa}
"""
    cj = compiled(text)
    pod = templates(cj)["Worker"]
    assert {"name": "cfg", "configMap": {"name": "train-config"}} in pod["spec"]["volumes"]
    assert {"name": "sa", "secret": {"secretName": "gcp-sa"}} in pod["spec"]["volumes"]
    mounts = main_container(pod)["volumeMounts"]
    assert {"mountPath": "/etc/cfg/train.yaml", "name": "cfg", "subPath": "train.yaml"} in mounts
    assert {"mountPath": "/var/secrets/gcp", "name": "sa", "readOnly": True} in mounts
    assert all(validate_object(o) == [] for o in cj.objects)
    bad = BASE + "  volumes: [{name: v, mountPath: /v, configMap: c, subPath: ../etc}]\n"
    assert [d.field for d in problems(bad)] == ["spec.volumes[0].subPath"]
    both = BASE + "  volumes: [{name: v, mountPath: /v, configMap: c, secret: s}]\n"
    assert any("set exactly one of" in d.message for d in problems(both))


def test_a_pod_template_on_a_trainjob_uses_speccs_runtime():
    """Trainer's runtime patches cannot carry a pod template: the TrainJob gets specc's own
    TrainingRuntime (its container is `node`), and naming a platform runtime is refused there."""
    text = BASE + """\
  target: trainjob
  podTemplate:
    metadata: {annotations: {sidecar.istio.io/inject: "false"}}
    spec: {imagePullSecrets: [{name: regcred}], containers: [{name: node, envFrom: [{secretRef: {name: hf}}]}]}
"""
    cj = compiled(text)
    kinds_ = [o["kind"] for o in cj.objects]
    assert kinds_ == ["TrainingRuntime", "TrainJob"]
    runtime = cj.objects[0]
    pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
    assert pod["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    (node,) = pod["spec"]["containers"]
    assert node["name"] == "node" and node["envFrom"] == [{"secretRef": {"name": "hf"}}]
    assert all(validate_object(o) == [] for o in cj.objects)
    named = text.replace("  target: trainjob\n", "  target: trainjob\n  runtime: {name: torch-distributed}\n")
    assert [d.field for d in problems(named)] == ["spec.podTemplate"]
