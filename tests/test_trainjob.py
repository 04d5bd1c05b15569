"""`spec.target: trainjob`: Kubeflow Trainer v2.3 TrainJobs and specc's TrainingRuntime.

What the output must satisfy is read from the v2.3.0 / JobSet v0.12.0 sources and CRDs in
../shared/crds/trainer-v2: the CRD schemas and their create-time CEL rules (tests/k8s_schemas.py,
cel-python), Trainer's webhook (compiler/kinds/trainingruntime.py `admission`, checked here
against hand-made refusals), the built-in runtimes' shape, and the JobSet Trainer builds. Also:
which runtime a spec gets, located errors for what a TrainJob cannot express, names and hashes,
the `.specc.yaml` repository default (render, cache, plan), lint, and the runtime's JobSet env.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compiler.cli import main
from compiler.kinds import trainingruntime as tr, trainjob
from compiler.lint import lint_paths
from conftest import CRDS, REPO, compile_specs
from k8s_schemas import cel_problems, cel_rules, validate_object
from runtime import jobset
from runtime.errors import ConfigError

GOLDEN = REPO / "tests" / "golden"
BOOK = ["mnist", "mnist-gpu", "mnist-image", "pytorch-dist", "pytorch-mnist", "recommender"]
V2 = CRDS / "trainer-v2"


def compiled(text: str, tmp_path: Path, name: str = "job.yaml"):
    p = tmp_path / name
    p.write_text(text)
    jobs, diags = compile_specs([p])
    return (jobs[0] if jobs else None), diags


def objs(job) -> dict[str, dict]:
    return {o["kind"]: o for o in job.objects}


def runtime_for(job) -> dict | None:
    """The runtime object a rendered TrainJob names: specc's, or a built-in one as Trainer installs it."""
    o = objs(job)
    ref = o["TrainJob"]["spec"]["runtimeRef"]
    return o.get("TrainingRuntime") if ref["kind"] == "TrainingRuntime" else tr.builtin(ref["name"])


SPEC = """\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata: {{name: {name}, namespace: ml}}
spec:
  framework: {framework}
  target: trainjob
{body}"""


def spec(body: str, framework: str = "pytorch", name: str = "demo") -> str:
    return SPEC.format(name=name, framework=framework, body=body)


CUSTOM = "  container: {image: registry.example.com/ml/train:1.0, command: [python, /app/train.py]}\n"


# ----------------------------------------------------------------------------- the book's specs


@pytest.mark.parametrize("book", BOOK)
def test_book_specs_render_trainjobs_trainer_accepts(book):
    """Every distributed book spec with target trainjob: valid against the CRDs (schema and CEL),
    accepted by Trainer's webhook, its runtime one Trainer applies."""
    (job,), diags = compile_specs([GOLDEN / f"trainjob-{book}" / "spec.yaml"])
    assert not diags
    kinds = [o["kind"] for o in job.objects]
    assert kinds[-1] == "TrainJob" and kinds.count("TrainJob") == 1
    for o in job.objects:
        assert validate_object(o) == [], o["kind"]
    tj, runtime = objs(job)["TrainJob"], runtime_for(job)
    assert tr.admission(tj, runtime) == []
    expected_runtime = "ClusterTrainingRuntime" if book == "pytorch-dist" else "TrainingRuntime"
    assert tj["spec"]["runtimeRef"]["kind"] == expected_runtime
    assert "suspend" not in tj["spec"]


def test_specs_own_runtime_is_one_trainer_applies():
    """mlPolicy without a framework policy, one replicated job `node` labelled as the trainer, its
    container `node`: so Trainer sets numNodes, resourcesPerNode and trainer.* on it."""
    (job,), _ = compile_specs([GOLDEN / "trainjob-mnist" / "spec.yaml"])
    rt, tj = objs(job)["TrainingRuntime"], objs(job)["TrainJob"]
    assert rt["spec"]["mlPolicy"] == {"numNodes": 1} and tr.policy_of(rt) is None
    (node,) = rt["spec"]["template"]["spec"]["replicatedJobs"]
    assert node["name"] == "node"
    assert node["template"]["metadata"]["labels"] == {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}
    assert [c["name"] for c in node["template"]["spec"]["template"]["spec"]["containers"]] == ["node"]
    assert rt["metadata"]["name"] == tj["spec"]["runtimeRef"]["name"] == tj["metadata"]["name"] + "-runtime"
    assert rt["metadata"]["namespace"] == tj["metadata"]["namespace"]
    ann = rt["metadata"]["annotations"]
    assert int(ann["argocd.argoproj.io/sync-wave"]) < 0  # before its TrainJob (wave 0)
    assert "Prune=false" in ann["argocd.argoproj.io/sync-options"]
    assert ann["argocd.argoproj.io/compare-options"] == "IgnoreExtraneous"
    # The JobSet Trainer builds: two pods of the trainer's resources, its env after the runtime's.
    js = tr.jobset_spec(tj, rt)
    jspec = js["replicatedJobs"][0]["template"]["spec"]
    assert jspec["parallelism"] == jspec["completions"] == 2
    c = jspec["template"]["spec"]["containers"][0]
    assert c["resources"] == tj["spec"]["trainer"]["resourcesPerNode"]
    names = [e["name"] for e in c["env"]]
    assert names[0] == "SPECC_JOBSET_NAME" and "SPECC_NUM_NODES" in names and len(names) == len(set(names))


def test_without_an_ml_policy_resources_per_node_are_dropped():
    """Why specc's runtime has mlPolicy: Trainer applies resourcesPerNode only with one."""
    (job,), _ = compile_specs([GOLDEN / "trainjob-mnist" / "spec.yaml"])
    rt, tj = copy.deepcopy(objs(job)["TrainingRuntime"]), objs(job)["TrainJob"]
    c = rt["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"][0]
    del c["resources"]
    with_policy = tr.jobset_spec(tj, rt)["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"][0]
    del rt["spec"]["mlPolicy"]
    without = tr.jobset_spec(tj, rt)["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"][0]
    assert with_policy["resources"] == tj["spec"]["trainer"]["resourcesPerNode"] and "resources" not in without


@pytest.mark.parametrize("path", sorted(V2.glob("runtime_*.yaml")), ids=lambda p: p.stem)
def test_builtin_runtimes_are_known_as_trainer_ships_them(path):
    rt = yaml.safe_load(path.read_text())
    name = rt["metadata"]["name"]
    assert tr.BUILTIN_POLICIES[name] == tr.policy_of(rt)
    jobs = rt["spec"]["template"]["spec"]["replicatedJobs"]
    if name in tr.SINGLE_NODE_JOB:
        assert tr.builtin(name) == {**rt, "metadata": {**rt["metadata"], "labels": {"trainer.kubeflow.org/framework": tr.policy_of(rt)}}}
        (c,) = jobs[0]["template"]["spec"]["template"]["spec"]["containers"]
        assert "command" not in c and "restartPolicy" not in jobs[0]["template"]["spec"]["template"]["spec"]
    else:
        assert len(jobs) > 1 and tr.builtin(name) is None
    # Every built-in runtime has the job `node` with a container `node` (where specc's patches go).
    (node,) = [j for j in jobs if j["name"] == "node"]
    assert "node" in [c["name"] for c in node["template"]["spec"]["template"]["spec"]["containers"]]


# ----------------------------------------------------------------------------- which runtime


@pytest.mark.parametrize("body, framework, runtime", [
    (CUSTOM, "pytorch", ("ClusterTrainingRuntime", "torch-distributed")),
    (CUSTOM + "  replicas: {Master: {restartPolicy: OnFailure}, Worker: {count: 2, restartPolicy: OnFailure}}\n", "pytorch",
     ("ClusterTrainingRuntime", "torch-distributed")),
    (CUSTOM + "  replicas: {Master: {restartPolicy: ExitCode}, Worker: {restartPolicy: ExitCode}}\n", "pytorch", None),
    (CUSTOM + "  runPolicy: {backoffLimit: 3}\n", "pytorch", None),
    (CUSTOM + "  scheduling: {priorityClassName: high}\n", "pytorch", None),
    ("  container: {image: r.io/a:1, workingDir: /app}\n", "pytorch", None),
    ("  trainer: {name: mnist, data_dir: /d, export_uri: /m}\n", "pytorch", None),
    (CUSTOM, "tensorflow", None),
    (CUSTOM + "  runtime: {name: jax-distributed}\n", "python", ("ClusterTrainingRuntime", "jax-distributed")),
    (CUSTOM + "  runtime: {name: team-torch, kind: TrainingRuntime}\n", "pytorch", ("TrainingRuntime", "team-torch")),
])
def test_runtime_choice(tmp_path, body, framework, runtime):
    """A named runtime, else torch-distributed for a custom PyTorch image whose pod fits runtimePatches,
    else specc's own."""
    job, diags = compiled(spec(body, framework), tmp_path)
    assert not diags, [str(d) for d in diags]
    ref = objs(job)["TrainJob"]["spec"]["runtimeRef"]
    if runtime is None:
        assert ref["kind"] == "TrainingRuntime" and "TrainingRuntime" in objs(job)
        assert "runtimePatches" not in objs(job)["TrainJob"]["spec"]
    else:
        assert (ref["kind"], ref["name"]) == runtime and "TrainingRuntime" not in objs(job)
        (patch,) = objs(job)["TrainJob"]["spec"]["runtimePatches"]
        assert patch["manager"] == trainjob.MANAGER


def test_patches_carry_only_what_podspecpatch_allows():
    """torch-distributed with volumes, a service account, node selection and a queue: the pod
    settings go into one runtimePatches entry of a domain-prefixed manager, the node container's
    part without env; the queue is Kueue's label, suspend is not rendered."""
    (job,), diags = compile_specs([GOLDEN / "trainjob-torch-patches" / "spec.yaml"])
    assert not diags
    tj = objs(job)["TrainJob"]
    assert tj["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a-gpu" and "suspend" not in tj["spec"]
    (patch,) = tj["spec"]["runtimePatches"]
    assert tr._domain_prefixed(patch["manager"])
    pod = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
    allowed = set(yaml.safe_load((V2 / "trainer.kubeflow.org_trainjobs.yaml").read_text())["spec"]["versions"][0]["schema"]
                  ["openAPIV3Schema"]["properties"]["spec"]["properties"]["runtimePatches"]["items"]["properties"]
                  ["trainingRuntimeSpec"]["properties"]["template"]["properties"]["spec"]["properties"]["replicatedJobs"]
                  ["items"]["properties"]["template"]["properties"]["spec"]["properties"]["template"]["properties"]
                  ["spec"]["properties"])
    assert set(pod["spec"]) <= allowed
    assert pod["spec"]["containers"] == [{"name": "node", "volumeMounts": pod["spec"]["containers"][0]["volumeMounts"]}]
    trainer = tj["spec"]["trainer"]
    assert trainer["numNodes"] == 4 and trainer["numProcPerNode"] == 2
    env = {e["name"]: e for e in trainer["env"]}
    assert env["MASTER_ADDR"]["value"] == f"{tj['metadata']['name']}-node-0-0.{tj['metadata']['name']}"
    assert env["MASTER_PORT"]["value"] == "29500" and env["WORLD_SIZE"]["value"] == "8"
    assert env["RANK"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
    assert not [n for n in env if n.startswith("PET_")]
    assert tr.admission(tj, tr.builtin("torch-distributed")) == []


# ----------------------------------------------------------------------------- restart rules


@pytest.mark.parametrize("policy, backoff, pod_policy, job_fields, failure", [
    ("OnFailure", None, "OnFailure", {}, None),
    ("OnFailure", 3, "OnFailure", {"backoffLimit": 3}, None),
    ("Never", 3, "Never", {"backoffLimit": 0}, None),
    ("ExitCode", None, "Never", {"backoffLimit": 0}, 6),
    ("ExitCode", 2, "Never", {"backoffLimit": 0}, 2),
])
def test_restart_rules(policy, backoff, pod_policy, job_fields, failure):
    got_pod, got_job, got_failure = tr.restart_rules(policy, backoff)
    assert got_pod == pod_policy
    assert {k: v for k, v in got_job.items() if k != "podFailurePolicy"} == job_fields
    if failure is None:
        assert got_failure is None and "podFailurePolicy" not in got_job
    else:
        (rule,) = got_job["podFailurePolicy"]["rules"]
        assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == list(range(1, 128))
        assert rule["onExitCodes"]["containerName"] == "node"
        assert got_failure == {"maxRestarts": failure, "rules": [
            {"name": "PermanentExitCode", "action": "FailJobSet", "onJobFailureReasons": ["PodFailurePolicy"]}]}


# ----------------------------------------------------------------------------- names and hashes


#: The names the book's specs (as tests/golden/trainjob-*) get; a change means jobs re-run.
PINNED = {
    "mnist": "mnist-v2-f273e802", "mnist-gpu": "mnist-gpu-v2-b49f639d", "mnist-image": "mnist-image-v2-d76a752b",
    "pytorch-dist": "pytorch-dist-v2-291dcfd5", "pytorch-mnist": "pytorch-mnist-v2-9796e012",
    "recommender": "recommenderjob-v2-dd855f68",
}


@pytest.mark.parametrize("book", BOOK)
def test_trainjob_names_are_pinned(book):
    (job,), _ = compile_specs([GOLDEN / f"trainjob-{book}" / "spec.yaml"])
    assert job.job_name == PINNED[book]
    assert {o["metadata"]["name"] for o in job.objects} <= {PINNED[book], PINNED[book] + "-config", PINNED[book] + "-runtime"}


def test_hash_covers_the_runtime_and_leaves_out_suspend(tmp_path):
    body = CUSTOM + "  replicas: {Master: {restartPolicy: ExitCode}, Worker: {restartPolicy: ExitCode}}\n"
    base, _ = compiled(spec(body), tmp_path, "a.yaml")
    suspended, _ = compiled(spec(body + "  runPolicy: {suspend: true}\n"), tmp_path, "b.yaml")
    resumed, _ = compiled(spec(body + "  runPolicy: {suspend: false}\n"), tmp_path, "c.yaml")
    assert base.job_name == suspended.job_name == resumed.job_name
    assert objs(suspended)["TrainJob"]["spec"]["suspend"] is True
    # Only the runtime differs (the pod's restart rules): the name changes too.
    other, _ = compiled(spec(body.replace("ExitCode", "Never")), tmp_path, "d.yaml")
    assert other.job_name != base.job_name
    assert json.dumps(objs(other)["TrainJob"]["spec"]).replace(other.job_name, base.job_name) == \
        json.dumps(objs(base)["TrainJob"]["spec"])
    # The same spec under v1 is another job.
    v1, _ = compiled(spec(body).replace("  target: trainjob\n", ""), tmp_path, "e.yaml")
    assert v1.job_name != base.job_name and v1.workload["kind"] == "PyTorchJob"


def test_v1_output_does_not_change():
    """target: v1 (the default) renders today's output: the committed rendered/ folder."""
    r = subprocess.run([sys.executable, "-m", "compiler", "render", "specs", "-o", "rendered", "--check"], cwd=REPO,
                       capture_output=True, text=True, env={**os.environ, "SPECC_NO_CACHE": "1"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr


# ----------------------------------------------------------------------------- located errors


BAD = [
    ("TF parameter servers", "tensorflow", CUSTOM + "  replicas: {PS: 1, Worker: 2}\n", "spec.replicas.PS",
     "a TrainJob runs one group of identical nodes: tensorflow nodes are Worker replicas, not PS"),
    ("different node settings", "pytorch", CUSTOM + "  replicas:\n    Master: {resources: {cpu: '2'}}\n    Worker: {count: 2}\n",
     "spec.replicas.Master.resources", "Master and Worker are one group of identical nodes in a TrainJob"),
    ("Always", "tensorflow", CUSTOM + "  replicas: {Worker: {restartPolicy: Always}}\n",
     "spec.replicas.Worker.restartPolicy", "cannot use restartPolicy Always"),
    ("elastic", "pytorch", CUSTOM + "  elasticPolicy: {minReplicas: 1, maxReplicas: 4}\n", "spec.elasticPolicy",
     "no elastic training"),
    ("nproc gpu", "pytorch", CUSTOM + "  nprocPerNode: gpu\n", "spec.nprocPerNode", "not gpu"),
    ("nproc on specc's runtime", "pytorch", "  trainer: {name: mnist, data_dir: /d, export_uri: /m}\n  nprocPerNode: '2'\n",
     "spec.nprocPerNode", "numProcPerNode needs a torch runtime"),
    ("cleanPodPolicy All", "tensorflow", CUSTOM + "  runPolicy: {cleanPodPolicy: All}\n", "spec.runPolicy.cleanPodPolicy",
     "keeps finished pods"),
    ("gang scheduling", "tensorflow", CUSTOM + "  runPolicy: {schedulingPolicy: {minAvailable: 2}}\n",
     "spec.runPolicy.schedulingPolicy", "podGroupPolicy"),
    ("a node variable", "tensorflow", CUSTOM + "  env: {SPECC_NUM_NODES: '3'}\n", "spec.env.SPECC_NUM_NODES",
     "is set by specc, Kubernetes or Trainer"),
    ("completion index", "pytorch", CUSTOM + "  env: {JOB_COMPLETION_INDEX: '0'}\n", "spec.env.JOB_COMPLETION_INDEX",
     "is set by specc, Kubernetes or Trainer"),
    ("torch plugin env", "pytorch", CUSTOM + "  env: {PET_NNODES: '2'}\n", "spec.env.PET_NNODES", "do not set it here"),
    ("xgboost plugin env", "python", CUSTOM + "  runtime: {name: xgboost-distributed}\n  env: {DMLC_NUM_WORKER: '2'}\n",
     "spec.env.DMLC_NUM_WORKER", "do not set it here"),
    ("TensorFlow on a platform runtime", "tensorflow", CUSTOM + "  runtime: {name: torch-distributed}\n", "spec.runtime",
     "Trainer v2 has no TensorFlow runtime"),
    ("sklearn without a runtime", "sklearn", "  trainer: {name: income, data_uri: /d, export_uri: /m}\n", "spec.target",
     "a sklearn job stays a batch/v1 Job"),
    ("patch: workingDir", "pytorch", "  container: {image: r.io/a:1, workingDir: /app}\n  runtime: {name: torch-distributed}\n",
     "spec.container.workingDir", "a runtime patch cannot set workingDir"),
    ("patch: priorityClassName", "pytorch", CUSTOM + "  runtime: {name: torch-distributed}\n  scheduling: {priorityClassName: hi}\n",
     "spec.scheduling.priorityClassName", "PodSpecPatch has no such field"),
    ("patch: restart rule", "pytorch", CUSTOM + "  runtime: {name: torch-distributed}\n  replicas: {Master: {restartPolicy: Never}, "
     "Worker: {restartPolicy: Never}}\n", "spec.replicas.Master.restartPolicy", "restart rules live in the runtime"),
    ("patch: any rule on an unknown runtime", "pytorch", CUSTOM + "  runtime: {name: team-rt}\n  replicas: {Master: "
     "{restartPolicy: OnFailure}, Worker: 1}\n", "spec.replicas.Master.restartPolicy", "team-rt decides restarts"),
    ("patch: backoffLimit", "pytorch", CUSTOM + "  runtime: {name: torch-distributed}\n  runPolicy: {backoffLimit: 2}\n",
     "spec.runPolicy.backoffLimit", "the Job's backoffLimit lives in the runtime"),
    ("patch: TTL", "pytorch", CUSTOM + "  runtime: {name: torch-distributed}\n  runPolicy: {ttlSecondsAfterFinished: 60}\n",
     "spec.runPolicy.ttlSecondsAfterFinished", "ttlSecondsAfterFinished lives in the runtime"),
    ("JobSet's name budget", "tensorflow", CUSTOM + "  replicas: {Worker: 12}\n", "metadata.name",
     "name is 40 characters; at most 38 fit so that every pod name <job>-node-0-<index>-<5 random characters> and "
     "the hash suffix stays within 63"),
]


@pytest.mark.parametrize("framework, body, field, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_what_a_trainjob_cannot_express_is_a_located_error(tmp_path, framework, body, field, message):
    name = "a-rather-long-name-for-a-training-job-xy" if field == "metadata.name" else "demo"
    text = spec(body, framework, name=name)
    job, diags = compiled(text, tmp_path)
    assert job is None
    hits = [d for d in diags if d.field == field]
    assert hits and message in hits[0].message, [str(d) for d in diags]
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if field.split(".")[-1].split("[")[0] in ln)
    assert hits[0].line == line, (hits[0], line)


def test_trainers_webhook_has_the_last_word(tmp_path, monkeypatch):
    """Every rendered TrainJob whose runtime specc knows passes the webhook's rules at validation
    (here with a manager name the webhook refuses)."""
    monkeypatch.setattr(trainjob, "MANAGER", "specc")
    text = spec(CUSTOM)
    job, diags = compiled(text, tmp_path)
    assert job is None and [(d.field, d.line) for d in diags] == [("metadata.name", 3)]
    assert diags[0].message == ("Trainer's webhook would refuse this TrainJob: spec.runtimePatches[0].manager: 'specc' "
                                "must be a domain-prefixed path (such as example.com/name)")


def test_runtime_needs_target_trainjob(tmp_path):
    job, diags = compiled(spec(CUSTOM + "  runtime: {name: torch-distributed}\n").replace("  target: trainjob\n", ""), tmp_path)
    assert job is None and [(d.field, d.message) for d in diags] == [
        ("spec.runtime", "runtime names a Kubeflow Trainer v2 runtime: it applies to target: trainjob only")]


# ----------------------------------------------------------------------------- Trainer's webhook


def _tj(**spec_fields) -> dict:
    base = {"runtimeRef": {"name": "torch-distributed", "apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime"},
            "trainer": {"image": "a:1", "numNodes": 2}}
    return {"apiVersion": tr.API_VERSION, "kind": "TrainJob", "metadata": {"name": "job", "namespace": "ml"},
            "spec": {**base, **spec_fields}}


def _patch(manager="specc.dev/compiler", job="node", containers=None, init=None) -> dict:
    pod = {}
    if containers is not None:
        pod["containers"] = containers
    if init is not None:
        pod["initContainers"] = init
    return {"manager": manager, "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [
        {"name": job, "template": {"spec": {"template": {"spec": pod}}}}]}}}}


@pytest.mark.parametrize("trainjob_obj, runtime, refused", [
    (_tj(), tr.builtin("torch-distributed"), None),
    (_tj(runtimeRef={"name": "x", "apiGroup": "example.com", "kind": "Runtime"}), None, "unsupported runtime"),
    (_tj(runtimeRef={"name": "team", "apiGroup": "trainer.kubeflow.org", "kind": "TrainingRuntime"}), None,
     "must be created before the TrainJob is created"),
    (_tj(runtimePatches=[_patch(manager="specc")]), tr.builtin("torch-distributed"), "must be a domain-prefixed path"),
    (_tj(runtimePatches=[_patch(job="launcher")]), tr.builtin("torch-distributed"), "replicated job that doesn't exist"),
    (_tj(runtimePatches=[_patch(containers=[{"name": "sidecar", "env": []}])]), tr.builtin("torch-distributed"),
     "container that doesn't exist in the runtime job node"),
    (_tj(runtimePatches=[_patch(init=[{"name": "fetch"}])]), tr.builtin("torch-distributed"),
     "initContainer that doesn't exist"),
    (_tj(runtimePatches=[_patch(containers=[{"name": "node", "env": [{"name": "A", "value": "1"}]}])]),
     tr.builtin("torch-distributed"), "must not have envs for the dataset-initializer, model-initializer, node containers"),
    (_tj(trainer={"image": "a:1", "env": [{"name": "PET_NNODES", "value": "1"}]}), tr.builtin("torch-distributed"),
     "must not have reserved envs"),
    (_tj(trainer={"image": "a:1", "env": [{"name": "PET_NNODES", "value": "1"}]}), tr.builtin("jax-distributed") and
     {**tr.builtin("jax-distributed"), "metadata": {"name": "torch-distributed"}}, None),
    ({**_tj(), "metadata": {"name": "a" * 49, "namespace": "ml"}}, tr.builtin("torch-distributed"),
     "pod names generated for this JobSet will exceed 63 characters"),
])
def test_admission_mirrors_trainers_webhook(trainjob_obj, runtime, refused):
    problems = tr.admission(trainjob_obj, runtime)
    if refused is None:
        assert problems == []
    else:
        assert any(refused in p for p in problems), problems


def test_crd_cel_rules_are_evaluated():
    """The create-time CEL rules of the v2.3.0 CRDs run on rendered objects (cel-python); those
    reading oldSelf are the TrainJob's immutable fields, which the kind declares for specc plan."""
    tj = _tj()
    assert cel_problems(tj) == []
    assert any("RFC 1035" in p for p in cel_problems({**tj, "metadata": {"name": "Job_1"}}))
    assert any("no more than 63" in p for p in cel_problems({**tj, "metadata": {"name": "a" * 64}}))
    assert any("ManagedBy must be" in p for p in cel_problems(_tj(managedBy="me")))
    two = {**tr.builtin("torch-distributed"), "kind": "TrainingRuntime"}
    two["spec"] = {**two["spec"], "mlPolicy": {"torch": {}, "jax": {}}}
    assert any("Only one of the policy" in p for p in cel_problems(two))
    create_time = [r for _, r, _ in cel_rules("TrainJob") if "oldSelf" not in r]
    assert len(create_time) == 6  # name format and length, managedBy, two storageUris, trainerStatus
    immutable = {path.lstrip(".") for path, r, _ in cel_rules("TrainJob") if r == "self == oldSelf"}
    top = {p for p in immutable if p.count(".") == 1}
    assert top == set(trainjob.IMMUTABLE_FIELDS) - {"spec.runtimePatches"}
    assert all(p.startswith("spec.runtimePatches[]") for p in immutable - top)


# ----------------------------------------------------------------------------- .specc.yaml


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    (root / ".git").mkdir()  # the lookup stops at a repository's root
    for name in ("mnist.yaml", "income.yaml", "pytorch-dist.yaml"):
        (root / "specs" / name).write_text((REPO / "specs" / name).read_text())
    return root


def test_repository_default_target(tmp_path, monkeypatch, capsys):
    root = _repo(tmp_path)
    monkeypatch.chdir(root)
    (root / ".specc.yaml").write_text("target: trainjob\n")  # above specs/: found by walking up
    jobs, diags = compile_specs(["specs"])
    assert not diags
    kinds = {j.spec_name: j.workload["kind"] for j in jobs}
    assert kinds == {"mnist": "TrainJob", "income": "Job", "pytorch-dist": "TrainJob"}  # income stays a batch/v1 Job
    # A spec's own target wins: spec by spec migration works from either side.
    text = (root / "specs" / "mnist.yaml").read_text().replace("  framework: tensorflow\n", "  framework: tensorflow\n  target: v1\n")
    (root / "specs" / "mnist.yaml").write_text(text)
    jobs, _ = compile_specs(["specs/mnist.yaml"])
    assert jobs[0].workload["kind"] == "TFJob" and jobs[0].job_name == "mnist-50f01bd5"
    # A nearer file wins; a bad one is a located error for every spec it applies to.
    (root / "specs" / ".specc.yaml").write_text("target: v2\n")
    assert main(["validate", "specs"]) == 2
    err = capsys.readouterr().err
    assert "specs/.specc.yaml:1:9: target: must be one of v1, trainjob, got 'v2'" in err and err.count(".specc.yaml") == 1
    (root / "specs" / ".specc.yaml").write_text("targett: v1\n")
    assert main(["validate", "specs"]) == 2
    assert "specs/.specc.yaml:1:1: targett: unknown setting 'targett'; did you mean 'target'?" in capsys.readouterr().err


def test_repository_default_is_part_of_the_render_cache_key(tmp_path):
    root = _repo(tmp_path)
    env = {**os.environ, "SPECC_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}

    def render() -> str:
        r = subprocess.run([sys.executable, "-m", "compiler", "render", "specs/mnist.yaml"], cwd=root, env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    v1 = render()
    (root / "specs" / ".specc.yaml").write_text("target: trainjob\n")
    v2 = render()
    assert "kind: TFJob" in v1 and "kind: TrainJob" in v2 and render() == v2
    (root / "specs" / ".specc.yaml").unlink()
    assert render() == v1


def test_plan_reads_the_default_at_both_commits(tmp_path, monkeypatch, capsys):
    """Adding `.specc.yaml` moves specs to TrainJobs: specc plan shows them re-run, with the target change."""
    root = _repo(tmp_path)
    (root / ".git").rmdir()
    monkeypatch.chdir(root)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    assert main(["render", "specs", "-o", "rendered", "-q"]) == 0
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1"], check=True)
    (root / "specs" / ".specc.yaml").write_text("target: trainjob\n")
    capsys.readouterr()
    assert main(["plan", "--base", "main", "--format", "json", "specs"]) == 0
    jobs = {j["job"]: j for j in json.loads(capsys.readouterr().out)["jobs"]}
    assert jobs["income"]["action"] == "unchanged"
    for name in ("mnist", "pytorch-dist"):
        assert jobs[name]["action"] == "rerun"
        assert {"path": "spec.target", "old": "v1", "new": "trainjob"} in jobs[name]["changes"]
    # The base read from git gets the same default: committing it leaves nothing to do.
    assert main(["render", "specs", "-o", "rendered", "-q"]) == 0
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v2"], check=True)
    capsys.readouterr()
    assert main(["plan", "--base", "main", "--format", "json", "specs"]) == 0
    assert {j["action"] for j in json.loads(capsys.readouterr().out)["jobs"]} == {"unchanged"}


# ----------------------------------------------------------------------------- lint and plan


def test_lint_says_what_moving_to_trainjob_does(tmp_path):
    text = spec(CUSTOM + "  runPolicy: {ttlSecondsAfterFinished: 600}\n", "tensorflow")
    p = tmp_path / "job.yaml"
    p.write_text(text)
    found = {d.rule: d for d in lint_paths([str(p)])}
    assert "training runs again and Argo CD prunes the v1 job" in found["target-trainjob"].message
    assert found["target-trainjob"].line == 6
    assert "no TTL on the TrainJob itself" in found["trainjob-ttl"].message
    assert "ttl-after-finished" not in found  # no re-run loop: the finished TrainJob stays


def test_plan_warns_about_immutable_trainjob_fields(tmp_path, monkeypatch, capsys):
    """naming: fixed with a changed trainer block: the sync would fail (CEL self == oldSelf)."""
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    monkeypatch.chdir(root)
    text = spec(CUSTOM + "  naming: fixed\n", name="fixed")
    (root / "specs" / "job.yaml").write_text(text)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    assert main(["render", "specs", "-o", "rendered", "-q"]) == 0
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    (root / "specs" / "job.yaml").write_text(text.replace("train:1.0", "train:1.1"))
    capsys.readouterr()
    assert main(["plan", "--base", "main", "--format", "json", "specs"]) == 0
    (job,) = json.loads(capsys.readouterr().out)["jobs"]
    assert job["action"] == "update"
    assert any("changes spec.trainer of TrainJob fixed" in w for w in job["warnings"])
    # specc's runtime is updated in place too: its JobSet failurePolicy cannot change.
    (root / "specs" / "job.yaml").write_text(text + "  replicas: {Master: {restartPolicy: ExitCode}, Worker: {restartPolicy: ExitCode}}\n")
    assert main(["render", "specs", "-o", "rendered", "-q"]) == 0
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "exit codes"], check=True)
    (root / "specs" / "job.yaml").write_text(text + "  replicas: {Master: {restartPolicy: ExitCode}, Worker: {restartPolicy: ExitCode}}\n"
                                             "  runPolicy: {backoffLimit: 1}\n")
    capsys.readouterr()
    assert main(["plan", "--base", "HEAD", "--format", "json", "specs"]) == 0
    (job,) = json.loads(capsys.readouterr().out)["jobs"]
    assert any("changes spec.template.spec.failurePolicy of TrainingRuntime fixed" in w for w in job["warnings"]), job


def test_render_of_a_trainjob_stays_light(tmp_path):
    p = tmp_path / "job.yaml"
    p.write_text((GOLDEN / "trainjob-mnist" / "spec.yaml").read_text())
    code = (f"import sys; from compiler.cli import main; main(['render', {str(p)!r}]); "
            "print(sorted({'pydantic', 'kubernetes', 'tensorflow', 'torch', 'celpy'} & set(sys.modules)), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "SPECC_NO_CACHE": "1"})
    assert r.returncode == 0 and r.stderr.strip().splitlines()[-1] == "[]", r.stderr


# ----------------------------------------------------------------------------- the runtime's side


@pytest.mark.parametrize("env, framework, expected", [
    ({"JOB_COMPLETION_INDEX": "1", "SPECC_NUM_NODES": "2", "SPECC_JOBSET_NAME": "mnist-1"}, "tensorflow",
     {"TF_CONFIG": json.dumps({"cluster": {"worker": ["mnist-1-node-0-0.mnist-1:2222", "mnist-1-node-0-1.mnist-1:2222"]},
                               "task": {"type": "worker", "index": 1}, "environment": "cloud"}, separators=(",", ":"))}),
    ({"JOB_COMPLETION_INDEX": "0", "SPECC_NUM_NODES": "1", "SPECC_JOBSET_NAME": "m"}, "tensorflow", {}),
    ({"JOB_COMPLETION_INDEX": "2", "SPECC_NUM_NODES": "3", "SPECC_JOBSET_NAME": "p"}, "pytorch",
     {"MASTER_ADDR": "p-node-0-0.p", "MASTER_PORT": "29500", "RANK": "2", "WORLD_SIZE": "3"}),
    ({"JOB_COMPLETION_INDEX": "1", "SPECC_NUM_NODES": "2", "SPECC_NODE_ADDRESSES": "127.0.0.1:41000,127.0.0.1:41001"},
     "pytorch", {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "41000", "RANK": "1", "WORLD_SIZE": "2"}),
    ({"PET_NNODES": "4", "PET_NODE_RANK": "3", "PET_MASTER_ADDR": "t-node-0-0.t", "PET_MASTER_PORT": "29500",
      "PET_NPROC_PER_NODE": "auto"}, "pytorch",
     {"MASTER_ADDR": "t-node-0-0.t", "MASTER_PORT": "29500", "RANK": "3", "WORLD_SIZE": "4"}),
    ({"TF_CONFIG": '{"cluster":{}}', "JOB_COMPLETION_INDEX": "0", "SPECC_NUM_NODES": "2"}, "tensorflow", {}),
    ({"WORLD_SIZE": "2", "RANK": "0", "PET_NNODES": "2", "PET_NODE_RANK": "0", "PET_MASTER_ADDR": "x"}, "pytorch", {}),
    ({}, "pytorch", {}),
])
def test_runtime_builds_the_env_from_jobset(env, framework, expected):
    assert jobset.environment(env, framework) == expected


@pytest.mark.parametrize("env, framework, message", [
    ({"JOB_COMPLETION_INDEX": "2", "SPECC_NUM_NODES": "2", "SPECC_JOBSET_NAME": "m"}, "pytorch", "outside SPECC_NUM_NODES=2"),
    ({"JOB_COMPLETION_INDEX": "0", "SPECC_NUM_NODES": "two"}, "pytorch", "is not a whole number"),
    ({"JOB_COMPLETION_INDEX": "0", "SPECC_NUM_NODES": "2"}, "tensorflow", "SPECC_JOBSET_NAME is not set"),
    ({"JOB_COMPLETION_INDEX": "0", "SPECC_NUM_NODES": "2", "SPECC_NODE_ADDRESSES": "a:1"}, "pytorch", "must list 2"),
    ({"PET_NNODES": "2", "PET_NODE_RANK": "0", "PET_MASTER_ADDR": "m"}, "tensorflow", "need specc's TrainingRuntime"),
])
def test_runtime_refuses_a_broken_jobset_env(env, framework, message):
    with pytest.raises(ConfigError, match=message):
        jobset.environment(env, framework)


@pytest.mark.parametrize("trainer, runtime_resources, nproc", [
    ({"numProcPerNode": 3}, None, "3"),
    ({"resourcesPerNode": {"limits": {"nvidia.com/gpu": "2"}}}, None, "auto"),
    ({"resourcesPerNode": {"requests": {"amd.com/gpu": "1"}}}, None, "auto"),
    ({"resourcesPerNode": {"requests": {"cpu": "2500m"}}}, None, "3"),
    ({"resourcesPerNode": {"requests": {"cpu": "0"}, "limits": {"cpu": "4"}}}, None, "4"),
    ({"resourcesPerNode": {"limits": {"cpu": "500m"}}}, None, "1"),
    ({"resourcesPerNode": {"requests": {"memory": "1Gi"}}}, None, "1"),
    ({}, {"requests": {"cpu": "2"}}, "2"),
    ({}, None, "1"),
])
def test_torch_plugins_proc_count(trainer, runtime_resources, nproc):
    """PET_NPROC_PER_NODE as torch.go computes it: auto only with a GPU resource, else the CPU
    request rounded up (the limit without one), at least 1."""
    assert tr.nproc_per_node(trainer, runtime_resources) == nproc


# ----------------------------------------------------------------------------- generated specs


def _trainjob_specs():
    from hypothesis import strategies as st

    from test_properties import specs

    def to_trainjob(doc: dict) -> dict:
        spec_ = doc["spec"]
        spec_["target"] = "trainjob"
        spec_["runPolicy"].pop("cleanPodPolicy", None)
        spec_.pop("elasticPolicy", None)  # v1 only
        if spec_["framework"] in ("sklearn", "python", "paddle"):
            spec_.pop("trainer", None)
            spec_["container"] = {"image": "busybox:1.36", "command": ["sh"]}
            spec_["runtime"] = {"name": "jax-distributed"}
            spec_["runPolicy"].pop("backoffLimit", None)
        types = {"tensorflow": ["Worker"], "pytorch": ["Master", "Worker"], "xgboost": ["Master", "Worker"]}.get(
            spec_["framework"], ["Worker"])
        first = spec_["replicas"].get(types[0]) or {}
        spec_["replicas"] = {t: {**first, "count": 1 if t == "Master" else first.get("count", 1)} for t in types}
        for rep in spec_["replicas"].values():
            if rep.get("restartPolicy") == "Always" or "runtime" in spec_:
                rep["restartPolicy"] = "OnFailure"
        return doc

    return specs().map(to_trainjob)


def test_generated_trainjob_specs_render_what_trainer_accepts():
    """Hostile strings, every framework, restart policy and runtime: valid against the CRDs and
    their CEL rules, accepted by Trainer's webhook, byte-stable."""
    from hypothesis import HealthCheck, given, settings

    from compiler.render import render_stream
    from test_properties import compile_doc

    @settings(max_examples=int(os.environ.get("SPECC_FUZZ_EXAMPLES", "25")), deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_trainjob_specs())
    def check(doc):
        cj = compile_doc(doc)
        assert render_stream([cj]) == render_stream([compile_doc(doc)])
        for o in cj.objects:
            assert validate_object(o) == [], o["kind"]
        assert tr.admission(objs(cj)["TrainJob"], runtime_for(cj)) == []

    check()
