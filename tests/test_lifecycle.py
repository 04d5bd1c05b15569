"""localrun.lifecycle: the operator's rules as a state machine, table by table (no processes).

Each case plays a script of events against one job (ml/mnist) and lists the decisions it gets
back, notes left out: `restart worker-0` (in place), `recreate worker-0` (a new pod), `succeed
Succeeded`, `fail <verdict>` (each end is followed by one stop-all, left out too).
"""

from __future__ import annotations

import pytest

from compiler.kinds import WORKLOADS, batchjob, by_kind
from compiler.kinds.pod import RESTART
from localrun.lifecycle import FAIL, NOTE, START, STOP_ALL, SUCCEED, Decision, Lifecycle, Member

#: The podFailurePolicy a Job with restartPolicy ExitCode is rendered with.
PFP = {"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {
    "containerName": batchjob.CONTAINER, "operator": "In", "values": batchjob.PERMANENT_EXIT_CODES}}]}}


def lifecycle(kind: str, replicas: dict[str, tuple[int, str | None]], spec: dict | None = None,
              restart_delay: float = 0.0) -> Lifecycle:
    """Job ml/mnist of `kind` with {type: (replicas, restartPolicy or the kind's default)}."""
    mod = by_kind(kind)
    members = [Member(rtype, i, mod.pod_name("mnist", rtype, i), policy or mod.DEFAULT_RESTART_POLICY, mod.CONTAINER)
               for rtype, (count, policy) in replicas.items() for i in range(count)]
    return Lifecycle(mod, {"metadata": {"name": "mnist", "namespace": "ml"}, "spec": spec or {}}, members,
                     restart_delay=restart_delay)


def play(lc: Lifecycle, steps: list[str]) -> list[str]:
    """Start the job at time 0, then each step: `worker-0=1` (exits with 1, then a tick), `t=5`
    (a tick at time 5) or `interrupt`. The decisions after the start, notes and stop-all left out."""
    assert {d.action for d in lc.start(0.0)} == {START}
    now, seen = 0.0, []
    for step in steps:
        if step == "interrupt":
            decisions = lc.interrupt()
        elif step.startswith("t="):
            now = float(step[2:])
            decisions = lc.tick(now)
        else:
            name, code = step.split("=")
            decisions = lc.exited(name, int(code), now) + lc.tick(now)
        for d in decisions:
            if d.action in (SUCCEED, FAIL):
                assert decisions[-1] == Decision(STOP_ALL), decisions
            if d.action not in (NOTE, STOP_ALL):
                seen.append(f"{d.action} {d.replica or d.text}")
    return seen


W1 = {"Worker": (1, None)}
CASES = [
    # restartPolicy
    ("Never: a failure fails the job", "TFJob", W1, {}, ["worker-0=1"], ["fail ReplicaFailed"]),
    ("Never: success", "TFJob", W1, {}, ["worker-0=0"], ["succeed Succeeded"]),
    ("OnFailure restarts in place", "TFJob", {"Worker": (1, "OnFailure")}, {},
     ["worker-0=1", "worker-0=2", "worker-0=0"], ["restart worker-0", "restart worker-0", "succeed Succeeded"]),
    ("Always restarts even after success; the Chief decides", "TFJob", {"Chief": (1, None), "PS": (1, "Always")}, {},
     ["ps-0=0", "ps-0=1", "chief-0=0"], ["restart ps-0", "restart ps-0", "succeed Succeeded"]),
    # TFJob success and failure
    ("TFJob: the Chief decides, not the workers", "TFJob", {"Chief": (1, None), "Worker": (2, None)}, {},
     ["worker-0=0", "worker-1=0", "chief-0=0"], ["succeed Succeeded"]),
    ("TFJob: a failed Chief fails the job", "TFJob", {"Chief": (1, None), "Worker": (1, None)}, {},
     ["chief-0=1"], ["fail ReplicaFailed"]),
    ("TFJob: the Master decides", "TFJob", {"Master": (1, None), "Worker": (1, None)}, {},
     ["worker-0=0", "master-0=0"], ["succeed Succeeded"]),
    ("TFJob: without a Chief, worker 0 decides", "TFJob", {"Worker": (2, None)}, {},
     ["worker-1=0", "worker-0=0"], ["succeed Succeeded"]),
    ("TFJob: worker 0 ends it while worker 1 runs", "TFJob", {"Worker": (2, None)}, {},
     ["worker-0=0", "worker-1=1"], ["succeed Succeeded"]),
    ("TFJob: successPolicy AllWorkers waits for every worker", "TFJob", {"Worker": (2, None)},
     {"successPolicy": "AllWorkers"}, ["worker-0=0", "t=1", "worker-1=0"], ["succeed Succeeded"]),
    ("TFJob: any failed worker fails the job", "TFJob", {"Worker": (2, None)}, {}, ["worker-1=1"], ["fail ReplicaFailed"]),
    ("TFJob: a failed PS fails the job", "TFJob", {"Chief": (1, None), "PS": (1, None)}, {},
     ["ps-0=1"], ["fail ReplicaFailed"]),
    ("TFJob: enableDynamicWorker, a failed worker fails alone", "TFJob", {"Chief": (1, None), "Worker": (2, None)},
     {"enableDynamicWorker": True}, ["worker-1=1", "chief-0=0"], ["succeed Succeeded"]),
    ("TFJob: no rule decides, all ended: failed when one failed", "TFJob", {"Worker": (2, None)},
     {"enableDynamicWorker": True}, ["worker-0=1", "worker-1=0"], ["fail ReplicaFailed"]),
    ("TFJob: no rule decides, all ended: succeeded when all exited 0", "TFJob", {"PS": (1, None), "Evaluator": (1, None)},
     {}, ["ps-0=0", "evaluator-0=0"], ["succeed Succeeded"]),
    # PyTorchJob
    ("PyTorchJob: the Master decides", "PyTorchJob", {"Master": (1, None), "Worker": (1, None)}, {},
     ["worker-0=0", "master-0=0"], ["succeed Succeeded"]),
    ("PyTorchJob: OnFailure by default", "PyTorchJob", {"Master": (1, None), "Worker": (1, None)}, {},
     ["worker-0=1"], ["restart worker-0"]),
    ("PyTorchJob: a failed worker fails the job", "PyTorchJob", {"Master": (1, None), "Worker": (1, "Never")}, {},
     ["worker-0=1"], ["fail ReplicaFailed"]),
    # PyTorchJob, elastic (pytorchjob_controller.go: without a Master any succeeded worker ends it)
    ("PyTorchJob elastic, Workers only: any worker's success ends it", "PyTorchJob", {"Worker": (3, None)},
     {"elasticPolicy": {"minReplicas": 1}}, ["worker-2=0"], ["succeed Succeeded"]),
    ("PyTorchJob elastic with a Master: the Master decides", "PyTorchJob", {"Master": (1, None), "Worker": (2, None)},
     {"elasticPolicy": {"minReplicas": 1}}, ["worker-0=0", "t=1", "master-0=0"], ["succeed Succeeded"]),
    ("PyTorchJob without a Master, not elastic: every worker", "PyTorchJob", {"Worker": (2, None)}, {},
     ["worker-0=0", "t=1", "worker-1=0"], ["succeed Succeeded"]),
    # XGBoostJob (xgboostjob_controller.go)
    ("XGBoostJob: the Master decides while workers run", "XGBoostJob", {"Master": (1, None), "Worker": (2, None)}, {},
     ["master-0=0"], ["succeed Succeeded"]),
    ("XGBoostJob: Never by default, a failed worker fails the job", "XGBoostJob",
     {"Master": (1, None), "Worker": (2, None)}, {}, ["worker-1=1"], ["fail ReplicaFailed"]),
    ("XGBoostJob: ExitCode recreates the Master on 137", "XGBoostJob", {"Master": (1, "ExitCode"), "Worker": (1, None)},
     {}, ["master-0=137", "master-0=0"], ["recreate master-0", "succeed Succeeded"]),
    # JAXJob (jaxjob_controller.go)
    ("JAXJob: every worker must succeed", "JAXJob", {"Worker": (2, None)}, {},
     ["worker-0=0", "t=1", "worker-1=0"], ["succeed Succeeded"]),
    ("JAXJob: Never by default, a failed worker fails the job", "JAXJob", {"Worker": (2, None)}, {},
     ["worker-0=0", "worker-1=1"], ["fail ReplicaFailed"]),
    # PaddleJob (paddlepaddle_controller.go)
    ("PaddleJob: OnFailure by default, restarts in place", "PaddleJob", {"Worker": (2, None)}, {},
     ["worker-1=1", "worker-1=0", "worker-0=0"], ["restart worker-1", "succeed Succeeded"]),
    ("PaddleJob with a Master: the Master decides", "PaddleJob", {"Master": (1, None), "Worker": (2, None)}, {},
     ["master-0=0"], ["succeed Succeeded"]),
    ("PaddleJob: a failed worker under Never fails the job", "PaddleJob", {"Worker": (2, "Never")}, {},
     ["worker-0=1"], ["fail ReplicaFailed"]),
    # batch/v1 Job
    ("Job, restartPolicy Never: another pod", "Job", {"Job": (1, "Never")}, {},
     ["job-0=1", "job-0=0"], ["recreate job-0", "succeed Succeeded"]),
    ("Job, restartPolicy OnFailure: in place", "Job", {"Job": (1, "OnFailure")}, {},
     ["job-0=1", "job-0=0"], ["restart job-0", "succeed Succeeded"]),
    ("Job: backoffLimit defaults to 6", "Job", {"Job": (1, "Never")}, {},
     ["job-0=1"] * 7, ["recreate job-0"] * 6 + ["fail BackoffLimitExceeded"]),
    ("Job: podFailurePolicy fails it on a permanent code", "Job", {"Job": (1, "Never")}, PFP,
     ["job-0=3"], ["fail PodFailurePolicy"]),
    ("Job: podFailurePolicy lets a retryable code retry", "Job", {"Job": (1, "Never")}, PFP,
     ["job-0=137", "job-0=0"], ["recreate job-0", "succeed Succeeded"]),
    # backoffLimit, activeDeadlineSeconds, interrupt
    ("backoffLimit caps the restarts of every replica together", "TFJob", {"Worker": (2, "OnFailure")},
     {"runPolicy": {"backoffLimit": 3}}, ["worker-0=1", "worker-1=1", "worker-0=1", "worker-1=1"],
     ["restart worker-0", "restart worker-1", "restart worker-0", "fail BackoffLimitExceeded"]),
    ("backoffLimit 0: no restart", "TFJob", {"Worker": (1, "OnFailure")}, {"runPolicy": {"backoffLimit": 0}},
     ["worker-0=1"], ["fail BackoffLimitExceeded"]),
    ("backoffLimit counts an Always restart after success", "TFJob", {"Chief": (1, None), "PS": (1, "Always")},
     {"runPolicy": {"backoffLimit": 1}}, ["ps-0=0", "ps-0=0"], ["restart ps-0", "fail BackoffLimitExceeded"]),
    ("activeDeadlineSeconds", "TFJob", W1, {"runPolicy": {"activeDeadlineSeconds": 10}},
     ["t=9.99", "t=10"], ["fail DeadlineExceeded"]),
    ("Job: activeDeadlineSeconds", "Job", {"Job": (1, "Never")}, {"activeDeadlineSeconds": 5},
     ["job-0=1", "t=5"], ["recreate job-0", "fail DeadlineExceeded"]),
    ("interrupted", "PyTorchJob", {"Master": (1, None), "Worker": (1, None)}, {}, ["interrupt"], ["fail Interrupted"]),
    ("nothing after the end", "TFJob", W1, {}, ["worker-0=0", "worker-0=1", "t=100", "interrupt"], ["succeed Succeeded"]),
]


@pytest.mark.parametrize("kind, replicas, spec, steps, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules(kind, replicas, spec, steps, expected):
    assert play(lifecycle(kind, replicas, spec), steps) == expected


@pytest.mark.parametrize("code, expected", [
    (0, ["succeed Succeeded"]), (1, ["fail ReplicaFailed"]), (2, ["fail ReplicaFailed"]), (127, ["fail ReplicaFailed"]),
    (128, ["recreate worker-0"]), (130, ["recreate worker-0"]), (137, ["recreate worker-0"]),
    (138, ["recreate worker-0"]), (143, ["recreate worker-0"]), (255, ["recreate worker-0"]),
])
def test_exit_code_policy(code, expected):
    """ExitCode: 1..127 are permanent (the replica fails), >= 128 retryable (its pod is recreated)."""
    assert play(lifecycle("TFJob", {"Worker": (1, "ExitCode")}), [f"worker-0={code}"]) == expected


def test_exit_code_restart_conditions_and_events():
    lc = lifecycle("TFJob", {"Worker": (1, "ExitCode")})
    play(lc, ["worker-0=143"])
    assert [(c["type"], c["status"]) for c in lc.conditions] == [("Created", "True"), ("Running", "True")]
    assert lc.events == [
        ("Normal", "SuccessfulCreatePod", "Created pod: mnist-worker-0"),
        ("Normal", "ExitedWithCode", "Pod: ml.mnist-worker-0 exited with code 143"),
        ("Warning", "TFJobRestarting", "TFJob mnist is restarting because Worker replica(s) failed."),
        ("Normal", "SuccessfulCreatePod", "Created pod: mnist-worker-0"),
    ]
    play_on(lc, ["worker-0=0"])
    assert lc.conditions == [
        {"type": "Created", "status": "True", "reason": "TFJobCreated", "message": "TFJob mnist is created."},
        {"type": "Running", "status": "False", "reason": "TFJobRunning", "message": "TFJob ml/mnist is running."},
        {"type": "Succeeded", "status": "True", "reason": "TFJobSucceeded",
         "message": "TFJob ml/mnist successfully completed."},
    ]


def play_on(lc: Lifecycle, steps: list[str], now: float = 0.0) -> None:
    """More exits of a started job."""
    for step in steps:
        name, code = step.split("=")
        lc.exited(name, int(code), now)
        lc.tick(now)


def test_restart_waits_for_the_delay():
    lc = lifecycle("TFJob", {"Worker": (1, "OnFailure")}, {"runPolicy": {"activeDeadlineSeconds": 60}}, restart_delay=5)
    lc.start(100.0)
    assert lc.wake_at() == 160.0
    assert [d.action for d in lc.exited("worker-0", 1, 101.0)] == [NOTE]
    assert lc.wake_at() == 106.0
    assert lc.tick(105.9) == []
    assert lc.tick(106.0) == [Decision(RESTART, "worker-0")]
    assert lc.exited("worker-0", 1, 106.0)[0] == Decision(NOTE, text="worker-0 exited with code 1; restarting "
                                                                      "(restartPolicy OnFailure, restart 2)")


FINAL = [
    ("TFJob", {"Worker": (2, None)}, {}, ["worker-1=1"],
     ("Failed", "TFJobFailed", "TFJob ml/mnist has failed because 1 Worker replica(s) failed.")),
    ("PyTorchJob", {"Master": (1, None), "Worker": (2, "Never")}, {}, ["worker-0=1"],
     ("Failed", "PyTorchJobFailed", "PyTorchJob mnist is failed because 1 Worker replica(s) failed.")),
    ("PyTorchJob", {"Master": (1, None), "Worker": (1, None)}, {}, ["master-0=0"],
     ("Succeeded", "PyTorchJobSucceeded", "PyTorchJob mnist is successfully completed.")),
    ("TFJob", {"Worker": (1, "OnFailure")}, {"runPolicy": {"backoffLimit": 0}}, ["worker-0=1"],
     ("Failed", "TFJobFailed", "Job mnist has failed because it has reached the specified backoff limit")),
    ("TFJob", W1, {"runPolicy": {"activeDeadlineSeconds": 1}}, ["t=1"],
     ("Failed", "TFJobFailed", "Job mnist has failed because it was active longer than specified deadline")),
    ("TFJob", W1, {}, ["interrupt"], ("Failed", "TFJobFailed", "TFJob mnist was interrupted on this machine")),
    ("PyTorchJob", {"Worker": (2, None)}, {"elasticPolicy": {}}, ["worker-0=0"],
     ("Succeeded", "PyTorchJobSucceeded", "PyTorchJob ml/mnist successfully completed.")),
    ("XGBoostJob", {"Master": (1, None), "Worker": (1, None)}, {}, ["master-0=0"],
     ("Succeeded", "XGBoostJobSucceeded", "XGBoostJob mnist is successfully completed.")),
    ("XGBoostJob", {"Master": (1, None), "Worker": (2, None)}, {}, ["worker-0=1"],
     ("Failed", "XGBoostJobFailed", "XGBoostJob mnist is failed because 1 Worker replica(s) failed.")),
    ("JAXJob", {"Worker": (1, None)}, {}, ["worker-0=0"],
     ("Succeeded", "JAXJobSucceeded", "JAXJob ml/mnist successfully completed.")),
    ("JAXJob", {"Worker": (2, None)}, {}, ["worker-1=3"],
     ("Failed", "JAXJobFailed", "JAXJob mnist is failed because 1 Worker replica(s) failed.")),
    ("PaddleJob", {"Worker": (1, None)}, {}, ["worker-0=0"],
     ("Succeeded", "PaddleJobSucceeded", "PaddleJob ml/mnist successfully completed.")),
    ("PaddleJob", {"Master": (1, None), "Worker": (1, None)}, {}, ["master-0=0"],
     ("Succeeded", "PaddleJobSucceeded", "PaddleJob mnist is successfully completed.")),
    ("PaddleJob", {"Worker": (1, "Never")}, {}, ["worker-0=1"],
     ("Failed", "PaddleJobFailed", "PaddleJob mnist is failed because 1 Worker replica(s) failed.")),
    ("TFJob", {"Worker": (2, None)}, {"enableDynamicWorker": True}, ["worker-0=1", "worker-1=0"],
     ("Failed", "TFJobFailed", "TFJob mnist: no replica left running and no success rule applies; some failed.")),
    ("Job", {"Job": (1, "Never")}, {}, ["job-0=0"], ("Complete", "CompletionsReached", "Reached expected number of succeeded pods")),
    ("Job", {"Job": (1, "Never")}, {"backoffLimit": 0}, ["job-0=1"],
     ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")),
    ("Job", {"Job": (1, "Never")}, {"activeDeadlineSeconds": 1}, ["t=1"],
     ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")),
    ("Job", {"Job": (1, "Never")}, PFP, ["job-0=2"], ("Failed", "PodFailurePolicy", "Container trainer for pod "
                                                      "ml/mnist-0 failed with exit code 2 matching FailJob rule at index 0")),
    ("Job", {"Job": (1, "Never")}, {}, ["interrupt"], ("Failed", "Interrupted", "Job mnist was interrupted on this machine")),
]


@pytest.mark.parametrize("kind, replicas, spec, steps, condition", FINAL,
                         ids=[f"{c[0]}-{c[-1][1]}-{c[-2][-1]}" for c in FINAL])
def test_final_condition(kind, replicas, spec, steps, condition):
    lc = lifecycle(kind, replicas, spec)
    play(lc, steps)
    last = lc.conditions[-1]
    assert (last["type"], last["reason"], last["message"]) == condition and last["status"] == "True"
    assert lc.events[-1] == ("Normal", *condition[1:])
    assert lc.outcome.message == condition[2]


@pytest.mark.parametrize("policy, codes, pods", [
    ("Never", [1, 1, 0], "0 Active / 1 Succeeded / 2 Failed"),  # failed pods stay
    ("OnFailure", [1, 1, 0], "0 Active / 1 Succeeded / 0 Failed"),  # one pod, restarted in place
    ("OnFailure", [1, 1, 1], "0 Active / 0 Succeeded / 1 Failed"),  # backoffLimit 2 reached
])
def test_job_pod_counts(policy, codes, pods):
    lc = lifecycle("Job", {"Job": (1, policy)}, {"backoffLimit": 2})
    play(lc, [f"job-0={c}" for c in codes])
    assert f"\nPods Statuses:  {pods}\nStatus:\n" in lc.describe()


def test_status_and_describe():
    """On success the replicas still running count as succeeded; the status has the kind's shape."""
    lc = lifecycle("TFJob", {"Chief": (1, None), "PS": (1, "Always"), "Worker": (2, "OnFailure")})
    play(lc, ["worker-1=1", "ps-0=0", "worker-1=0", "chief-0=0"])
    assert lc.status() == {"conditions": lc.conditions, "replicaStatuses": {
        "Chief": {"succeeded": 1}, "PS": {"succeeded": 1}, "Worker": {"succeeded": 2}}}
    assert lc.restarts == 2
    text = lc.describe()
    assert text.startswith("Name:         mnist\nNamespace:    ml\nKind:         TFJob\nStatus:\n  Conditions:\n"
                           "    Type       Status  Reason          Message\n")
    assert "  Replica Statuses:\n    Chief:\n      Succeeded:  1\n    PS:\n      Succeeded:  1\n" in text
    assert "\nEvents:\n  Type    Reason               Message\n  ----    ------               -------\n" in text

    failed = lifecycle("PyTorchJob", {"Master": (1, None), "Worker": (1, "Never")})
    play(failed, ["worker-0=1"])
    assert failed.status()["replicaStatuses"] == {"Master": {"active": 1}, "Worker": {"failed": 1}}
    job = lifecycle("Job", {"Job": (1, "Never")})
    play(job, ["job-0=1", "job-0=0"])
    assert job.status() == {"succeeded": 1, "failed": 1, "conditions": job.conditions}


@pytest.mark.parametrize("kind, replicas, steps, health", [
    ("TFJob", {"Worker": (2, None)}, ["worker-0=0"], "Healthy"),
    ("PyTorchJob", {"Master": (1, None), "Worker": (1, "Never")}, ["worker-0=1"], "Degraded"),
    ("TFJob", {"Worker": (1, "ExitCode")}, ["worker-0=137"], "Progressing"),
    ("XGBoostJob", {"Master": (1, None), "Worker": (1, None)}, ["master-0=0"], "Healthy"),
    ("XGBoostJob", {"Master": (1, "ExitCode"), "Worker": (1, None)}, ["master-0=143"], "Progressing"),
    ("JAXJob", {"Worker": (2, None)}, ["worker-0=1"], "Degraded"),
    ("PaddleJob", {"Worker": (1, None)}, ["worker-0=0"], "Healthy"),
])
def test_argo_cd_reads_the_status(kind, replicas, steps, health):
    """The status the lifecycle keeps reads in the kind's Argo CD health check as it would live."""
    from tests.test_gitops import lua_health

    lc = lifecycle(kind, replicas)
    play(lc, steps)
    status, message = lua_health({"kind": kind, "status": lc.status()}, by_kind(kind).HEALTH_LUA)
    assert status == health, message


def test_exits_of_a_replica_not_running_are_ignored():
    lc = lifecycle("TFJob", {"Worker": (1, "OnFailure")}, restart_delay=1.0)
    lc.start(0.0)
    lc.exited("worker-0", 1, 0.0)
    assert lc.exited("worker-0", 1, 0.5) == []  # waiting for its restart
    assert lc.tick(1.0) == [Decision(RESTART, "worker-0")]


def test_pod_failure_policy_rules():
    rules = {"podFailurePolicy": {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "Count", "onExitCodes": {"operator": "In", "values": [42]}},
        {"action": "FailJob", "onExitCodes": {"containerName": "sidecar", "operator": "In", "values": [7]}},
        {"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [42, 137]}},
    ]}}
    assert [batchjob.fail_job_rule(rules, "trainer", c) for c in (0, 42, 7, 137, 3)] == [None, None, 3, None, 3]
    assert batchjob.fail_job_rule(rules, "sidecar", 7) == 2
    assert batchjob.fail_job_rule({}, "trainer", 3) is None


#: What the local runner asks of every workload kind module.
OPERATOR_INTERFACE = ("read_replicas", "cluster_only", "local_warnings", "pod_name", "replica_env", "limits",
                      "exit_action", "fail_job_rule", "succeeded", "failed", "status", "job_conditions", "CONDITIONS",
                      "EVENTS", "CONTAINER", "DEFAULT_RESTART_POLICY", "OPERATOR_ENV")


@pytest.mark.parametrize("kind", WORKLOADS, ids=lambda k: k.KIND)
def test_every_workload_kind_has_the_operator_rules(kind):
    assert [name for name in OPERATOR_INTERFACE if not hasattr(kind, name)] == []
    assert {"Succeeded", "BackoffLimitExceeded", "DeadlineExceeded"} <= set(kind.CONDITIONS)
    assert "created" in kind.EVENTS
    for types in ({t} for t in kind.REPLICA_TYPES):
        assert set(kind.job_conditions(types)) == set(kind.CONDITIONS)
