"""`specc run --local` for TrainJobs: Trainer v2's rules played by localrun (budget: the two MNIST
runs about as long as test_mnist's `specc run --local` pair; the rest a few seconds).

Tables of the lifecycle under the node Job's restart rules and the JobSet's failurePolicy; the
local runner on rendered goldens with tests/local_fixtures/replica.py (each node's env: the
JobSet's and the torch plugin's variables; JobSet restarts; what only a cluster runs); and the
book's MNIST as a 2-node TrainJob under TensorFlow and PyTorch, trained for real to >= 95 %.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.kinds import trainjob
from conftest import REPO, compile_specs
from localrun import LocalRunError, run_local
from localrun.lifecycle import FAIL, NOTE, START, STOP_ALL, SUCCEED, Lifecycle, Member
from test_gitops import lua_health

GOLDEN = REPO / "tests" / "golden"
SCRIPT = Path(__file__).resolve().parent / "local_fixtures" / "replica.py"


def manifests(case: str) -> list[dict]:
    (job,), diags = compile_specs([GOLDEN / case / "spec.yaml"])
    assert not diags
    return list(job.objects)


# ----------------------------------------------------------------------------- the rules


def node_spec(pod_policy: str, *, backoff: int | None = None, failure: dict | None = None, pfp: bool = False,
              deadline: int | None = None) -> dict:
    """A resolved TrainJob spec (what trainjob.resolve gives) with the node Job's rules."""
    job: dict = {"template": {"spec": {"restartPolicy": pod_policy, "containers": [{"name": "node"}]}}, "parallelism": 2}
    if backoff is not None:
        job["backoffLimit"] = backoff
    if pfp:
        job["podFailurePolicy"] = {"rules": [{"action": "FailJob", "onExitCodes": {
            "containerName": "node", "operator": "In", "values": list(range(1, 128))}}]}
    jobset: dict = {"replicatedJobs": [{"name": "node", "template": {
        "metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}}, "spec": job}}]}
    if failure is not None:
        jobset["failurePolicy"] = failure
    spec: dict = {"jobSet": jobset, "mlPolicy": {"numNodes": 1}}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return spec


EXIT_CODE = {"maxRestarts": 2, "rules": [{"name": "PermanentExitCode", "action": "FailJobSet", "onJobFailureReasons": ["PodFailurePolicy"]}]}


def play(spec: dict, steps: list[str]) -> tuple[Lifecycle, list[str]]:
    """Start TrainJob ml/mnist of two nodes, then each step (`node-0=1`, `t=5`); the decisions."""
    policy = trainjob.read_replicas(spec)["Node"][1]
    members = [Member("Node", i, trainjob.pod_name("mnist", "Node", i), policy, "node") for i in range(2)]
    lc = Lifecycle(trainjob, {"metadata": {"name": "mnist", "namespace": "ml"}, "spec": spec}, members, restart_delay=0.0)
    assert {d.action for d in lc.start(0.0)} == {START}
    now, seen = 0.0, []
    for step in steps:
        if step.startswith("t="):
            now = float(step[2:])
            decisions = lc.tick(now)
        else:
            name, code = step.split("=")
            decisions = lc.exited(name, int(code), now) + lc.tick(now)
        for d in decisions:
            if d.action in (SUCCEED, FAIL):
                assert decisions[-1].action == STOP_ALL
            if d.action not in (NOTE,):
                seen.append(f"{d.action} {d.replica or d.text}".strip())
    return lc, seen


CASES = [
    ("success when every node completes", node_spec("OnFailure"), ["node-1=0", "node-0=0"], ["succeed Succeeded", "stop-all"]),
    ("OnFailure restarts in place", node_spec("OnFailure"), ["node-0=1", "node-0=0", "node-1=0"],
     ["restart node-0", "succeed Succeeded", "stop-all"]),
    ("OnFailure up to backoffLimit, then the JobSet fails", node_spec("OnFailure", backoff=1),
     ["node-0=1", "node-0=1"], ["restart node-0", "fail FailedJobs", "stop-all"]),
    ("Never: the first failed pod fails the Job, then the JobSet", node_spec("Never", backoff=0), ["node-1=1"],
     ["fail FailedJobs", "stop-all"]),
    ("ExitCode: a permanent exit fails the JobSet at once", node_spec("Never", backoff=0, pfp=True, failure=EXIT_CODE),
     ["node-0=2"], ["fail FailJobSet", "stop-all"]),
    ("ExitCode: a retryable exit restarts every node", node_spec("Never", backoff=0, pfp=True, failure=EXIT_CODE),
     ["node-0=140", "node-1=0", "node-0=0"], ["stop-all", "recreate node-0", "recreate node-1", "succeed Succeeded", "stop-all"]),
    ("ExitCode: restarts up to maxRestarts", node_spec("Never", backoff=0, pfp=True, failure=EXIT_CODE),
     ["node-0=137", "node-1=143", "node-0=140"],
     ["stop-all", "recreate node-0", "recreate node-1", "stop-all", "recreate node-0", "recreate node-1",
      "fail ReachedMaxRestarts", "stop-all"]),
    ("the deadline fails the TrainJob without a restart", node_spec("Never", backoff=0, failure=EXIT_CODE, deadline=5),
     ["t=5"], ["fail DeadlineExceeded", "stop-all"]),
]


@pytest.mark.parametrize("spec, steps, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules(spec, steps, expected):
    _, seen = play(spec, steps)
    assert seen == expected


@pytest.mark.parametrize("steps, condition, health", [
    (["node-0=0", "node-1=0"], ("Complete", "AllJobsCompleted", "jobset completed successfully"), "Healthy"),
    (["node-0=2"], ("Failed", "FailJobSetFailurePolicyAction",
                    "applying FailJobSet failure policy action (first failed job: mnist-node-0)"), "Degraded"),
    (["node-0=137", "node-1=143", "node-0=140"],
     ("Failed", "ReachedMaxRestarts", "jobset failed due to reaching max number of restarts (first failed job: mnist-node-0)"),
     "Degraded"),
    (["t=5"], ("Failed", "DeadlineExceeded", "TrainJob exceeded its active deadline"), "Degraded"),
])
def test_status_has_the_v2_conditions_and_argo_cd_reads_it(steps, condition, health):
    lc, _ = play(node_spec("Never", backoff=0, pfp=True, failure=EXIT_CODE, deadline=5), steps)
    status = lc.status()
    (c,) = [c for c in status["conditions"] if c["status"] == "True"]
    assert (c["type"], c["reason"], c["message"]) == condition
    (job,) = status["jobsStatus"]
    assert job["name"] == "node" and job[{"Complete": "succeeded", "Failed": "failed"}[c["type"]]] == 1 and job["active"] == 0
    assert lua_health({"apiVersion": trainjob.API_VERSION, "kind": "TrainJob", "status": status}, trainjob.HEALTH_LUA)[0] == health


def test_describe_prints_as_kubectl_describe_trainjob():
    lc, _ = play(node_spec("OnFailure"), ["node-0=0", "node-1=0"])
    text = lc.describe()
    assert text.startswith("Name:         mnist\nNamespace:    ml\nAPI Version:  trainer.kubeflow.org/v1alpha1\nKind:         TrainJob\n")
    assert ("Status:\n  Conditions:\n    Message:  jobset completed successfully\n    Reason:   AllJobsCompleted\n"
            "    Status:   True\n    Type:     Complete\n  Jobs Status:\n    Active:     0\n    Failed:     0\n"
            "    Name:       node\n    Ready:      0\n    Succeeded:  1\n    Suspended:  0\n") in text
    assert "Normal  SuccessfulCreate  Created pod: mnist-node-0-1" in text


# ----------------------------------------------------------------------------- the local runner


class Run:
    """run_local with the replica script; behaviour per node name ("node-0")."""

    def __init__(self, tmp_path: Path, behaviour: dict[str, list[str]] | None = None):
        self.state, self.work, self.behaviour = tmp_path / "state", tmp_path / "work", behaviour or {}
        self.out = io.StringIO()

    def launcher(self, c: dict, rtype: str, index: int) -> list[str]:
        name = f"{rtype.lower()}-{index}"
        return [sys.executable, str(SCRIPT), "--state", str(self.state), "--name", name,
                *self.behaviour.get(name, []), "--", *c.get("args", [])]

    def __call__(self, objs: list[dict], env: dict | None = None) -> int:
        return run_local(objs, work_dir=self.work, env=env or {"PATH": os.environ["PATH"]}, out=self.out,
                         launcher=self.launcher, restart_delay=0.0)

    def env(self, name: str, attempt: int = 1) -> dict:
        return json.loads((self.state / f"{name}.{attempt}.env.json").read_text())["env"]

    def attempts(self, name: str) -> int:
        return int((self.state / f"{name}.attempts").read_text())


def test_nodes_of_specc_runtime_get_the_jobset_environment(tmp_path):
    objs = manifests("trainjob-mnist")
    name = objs[-1]["metadata"]["name"]
    run = Run(tmp_path)
    assert run(objs, env={"PATH": os.environ["PATH"], "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
                          "JOB_COMPLETION_INDEX": "7", "SPECC_NUM_NODES": "9", "PET_NNODES": "9"}) == 0, run.out.getvalue()
    e0, e1 = run.env("node-0"), run.env("node-1")
    addresses = e0["SPECC_NODE_ADDRESSES"].split(",")
    assert len(addresses) == 2 and all(a.startswith("127.0.0.1:") for a in addresses) and e1["SPECC_NODE_ADDRESSES"] == e0["SPECC_NODE_ADDRESSES"]
    for i, e in enumerate((e0, e1)):
        assert e["JOB_COMPLETION_INDEX"] == str(i) and e["SPECC_NUM_NODES"] == "2" and e["SPECC_JOBSET_NAME"] == name
        assert "PET_NNODES" not in e and "TF_CONFIG" not in e  # nothing from the caller's shell; TF_CONFIG is the runtime's to build
        assert e["AWS_ACCESS_KEY_ID"] == "k" and Path(e["SPECC_CONFIG"]).is_file()
        assert json.loads(e["SPECC_PATH_MAP"])["/train"] == str(run.work / "volumes" / "tfevent-volume")
    text = run.out.getvalue()
    assert f"running TrainJob kubeflow/{name} locally: node-0, node-1" in text
    assert "Type:     Complete" in text and "JobSet restarts: 0" in text


def test_torch_runtime_nodes_get_the_torch_plugins_environment(tmp_path):
    objs = manifests("trainjob-builtin-on-torch")
    run = Run(tmp_path)
    assert run(objs) == 0, run.out.getvalue()
    for i in range(2):
        e = run.env(f"node-{i}")
        assert {k: e[k] for k in e if k.startswith("PET_")} == {
            "PET_NNODES": "2", "PET_NODE_RANK": str(i), "PET_MASTER_ADDR": "127.0.0.1", "PET_MASTER_PORT": "29500",
            "PET_NPROC_PER_NODE": "2"}
        assert "SPECC_NUM_NODES" not in e and e["SPECC_CONFIG"].endswith("config.json")


def test_a_jobset_restart_recreates_every_node(tmp_path):
    objs = manifests("trainjob-pytorch-mnist")  # ExitCode: a JobSet failurePolicy with maxRestarts 4
    run = Run(tmp_path, {"node-1": ["--codes", "140,0", "--wait-for", "2"], "node-0": ["--sleep", "1"]})
    assert run(objs) == 0, run.out.getvalue()
    assert run.attempts("node-0") == 2 and run.attempts("node-1") == 2
    text = run.out.getvalue()
    assert "restarting every replica (restart 1)" in text and "RestartJobSetFailurePolicyAction" in text
    assert "JobSet restarts: 1" in text


def test_a_permanent_exit_fails_the_trainjob(tmp_path):
    objs = manifests("trainjob-pytorch-mnist")
    run = Run(tmp_path, {"node-0": ["--codes", "2"], "node-1": ["--sleep", "5"]})
    assert run(objs) == 1
    text = run.out.getvalue()
    assert "Reason:   FailJobSetFailurePolicyAction" in text and "failed (FailJobSet)" in text
    assert run.attempts("node-0") == 1


@pytest.mark.parametrize("case, message", [
    ("trainjob-pytorch-dist", "spec uses custom image gcr.io/kubeflow-ci/pytorch-dist-sendrecv-test:1.0"),
    ("trainjob-jax-python", "uses a jax runtime; it can only run in a cluster"),
])
def test_what_only_a_cluster_runs(tmp_path, case, message):
    with pytest.raises(LocalRunError, match=message):
        Run(tmp_path)(manifests(case))


def test_a_runtime_that_is_not_here(tmp_path):
    objs = manifests("trainjob-mnist")
    with pytest.raises(LocalRunError, match="TrainingRuntime .*-runtime is not among the job's objects"):
        Run(tmp_path)([o for o in objs if o["kind"] != "TrainingRuntime"])
    tj = json.loads(json.dumps(objs[-1]))
    tj["spec"]["runtimeRef"] = {"name": "team-runtime", "kind": "ClusterTrainingRuntime", "apiGroup": "trainer.kubeflow.org"}
    with pytest.raises(LocalRunError, match="team-runtime is not a single-job built-in runtime of Trainer v2.3"):
        Run(tmp_path)([objs[0], tj])


# ----------------------------------------------------------------------------- MNIST, for real


#: As tests/test_mnist.py: the script's learning rate 0.001 stays above 95 % from step 800 on.
TRAIN = "    learning_rate: 0.001\n    batch_size: 150\n    max_steps: 1000\n"


def _book_trainjob(tmp_path: Path, book: str) -> Path:
    text = (REPO / "specs" / f"{book}.yaml").read_text()
    text = text.replace("\n  trainer:\n", "\n  target: trainjob\n  trainer:\n", 1)
    text = text.replace("    learning_rate: 0.01\n    batch_size: 150\n", TRAIN)
    assert "target: trainjob" in text and "max_steps: 1000" in text
    path = tmp_path / f"{book}.yaml"
    path.write_text(text)
    return path


@pytest.mark.train
@pytest.mark.parametrize("book, prefix, framework", [
    ("mnist", "mnist/1/", "tensorflow"),
    ("pytorch-mnist", "pytorch-mnist/1/", "pytorch"),
])
def test_book_mnist_as_a_two_node_trainjob(tmp_path, s3, book, prefix, framework):
    from conftest import DATA, put_file
    from test_mnist import FINAL_RE, env

    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        put_file(s3, "data", f"mnist/{name}", DATA / "mnist" / name)
    s3.client().make_bucket("models")
    spec = _book_trainjob(tmp_path, book)
    out = subprocess.run([sys.executable, "-m", "compiler", "run", str(spec), "--local", "--work-dir", str(tmp_path / "run")],
                         cwd=REPO, env=env(**s3.env()), capture_output=True, text=True, timeout=600)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert "Kind:         TrainJob" in text and "Reason:   AllJobsCompleted" in text
    assert "[node-0]" in text and "[node-1]" in text
    finals = FINAL_RE.findall(text)
    assert len(finals) == 2 and len({f[2] for f in finals}) == 1, text[-4000:]  # the same weights on both nodes
    metrics = json.loads(s3.client().get_object("models", prefix + "metrics.json").read())
    assert metrics["framework"] == framework and metrics["world_size"] == 2
    assert metrics["test_accuracy"] >= 0.95, metrics
