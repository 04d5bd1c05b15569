"""localrun: the local runner behind `specc run SPEC --local` (budget: 40 s).

Manifests are built by hand in the shape docs/CONTRACTS.md describes; replicas are real processes
(tests/local_fixtures/replica.py through the `launcher` seam, and once the real `python -m runtime`).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localrun import LocalRunError, run_local

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve().parent / "local_fixtures" / "replica.py"
CONFIG = json.dumps({
    "apiVersion": "specc.dev/runtime/v1",
    "job": {"name": "mnist", "namespace": "ml", "framework": "tensorflow"},
    "storage": {"endpoint": "http://minio-service.kubeflow:9000", "region": "us-east-1"},
    "trainer": {"name": "mnist"},
})


#: kind -> (replica specs key, container name, its port): the operator's names (v1.9.4 *_types.go).
KINDS = {
    "TFJob": ("tfReplicaSpecs", "tensorflow", ("tfjob-port", 2222)),
    "PyTorchJob": ("pytorchReplicaSpecs", "pytorch", ("pytorchjob-port", 23456)),
    "XGBoostJob": ("xgbReplicaSpecs", "xgboost", ("xgboostjob-port", 9999)),
    "JAXJob": ("jaxReplicaSpecs", "jax", ("jaxjob-port", 6666)),
    "PaddleJob": ("paddleReplicaSpecs", "paddle", ("master", 36543)),
    "Job": (None, "trainer", None),
}


def container(kind: str, extra_env=(), mounts=()) -> dict:
    _, name, port = KINDS[kind]
    c = {
        "name": name,
        "image": "ghcr.io/specc/runtime:0.1.0",
        "command": ["specc-runtime"],
        "args": ["--config", "/etc/specc/config.json"],
        "env": [
            {"name": "SPECC_CONFIG", "value": "/etc/specc/config.json"},
            {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "minio-creds", "key": "accesskey"}}},
            {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "minio-creds", "key": "secretkey"}}},
            *extra_env,
        ],
        "volumeMounts": [{"name": "specc-config", "mountPath": "/etc/specc", "readOnly": True}, *mounts],
    }
    if port:
        c["ports"] = [{"name": port[0], "containerPort": port[1]}]
    return c


def template(kind: str, extra_env=(), mounts=(), volumes=(), grace=None) -> dict:
    spec = {"containers": [container(kind, extra_env, mounts)],
            "volumes": [{"name": "specc-config", "configMap": {"name": "mnist-config"}}, *volumes]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"labels": {"app": "mnist"}}, "spec": spec}


def configmap() -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mnist-config", "namespace": "ml"},
            "data": {"config.json": CONFIG, "mode": "fast"}}


def job(kind: str, replicas: dict[str, tuple[int, str | None]], *, run_policy=None, spec_extra=None, **tpl) -> list[dict]:
    """[job, configmap] for a training-operator v1 kind with {type: (replicas, restartPolicy)}."""
    key = KINDS[kind][0]
    rspecs = {}
    for rtype, (n, policy) in replicas.items():
        rspecs[rtype] = {"replicas": n, "template": template(kind, **tpl)}
        if policy:
            rspecs[rtype]["restartPolicy"] = policy
    spec = {key: rspecs, "runPolicy": {"cleanPodPolicy": "None", **(run_policy or {})}, **(spec_extra or {})}
    return [{"apiVersion": "kubeflow.org/v1", "kind": kind, "metadata": {"name": "mnist", "namespace": "ml"},
             "spec": spec}, configmap()]


class Run:
    """One run_local call with the replica script; behaviour per replica name ("worker-0")."""

    def __init__(self, tmp_path: Path, behaviour: dict[str, list[str]] | None = None, default=()):
        self.state = tmp_path / "state"
        self.work = tmp_path / "work"
        self.behaviour = behaviour or {}
        self.default = list(default)
        self.out = io.StringIO()
        self.seen: list[tuple[dict, str, int]] = []

    def launcher(self, c: dict, rtype: str, index: int) -> list[str]:
        self.seen.append((c, rtype, index))
        name = f"{rtype.lower()}-{index}"
        return [sys.executable, str(SCRIPT), "--state", str(self.state), "--name", name,
                *self.behaviour.get(name, self.default), "--", *c.get("args", [])]

    def __call__(self, manifests, env=None, **kw) -> int:
        kw.setdefault("restart_delay", 0.0)
        return run_local(manifests, work_dir=self.work, env=env if env is not None else {"PATH": os.environ["PATH"]},
                         out=self.out, launcher=self.launcher, **kw)

    @property
    def text(self) -> str:
        return self.out.getvalue()

    def attempts(self, name: str) -> int:
        f = self.state / f"{name}.attempts"
        return int(f.read_text()) if f.exists() else 0

    def dump(self, name: str, attempt: int = 1) -> dict:
        return json.loads((self.state / f"{name}.{attempt}.env.json").read_text())

    def conditions(self) -> dict[str, tuple[str, str, str]]:
        """{type: (status, reason, message)} from the describe block's Conditions table."""
        lines = self.text.splitlines()
        start = lines.index("  Conditions:") + 2
        rows = {}
        for line in lines[start:]:
            if not line.startswith("    ") or line.startswith("     "):
                break
            ctype, status, reason, message = re.split(r" {2,}", line.strip(), maxsplit=3)
            rows[ctype] = (status, reason, message)
        return rows


def test_tf_config_for_chief_ps_worker_evaluator(tmp_path):
    run = Run(tmp_path, {"chief-0": ["--wait-for", "5"]})
    manifests = job("TFJob", {"Chief": (1, None), "PS": (1, None), "Worker": (2, None), "Evaluator": (1, None)})
    caller = {"PATH": os.environ["PATH"], "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "TF_CONFIG": "stale", "RANK": "7"}
    assert run(manifests, env=caller) == 0, run.text
    names = ["chief-0", "ps-0", "worker-0", "worker-1", "evaluator-0"]
    configs = {n: json.loads(run.dump(n)["env"]["TF_CONFIG"]) for n in names}
    cluster = configs["chief-0"]["cluster"]
    assert sorted(cluster) == ["chief", "evaluator", "ps", "worker"]
    assert [len(cluster[t]) for t in ("chief", "evaluator", "ps", "worker")] == [1, 1, 1, 2]
    addresses = [a for t in cluster for a in cluster[t]]
    assert len(set(addresses)) == 5 and all(a.startswith("127.0.0.1:") for a in addresses)
    for n in names:
        t, i = n.split("-")
        assert configs[n] == {"cluster": cluster, "task": {"type": t, "index": int(i)}, "environment": "cloud"}
        env = run.dump(n)["env"]
        assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"  # the caller's environment underneath
        assert "RANK" not in env and "PYTHONUNBUFFERED" not in env  # TFJob sets neither
    # Compact JSON with the cluster first, as the operator's Go marshalling writes it.
    assert run.dump("worker-1")["env"]["TF_CONFIG"].startswith('{"cluster":{"chief":["127.0.0.1:')
    assert run.conditions()["Succeeded"] == ("True", "TFJobSucceeded", "TFJob ml/mnist successfully completed.")


def test_single_replica_tfjob_gets_no_tf_config(tmp_path):
    run = Run(tmp_path)
    assert run(job("TFJob", {"Worker": (1, None)})) == 0, run.text
    assert "TF_CONFIG" not in run.dump("worker-0")["env"]


@pytest.mark.parametrize("nproc, world", [(None, 3), ("2", 6)])
def test_pytorch_env_per_replica(tmp_path, nproc, world):
    run = Run(tmp_path, {"master-0": ["--wait-for", "3"]})
    extra = {"nprocPerNode": nproc} if nproc else None
    assert run(job("PyTorchJob", {"Master": (1, None), "Worker": (2, None)}, spec_extra=extra)) == 0, run.text
    envs = {n: run.dump(n)["env"] for n in ("master-0", "worker-0", "worker-1")}
    port = envs["master-0"]["MASTER_PORT"]
    assert port.isdigit()
    for rank, (n, env) in enumerate(envs.items()):
        assert {k: env[k] for k in ("PYTHONUNBUFFERED", "MASTER_ADDR", "PET_MASTER_ADDR", "MASTER_PORT",
                                    "PET_MASTER_PORT", "WORLD_SIZE", "RANK", "PET_NODE_RANK",
                                    "PET_NPROC_PER_NODE", "PET_NNODES")} == {
            "PYTHONUNBUFFERED": "1", "MASTER_ADDR": "127.0.0.1", "PET_MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port, "PET_MASTER_PORT": port, "WORLD_SIZE": str(world), "RANK": str(rank),
            "PET_NODE_RANK": str(rank), "PET_NPROC_PER_NODE": nproc or "auto", "PET_NNODES": "3"}, n
        assert "TF_CONFIG" not in env
    assert run.conditions() == {
        "Created": ("True", "PyTorchJobCreated", "PyTorchJob mnist is created."),
        "Running": ("False", "PyTorchJobRunning", "PyTorchJob mnist is running."),
        "Succeeded": ("True", "PyTorchJobSucceeded", "PyTorchJob mnist is successfully completed.")}


#: The env each replica gets, per kind and shape (plan.make with fixed ports: master-0 1001,
#: worker-i 2001+i), read from kubeflow/trainer v1.9.4 pkg/controller.v1: xgboost/xgboost.go,
#: jax/envvar.go, paddlepaddle/envvar.go, pytorch/envvar.go + master.go + elastic.go.
ELASTIC = {"rdzvBackend": "c10d", "minReplicas": 1, "maxReplicas": 4, "maxRestarts": 3, "rdzvId": "imagenet",
           "rdzvConf": [{"key": "timeout", "value": "900"}, {"key": "join_timeout", "value": "30"}]}
OPERATOR_ENVS = [
    ("XGBoostJob", {"Master": 1, "Worker": 2}, None, {
        "master-0": {"MASTER_PORT": "1001", "MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": "3", "RANK": "0",
                     "PYTHONUNBUFFERED": "1", "WORKER_PORT": "2001", "WORKER_ADDRS": "127.0.0.1,127.0.0.1"},
        "worker-1": {"MASTER_PORT": "1001", "MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": "3", "RANK": "2",
                     "PYTHONUNBUFFERED": "1", "WORKER_PORT": "2001", "WORKER_ADDRS": "127.0.0.1,127.0.0.1"}}),
    ("XGBoostJob", {"Master": 1}, None, {
        "master-0": {"MASTER_PORT": "1001", "MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": "1", "RANK": "0",
                     "PYTHONUNBUFFERED": "1"}}),
    ("JAXJob", {"Worker": 3}, None, {
        "worker-0": {"PYTHONUNBUFFERED": "1", "COORDINATOR_PORT": "2001", "COORDINATOR_ADDRESS": "127.0.0.1",
                     "NUM_PROCESSES": "3", "PROCESS_ID": "0"},
        "worker-2": {"PYTHONUNBUFFERED": "1", "COORDINATOR_PORT": "2001", "COORDINATOR_ADDRESS": "127.0.0.1",
                     "NUM_PROCESSES": "3", "PROCESS_ID": "2"}}),
    ("PaddleJob", {"Worker": 2}, None, {
        "worker-0": {"PYTHONUNBUFFERED": "1", "PADDLE_JOB_ID": "mnist", "PADDLE_NNODES": "2",
                     "POD_IP_DUMMY": "127.0.0.1", "PADDLE_MASTER": "127.0.0.1:2001"},
        "worker-1": {"PYTHONUNBUFFERED": "1", "PADDLE_JOB_ID": "mnist", "PADDLE_NNODES": "2",
                     "PADDLE_MASTER": "127.0.0.1:2001"}}),
    ("PaddleJob", {"Master": 1, "Worker": 2}, None, {
        "master-0": {"PYTHONUNBUFFERED": "1", "PADDLE_JOB_ID": "mnist", "PADDLE_NNODES": "3",
                     "POD_IP_DUMMY": "127.0.0.1", "PADDLE_MASTER": "127.0.0.1:1001", "PADDLE_SERVER_NUM": "1"},
        "worker-0": {"PYTHONUNBUFFERED": "1", "PADDLE_JOB_ID": "mnist", "PADDLE_NNODES": "3",
                     "PADDLE_MASTER": "127.0.0.1:1001", "PADDLE_TRAINER_NUM": "1"}}),
    ("PyTorchJob", {"Worker": 2}, {"elasticPolicy": ELASTIC}, {
        "worker-1": {"PYTHONUNBUFFERED": "1", "PET_NPROC_PER_NODE": "auto", "PET_RDZV_ENDPOINT": "127.0.0.1:2001",
                     "PET_RDZV_BACKEND": "c10d", "PET_NNODES": "1:4", "PET_MAX_RESTARTS": "3", "PET_RDZV_ID": "imagenet",
                     "PET_RDZV_CONF": "timeout=900,join_timeout=30"}}),
    ("PyTorchJob", {"Worker": 3}, {"elasticPolicy": {"rdzvPort": 29400, "standalone": True}, "nprocPerNode": "2"}, {
        "worker-0": {"PYTHONUNBUFFERED": "1", "PET_NPROC_PER_NODE": "2", "PET_RDZV_ENDPOINT": "127.0.0.1:29400",
                     "PET_RDZV_BACKEND": "c10d", "PET_NNODES": "3", "PET_STANDALONE": ""}}),
    ("PyTorchJob", {"Master": 1, "Worker": 1}, {"elasticPolicy": {"maxReplicas": 2}}, {
        "worker-0": {"PYTHONUNBUFFERED": "1", "MASTER_PORT": "1001", "PET_MASTER_PORT": "1001",
                     "MASTER_ADDR": "127.0.0.1", "PET_MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": "2", "RANK": "1",
                     "PET_NODE_RANK": "1", "PET_NPROC_PER_NODE": "auto", "PET_RDZV_ENDPOINT": "127.0.0.1:2001",
                     "PET_RDZV_BACKEND": "c10d", "PET_NNODES": "2:2"}}),
]


@pytest.mark.parametrize("kind, shape, spec_extra, expected", OPERATOR_ENVS,
                         ids=[f"{c[0]}-{'-'.join(c[1])}{'-elastic' if c[2] else ''}-{i}" for i, c in enumerate(OPERATOR_ENVS)])
def test_operator_env_of_each_kind(tmp_path, kind, shape, spec_extra, expected):
    """The operator's variables each replica gets, exactly (the caller's stale ones not inherited)."""
    from localrun import plan

    manifests = job(kind, {t: (n, None) for t, n in shape.items()}, spec_extra=spec_extra)
    workload = plan.read(manifests)
    ports = {m.name: (1001 if m.rtype == "Master" else 2001) + m.index for m in workload.members}
    caller = {"PATH": "/bin", "RANK": "9", "PADDLE_MASTER": "stale", "COORDINATOR_ADDRESS": "stale", "WORKER_PORT": "1"}
    p = plan.make(workload, ports=ports, work_dir=tmp_path / "w", volumes_dir=tmp_path / "v", env=caller, hostname="here")
    own = {"PATH", "SPECC_CONFIG", "SPECC_PATH_MAP"}
    for name, env in expected.items():
        assert {k: v for k, v in p.replica(name).env.items() if k not in own} == env, name


def test_xgboost_master_decides_and_env_reaches_replicas(tmp_path):
    run = Run(tmp_path, {"master-0": ["--wait-for", "3"], "worker-1": ["--sleep", "60"]})
    assert run(job("XGBoostJob", {"Master": (1, None), "Worker": (2, None)})) == 0, run.text
    envs = {n: run.dump(n)["env"] for n in ("master-0", "worker-0", "worker-1")}
    assert [envs[n]["RANK"] for n in envs] == ["0", "1", "2"]
    assert len({(e["MASTER_ADDR"], e["MASTER_PORT"], e["WORKER_PORT"], e["WORKER_ADDRS"]) for e in envs.values()}) == 1
    assert envs["worker-0"]["MASTER_PORT"] != envs["worker-0"]["WORKER_PORT"]
    assert "specc: warning: WORKER_ADDRS lists 2 workers at 127.0.0.1 with one WORKER_PORT" in run.text
    assert "specc: stopping worker-1" in run.text  # the Master's success ends the job
    assert run.conditions() == {
        "Created": ("True", "XGBoostJobCreated", "XGBoostJob mnist is created."),
        "Running": ("False", "XGBoostJobRunning", "XGBoostJob mnist is running."),
        "Succeeded": ("True", "XGBoostJobSucceeded", "XGBoostJob mnist is successfully completed.")}


def test_xgboost_worker_failure_fails_the_job(tmp_path):
    run = Run(tmp_path, {"master-0": ["--sleep", "60"], "worker-0": ["--codes", "1"]})
    assert run(job("XGBoostJob", {"Master": (1, None), "Worker": (1, None)})) == 1, run.text
    assert run.attempts("worker-0") == 1  # Never by default
    assert run.conditions()["Failed"] == ("True", "XGBoostJobFailed",
                                          "XGBoostJob mnist is failed because 1 Worker replica(s) failed.")


def test_xgboost_without_a_master_is_refused(tmp_path):
    with pytest.raises(LocalRunError, match=r"^XGBoostJob mnist: no Master replica"):
        run_local(job("XGBoostJob", {"Worker": (2, None)}), work_dir=tmp_path, out=io.StringIO(),
                  launcher=lambda *a: ["true"])


def test_jax_waits_for_every_worker(tmp_path):
    run = Run(tmp_path, {"worker-0": ["--wait-for", "3"], "worker-2": ["--sleep", "1"]})
    assert run(job("JAXJob", {"Worker": (3, None)})) == 0, run.text
    envs = [run.dump(f"worker-{i}")["env"] for i in range(3)]
    assert [e["PROCESS_ID"] for e in envs] == ["0", "1", "2"]
    assert {(e["COORDINATOR_ADDRESS"], e["COORDINATOR_PORT"], e["NUM_PROCESSES"]) for e in envs} == {
        ("127.0.0.1", envs[0]["COORDINATOR_PORT"], "3")}
    assert "specc: worker-2 exited with code 0" in run.text and "specc: stopping" not in run.text
    assert run.conditions()["Succeeded"] == ("True", "JAXJobSucceeded", "JAXJob ml/mnist successfully completed.")
    assert "    Worker:\n      Succeeded:  3\n" in run.text


@pytest.mark.parametrize("shape, leader", [({"Worker": (2, None)}, "worker-0"),
                                           ({"Master": (1, None), "Worker": (1, None)}, "master-0")])
def test_paddle_rendezvous_and_success(tmp_path, shape, leader):
    """Collective mode (worker 0 is the rendezvous, every worker decides) and parameter-server
    mode (master 0 is, the Master decides); OnFailure restarts in place by default."""
    run = Run(tmp_path, {"worker-0": ["--codes", "1,0", "--wait-for", "2"], "master-0": ["--wait-for", "3"]})
    assert run(job("PaddleJob", shape)) == 0, run.text
    assert run.attempts("worker-0") == 2 and "Restarting" not in run.text
    names = [f"{t.lower()}-{i}" for t, (n, _) in shape.items() for i in range(n)]
    envs = {n: run.dump(n)["env"] for n in names}
    assert len({e["PADDLE_MASTER"] for e in envs.values()}) == 1
    assert {n for n, e in envs.items() if "POD_IP_DUMMY" in e} == {leader}
    assert all(e["PADDLE_JOB_ID"] == "mnist" and e["PADDLE_NNODES"] == "2" for e in envs.values())
    succeeded = run.conditions()["Succeeded"]
    assert succeeded[2] == ("PaddleJob mnist is successfully completed." if leader == "master-0"
                            else "PaddleJob ml/mnist successfully completed.")


def test_elastic_pytorch_workers_only(tmp_path):
    """c10d rendezvous at worker 0; any worker finishing ends an elastic job without a Master."""
    spec = {"elasticPolicy": {**ELASTIC, "metrics": [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}
    run = Run(tmp_path, {"worker-0": ["--sleep", "60"], "worker-1": ["--wait-for", "2"]})
    assert run(job("PyTorchJob", {"Worker": (2, None)}, spec_extra=spec)) == 0, run.text
    envs = [run.dump(f"worker-{i}")["env"] for i in range(2)]
    assert envs[0]["PET_RDZV_ENDPOINT"] == envs[1]["PET_RDZV_ENDPOINT"]
    assert envs[0]["PET_RDZV_ENDPOINT"].startswith("127.0.0.1:")
    assert not {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"} & set(envs[0])
    assert ("specc: warning: elasticPolicy.metrics: no HorizontalPodAutoscaler scales the workers here; "
            "they stay at 2") in run.text
    assert "specc: stopping worker-0" in run.text
    assert run.conditions()["Succeeded"] == ("True", "PyTorchJobSucceeded",
                                             "PyTorchJob ml/mnist successfully completed.")


@pytest.mark.parametrize("policy, reason", [
    ({"rdzvBackend": "etcd"}, "uses rendezvous backend etcd, which needs an etcd server"),
    ({"rdzvBackend": "etcd-v2", "rdzvHost": "etcd.kubeflow"}, "uses rendezvous backend etcd-v2, which needs an etcd server"),
    ({"rdzvHost": "rdzv.kubeflow"}, "meets at elasticPolicy.rdzvHost rdzv.kubeflow, a host of the cluster"),
])
def test_elastic_rendezvous_in_the_cluster_is_refused(tmp_path, policy, reason):
    manifests = job("PyTorchJob", {"Worker": (2, None)}, spec_extra={"elasticPolicy": policy})
    with pytest.raises(LocalRunError, match=f"^PyTorchJob mnist {reason}; it can only run in a cluster$"):
        run_local(manifests, work_dir=tmp_path, out=io.StringIO(), launcher=lambda *a: ["true"])


def test_exit_code_policy_restarts_on_130(tmp_path):
    run = Run(tmp_path, {"worker-0": ["--codes", "130,0"]})
    assert run(job("TFJob", {"Worker": (1, "ExitCode")})) == 0, run.text
    assert run.attempts("worker-0") == 2
    assert "specc: worker-0 exited with code 130; restarting (restartPolicy ExitCode, restart 1)" in run.text
    assert "Warning  TFJobRestarting" in run.text and "TFJob mnist is restarting because Worker replica(s) failed." in run.text
    assert "Pod: ml.mnist-worker-0 exited with code 130" in run.text


def test_exit_code_policy_fails_on_3(tmp_path):
    run = Run(tmp_path, {"worker-0": ["--codes", "3,0"]})
    assert run(job("TFJob", {"Worker": (1, "ExitCode")})) == 1
    assert run.attempts("worker-0") == 1
    assert run.conditions()["Failed"] == ("True", "TFJobFailed", "TFJob ml/mnist has failed because 1 Worker replica(s) failed.")
    assert "failed (ReplicaFailed)" in run.text


def test_on_failure_restarts_and_never_does_not(tmp_path):
    run = Run(tmp_path, {"worker-0": ["--codes", "1,2,0"]})
    assert run(job("TFJob", {"Worker": (1, "OnFailure")})) == 0, run.text
    assert run.attempts("worker-0") == 3
    assert "Restarting" not in run.text  # OnFailure restarts in place: no pod recreated, no condition

    never = Run(tmp_path / "never", {"worker-0": ["--codes", "1,0"]})
    assert never(job("TFJob", {"Worker": (1, None)})) == 1  # TFJob's default restartPolicy is Never
    assert never.attempts("worker-0") == 1


def test_backoff_limit_caps_restarts_across_the_job(tmp_path):
    run = Run(tmp_path, {"worker-0": ["--codes", "1"], "worker-1": ["--codes", "1"]})
    rc = run(job("TFJob", {"Worker": (2, "OnFailure")}, run_policy={"backoffLimit": 3}))
    assert rc == 1
    # Three restarts allowed; the fourth failure ends the job (the replica started by the third
    # restart is stopped with it).
    assert run.text.count("exited with code 1; restarting") == 3
    assert "restart 3 of backoffLimit 3)" in run.text
    assert run.text.count("exited with code 1; backoffLimit 3 reached") == 1
    assert "(restarts: 3;" in run.text
    assert run.conditions()["Failed"] == ("True", "TFJobFailed", "Job mnist has failed because it has reached the specified backoff limit")
    assert "failed (BackoffLimitExceeded)" in run.text


def test_always_replica_restarts_after_success_and_others_decide(tmp_path):
    run = Run(tmp_path, {"ps-0": ["--codes", "0", "--sleep", "0.05"], "chief-0": ["--sleep", "1"]})
    assert run(job("TFJob", {"Chief": (1, None), "PS": (1, "Always")}), restart_delay=0.1) == 0, run.text
    assert run.attempts("ps-0") >= 2
    assert "    PS:\n      Succeeded:  1\n" in run.text  # stopped with the job, recorded as succeeded


def test_active_deadline_kills_sleeping_replicas(tmp_path):
    run = Run(tmp_path, {"worker-0": ["--sleep", "60", "--ignore-term"], "worker-1": ["--lines", "1", "--sleep", "60"]})
    t0 = time.monotonic()
    rc = run(job("TFJob", {"Worker": (2, "OnFailure")}, run_policy={"activeDeadlineSeconds": 1}, grace=1))
    elapsed = time.monotonic() - t0
    assert rc == 1 and elapsed < 10, run.text
    assert "worker-0 still running after 1s: killing it" in run.text
    # Streamed live: the sleeping replica's line came out before the deadline, not at its end.
    assert run.text.index("[worker-1] line 0 from worker-1") < run.text.index("activeDeadlineSeconds 1 exceeded")
    assert run.conditions()["Failed"] == ("True", "TFJobFailed", "Job mnist has failed because it was active longer than specified deadline")
    assert "failed (DeadlineExceeded)" in run.text
    for name in ("worker-0", "worker-1"):
        pid = int((run.state / f"{name}.pid").read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_default_success_policy_ends_with_worker_0(tmp_path):
    """No Chief: worker 0 finishing decides; worker 1 is stopped and recorded as succeeded."""
    run = Run(tmp_path, {"worker-1": ["--sleep", "60"]})
    t0 = time.monotonic()
    assert run(job("TFJob", {"Worker": (2, None)})) == 0, run.text
    assert time.monotonic() - t0 < 10
    assert "specc: stopping worker-1" in run.text
    assert "    Worker:\n      Succeeded:  2\n" in run.text


def test_pytorch_worker_failure_fails_the_job(tmp_path):
    run = Run(tmp_path, {"master-0": ["--sleep", "60"], "worker-0": ["--codes", "1"]})
    assert run(job("PyTorchJob", {"Master": (1, None), "Worker": (1, "Never")})) == 1, run.text
    assert run.conditions()["Failed"] == ("True", "PyTorchJobFailed", "PyTorchJob mnist is failed because 1 Worker replica(s) failed.")
    assert "    Master:\n      Active:  1\n    Worker:\n      Failed:  1\n" in run.text


def test_logs_are_prefixed_per_replica(tmp_path):
    run = Run(tmp_path, {"chief-0": ["--lines", "3", "--wait-for", "3"],
                         "worker-0": ["--lines", "3", "--partial", "no newline"], "worker-1": ["--lines", "3"]})
    assert run(job("TFJob", {"Chief": (1, None), "Worker": (2, None)})) == 0, run.text
    lines = run.text.splitlines()
    for name in ("chief-0", "worker-0", "worker-1"):
        assert [ln for ln in lines if ln.startswith(f"[{name}] line")] == [f"[{name}] line {k} from {name}" for k in range(3)]
    assert "[worker-0] no newline" in lines


def test_describe_summary(tmp_path):
    run = Run(tmp_path, {"worker-1": ["--wait-for", "2"]})
    assert run(job("TFJob", {"Worker": (2, None)}, spec_extra={"successPolicy": "AllWorkers"})) == 0
    start = run.text.index("Name:")
    summary = run.text[start:run.text.index("Events:")]
    assert summary == (
        "Name:         mnist\n"
        "Namespace:    ml\n"
        "Kind:         TFJob\n"
        "Status:\n"
        "  Conditions:\n"
        "    Type       Status  Reason          Message\n"
        "    Created    True    TFJobCreated    TFJob mnist is created.\n"
        "    Running    False   TFJobRunning    TFJob ml/mnist is running.\n"
        "    Succeeded  True    TFJobSucceeded  TFJob ml/mnist successfully completed.\n"
        "  Replica Statuses:\n"
        "    Worker:\n"
        "      Succeeded:  2\n")
    assert "Normal  SuccessfulCreatePod  Created pod: mnist-worker-1" in run.text
    assert run.text.rstrip().endswith("succeeded (restarts: 0; work dir: " + str(run.work) + ")")


def test_secret_and_configmap_refs(tmp_path):
    extra = [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "mnist-config", "key": "mode"}}},
             {"name": "GREETING", "value": "mode=$(MODE) $$(MODE)"}]
    run = Run(tmp_path)
    caller = {"PATH": os.environ["PATH"], "AWS_ACCESS_KEY_ID": "minio", "GREETING": "caller's"}
    assert run(job("TFJob", {"Worker": (1, None)}, extra_env=extra), env=caller) == 0, run.text
    env = run.dump("worker-0")["env"]
    assert env["AWS_ACCESS_KEY_ID"] == "minio"
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["MODE"] == "fast" and env["GREETING"] == "mode=fast $(MODE)"
    assert ("specc: warning: AWS_SECRET_ACCESS_KEY comes from Secret minio-creds key secretkey: "
            "set AWS_SECRET_ACCESS_KEY in your environment to pass it (left unset)") in run.text
    assert "AWS_ACCESS_KEY_ID comes from" not in run.text


def test_volumes_map_to_local_folders(tmp_path):
    mounts = [{"name": "data", "mountPath": "/data"}, {"name": "scratch", "mountPath": "/scratch"}]
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "shared-claim"}},
               {"name": "scratch", "emptyDir": {}}]
    behaviour = {f"worker-{i}": ["--write", f"/data/out/worker-{i}.txt", "--write", "/scratch/mine.txt"] for i in range(2)}
    behaviour["worker-0"] += ["--wait-for", "2"]
    run = Run(tmp_path, behaviour)
    vols = tmp_path / "vols"
    rc = run(job("TFJob", {"Worker": (2, None)}, spec_extra={"successPolicy": "AllWorkers"}, mounts=mounts, volumes=volumes),
             volumes_dir=vols)
    assert rc == 0, run.text
    assert sorted(p.name for p in (vols / "shared-claim" / "out").iterdir()) == ["worker-0.txt", "worker-1.txt"]
    maps = [json.loads(run.dump(f"worker-{i}")["env"]["SPECC_PATH_MAP"]) for i in range(2)]
    assert maps[0]["/data"] == maps[1]["/data"] == str(vols / "shared-claim")
    assert maps[0]["/scratch"] != maps[1]["/scratch"]  # emptyDir: one per replica
    assert (Path(maps[1]["/scratch"]) / "mine.txt").read_text() == "worker-1"
    # The config: ConfigMap files in a local folder, --config and SPECC_CONFIG rewritten through the map.
    cfg = Path(maps[0]["/etc/specc"]) / "config.json"
    assert json.loads(cfg.read_text())["job"]["name"] == "mnist"
    dump = run.dump("worker-0")
    assert dump["argv"] == ["--", "--config", str(cfg)]
    assert dump["env"]["SPECC_CONFIG"] == str(cfg)
    assert run.seen[0][0]["args"] == ["--config", str(cfg)]


def test_exit_code_restart_recreates_empty_dir(tmp_path):
    mounts = [{"name": "scratch", "mountPath": "/scratch"}]
    run = Run(tmp_path, {"worker-0": ["--codes", "143,0", "--write", "/scratch/a.txt"]})
    assert run(job("TFJob", {"Worker": (1, "ExitCode")}, mounts=mounts,
                   volumes=[{"name": "scratch", "emptyDir": {}}])) == 0, run.text
    scratch = Path(json.loads(run.dump("worker-0", 2)["env"]["SPECC_PATH_MAP"])["/scratch"])
    assert (scratch / "a.txt").exists()


@pytest.mark.parametrize("command", [["python", "train.py"], None])
def test_custom_image_cannot_run_locally(tmp_path, command):
    manifests = job("TFJob", {"Worker": (1, None)})
    c = manifests[0]["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    c["image"] = "registry.example.com/team/trainer:7"
    if command is None:
        del c["command"]
    else:
        c["command"] = command
    with pytest.raises(LocalRunError, match=r"^spec uses custom image registry.example.com/team/trainer:7; "
                                            r"it can only run in a cluster$"):
        run_local(manifests, work_dir=tmp_path, out=io.StringIO(), launcher=lambda *a: ["true"])


def batch_job(**spec) -> list[dict]:
    """[Job income, configmap]: one pod, restartPolicy Never, `spec` fields on top."""
    tpl = template("Job")
    tpl["spec"]["restartPolicy"] = "Never"
    return [{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "income", "namespace": "ml"},
             "spec": {**spec, "template": tpl}}, configmap()]


def test_batch_job_retries_then_completes(tmp_path):
    run = Run(tmp_path, {"job-0": ["--codes", "1,0"]})
    assert run(batch_job(backoffLimit=2)) == 0, run.text
    assert run.attempts("job-0") == 2
    assert "Pods Statuses:  0 Active / 1 Succeeded / 1 Failed" in run.text
    assert run.conditions() == {"Complete": ("True", "CompletionsReached", "Reached expected number of succeeded pods")}


def test_batch_job_pod_failure_policy_fails_on_a_permanent_code(tmp_path):
    """A Job rendered from restartPolicy ExitCode: 137 retries the pod, 2 fails the Job at once."""
    rules = {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                                             "values": list(range(1, 128))}}]}
    run = Run(tmp_path, {"job-0": ["--codes", "137,2,0"]})
    assert run(batch_job(backoffLimit=6, podFailurePolicy=rules)) == 1, run.text
    assert run.attempts("job-0") == 2
    assert "specc: job-0 exited with code 2; podFailurePolicy rule 0 fails the job\n" in run.text
    assert run.conditions() == {"Failed": ("True", "PodFailurePolicy", "Container trainer for pod ml/income-0 failed "
                                                                       "with exit code 2 matching FailJob rule at index 0")}
    assert "Pods Statuses:  0 Active / 0 Succeeded / 2 Failed" in run.text


def test_plan_writes_nothing_until_prepared(tmp_path):
    """plan.make is pure (ports passed in); plan.prepare lays out the folders and ConfigMap files."""
    from localrun import plan

    mounts = [{"name": "scratch", "mountPath": "/scratch"}]
    manifests = job("TFJob", {"Chief": (1, None), "Worker": (2, None)}, mounts=mounts,
                    volumes=[{"name": "scratch", "emptyDir": {}}])
    ports = {"chief-0": 1001, "worker-0": 1002, "worker-1": 1003}
    work = tmp_path / "work"
    p = plan.make(plan.read(manifests), ports=ports, work_dir=work, volumes_dir=tmp_path / "vols",
                  env={"PATH": "/bin", "WORLD_SIZE": "9"}, hostname="here")
    assert not work.exists() and not (tmp_path / "vols").exists()
    worker = p.replica("worker-1")
    assert json.loads(worker.env["TF_CONFIG"]) == {
        "cluster": {"chief": ["127.0.0.1:1001"], "worker": ["127.0.0.1:1002", "127.0.0.1:1003"]},
        "task": {"type": "worker", "index": 1}, "environment": "cloud"}
    assert "WORLD_SIZE" not in worker.env and worker.env["PATH"] == "/bin"
    config = work / "configmaps" / "mnist-config" / "config.json"
    assert worker.argv == (sys.executable, "-m", "runtime", "--config", str(config))
    assert (worker.pod, worker.policy, worker.cwd) == ("mnist-worker-1", "Never", work / "replicas" / "worker-1")
    assert worker.empty_dirs == (work / "replicas" / "worker-1" / "volumes" / "scratch",)
    assert worker.path_map == {"/etc/specc": str(config.parent), "/scratch": str(worker.empty_dirs[0])}
    plan.prepare(p)
    assert config.read_text() == CONFIG and worker.empty_dirs[0].is_dir() and (tmp_path / "vols").is_dir()


def test_real_runtime_with_a_bad_config_fails_without_restart(tmp_path):
    """No launcher: `python -m runtime` itself reads the mapped config and exits 2 (permanent)."""
    manifests = job("TFJob", {"Worker": (1, "ExitCode")})
    manifests[1]["data"]["config.json"] = '{"apiVersion": "specc.dev/runtime/v1"}'
    out = io.StringIO()
    rc = run_local(manifests, work_dir=tmp_path, env={"PATH": os.environ["PATH"]}, out=out, restart_delay=0)
    text = out.getvalue()
    assert rc == 1, text
    config = tmp_path / "configmaps" / "mnist-config" / "config.json"
    assert f"[worker-0] specc-runtime: error: {config}: " in text
    assert "specc: worker-0 exited with code 2\n" in text


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_replicas(tmp_path, sig):
    """SIGINT (or SIGTERM) to the runner, not to its replicas (they run in sessions of their own),
    stops everything. The runner starts with Python's own SIGINT handler, as from a terminal: a
    process started in the background by a non-interactive shell inherits SIGINT ignored (so
    would the runner, and rightly keep ignoring it)."""
    code = (
        "import io, json, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from localrun import run_local\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_local_runner import Run, job\n"
        "from pathlib import Path\n"
        f"run = Run(Path({str(tmp_path)!r}), default=['--sleep', '60'])\n"
        "run.out = sys.stdout\n"
        "sys.exit(run(job('TFJob', {'Worker': (2, None)})))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pids = [tmp_path / "state" / f"worker-{i}.pid" for i in range(2)]
    deadline = time.monotonic() + 15
    while not all(p.exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1, out
    assert "specc: interrupted: stopping replicas" in out
    assert "failed (Interrupted)" in out
    for p in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(int(p.read_text()), 0)


def test_module_stays_light():
    code = ("import sys, localrun; heavy = {'tensorflow', 'torch', 'pydantic', 'numpy'} & set(sys.modules); "
            "sys.exit(sorted(heavy) or 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.train
def test_specc_run_local_trains_distributed_mnist(tmp_path, s3):
    """End to end: `specc run specs/mnist.yaml --local` trains the two-worker TFJob against real S3."""
    from conftest import DATA, put_file

    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        put_file(s3, "data", f"mnist/{name}", DATA / "mnist" / name)
    s3.client().make_bucket("models")
    spec = (REPO / "specs" / "mnist.yaml").read_text()
    spec = spec.replace("    batch_size: 150\n", "    batch_size: 150\n    max_steps: 20\n    train_rows: 1500\n    test_rows: 500\n")
    (tmp_path / "mnist.yaml").write_text(spec)
    env = {**os.environ, **s3.env()}
    proc = subprocess.run([sys.executable, "-m", "compiler", "run", str(tmp_path / "mnist.yaml"), "--local",
                           "--work-dir", str(tmp_path / "work")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Succeeded  True    TFJobSucceeded" in proc.stdout
    assert "[worker-0]" in proc.stdout and "[worker-1]" in proc.stdout
    logs = tmp_path / "work" / "volumes" / "tfevent-volume" / "logs"
    assert any(logs.rglob("events.out.tfevents.*")), proc.stdout[-3000:]
    assert [o.object_name for o in s3.client().list_objects("models", prefix="mnist/1/", recursive=True)]
