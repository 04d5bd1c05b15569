"""Argo CD and TrainJobs: the health check in real Lua 5.1 (and the copy ready for upstream with its
health_test.yaml), the Application's sync strategy, and that strategy's merge tested offline on
recorded live objects (tests/trainjob_live: a TrainJob after Kueue queued it, and after Kueue
admitted it) with tests/ssa.py: server-side apply keeps what the cluster wrote and shows no drift;
client-side apply deletes Kueue's runtimePatches entry and, on a running job, is refused.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

import ssa
from compiler.cli import main
from compiler.gitops.application import IGNORE_DIFFERENCES, SYNC_OPTIONS, application, gitops_warnings
from compiler.kinds import trainingruntime as tr, trainjob
from conftest import REPO
from k8s_schemas import crd_schema
from test_gitops import lua_health

UPSTREAM = REPO / "examples" / "argocd" / "resource_customizations" / "trainer.kubeflow.org" / "TrainJob"
LIVE = Path(__file__).resolve().parent / "trainjob_live"
KUEUE = "kueue.x-k8s.io/manager"


def load(name: str) -> dict:
    return yaml.safe_load((LIVE / name).read_text())


# ----------------------------------------------------------------------------- health


def test_upstream_copy_is_the_shipped_check():
    assert (UPSTREAM / "health.lua").read_text() == trainjob.HEALTH_LUA


def _upstream_cases():
    tests = yaml.safe_load((UPSTREAM / "health_test.yaml").read_text())["tests"]
    return [(t["inputPath"], t["healthStatus"]) for t in tests]


@pytest.mark.parametrize("path, expected", _upstream_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_upstream_health_tests_in_lua_5_1(path, expected):
    """Argo CD's own test layout (util/lua/health_test.go): each input object, the expected status and message."""
    obj = yaml.safe_load((UPSTREAM / path).read_text())
    assert obj["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and obj["kind"] == "TrainJob"
    assert lua_health(obj, trainjob.HEALTH_LUA) == (expected["status"], expected["message"])


def test_upstream_tests_cover_every_outcome_and_reason():
    statuses = {e["status"] for _, e in _upstream_cases()}
    assert statuses == {"Healthy", "Progressing", "Degraded", "Suspended"}
    reasons = {c.get("reason") for p, _ in _upstream_cases()
               for c in (yaml.safe_load((UPSTREAM / p).read_text()).get("status") or {}).get("conditions") or []}
    assert {"AllJobsCompleted", "FailedJobs", "ReachedMaxRestarts", "FailJobSetFailurePolicyAction", "DeadlineExceeded",
            "Suspended", "Resumed"} <= reasons


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": "2026-08-20T10:00:00Z"}


@pytest.mark.parametrize("status, expected", [
    # Failed beats Complete, both beat Suspended.
    ({"conditions": [cond("Complete", "True", "AllJobsCompleted", "done"), cond("Failed", "True", "DeadlineExceeded", "late")]},
     ("Degraded", "late")),
    ({"conditions": [cond("Suspended", "True", "Suspended", "TrainJob is suspended"), cond("Complete", "True", "AllJobsCompleted", "ok")]},
     ("Healthy", "ok")),
    # A condition not True does not decide; Resumed (Suspended False) is Progressing with its message.
    ({"conditions": [cond("Failed", "False", "FailedJobs", "old")]}, ("Progressing", "Waiting for the Trainer controller to report status")),
    ({"conditions": [cond("Suspended", "False", "Resumed", "")]}, ("Progressing", "Resumed")),
    # No message: the reason, then the type.
    ({"conditions": [{"type": "Complete", "status": "True"}]}, ("Healthy", "Complete")),
    # Several child jobs, zero counts left out.
    ({"jobsStatus": [{"name": "node", "active": 2, "ready": 2, "succeeded": 0, "failed": 0, "suspended": 0},
                     {"name": "dataset-initializer", "active": 0, "ready": 0, "succeeded": 1, "failed": 0, "suspended": 0}]},
     ("Progressing", "TrainJob is running (node: active 2, ready 2; dataset-initializer: succeeded 1)")),
    ({}, ("Progressing", "Waiting for the Trainer controller to report status")),
])
def test_health_rules(status, expected):
    assert lua_health({"apiVersion": trainjob.API_VERSION, "kind": "TrainJob", "status": status}, trainjob.HEALTH_LUA) == expected


def test_health_command_serves_the_trainjob_key(capsys):
    assert main(["argocd", "health"]) == 0
    cm = yaml.safe_load(capsys.readouterr().out)
    script = cm["data"]["resource.customizations.health.trainer.kubeflow.org_TrainJob"]
    assert script == trainjob.HEALTH_LUA  # the YAML round trip keeps it whole
    assert main(["argocd", "health", "--lua", "--kind", "TrainJob"]) == 0
    assert capsys.readouterr().out == trainjob.HEALTH_LUA


# ----------------------------------------------------------------------------- the Application


def test_application_syncs_server_side_and_ignores_what_the_cluster_writes():
    app = application("https://git.example.com/ml/jobs.git")
    opts = app["spec"]["syncPolicy"]["syncOptions"]
    assert opts == list(SYNC_OPTIONS)
    assert {"ServerSideApply=true", "RespectIgnoreDifferences=true", "PruneLast=true"} <= set(opts)
    assert app["spec"]["ignoreDifferences"] == [{"group": "trainer.kubeflow.org", "kind": "TrainJob", "jqPathExpressions": [
        '.spec.runtimePatches[] | select(.manager != "specc.dev/compiler")', ".spec.runtimePatches[].time"]}]
    assert not any(p.endswith("suspend") for d in IGNORE_DIFFERENCES for p in d["jqPathExpressions"])


def test_no_ttl_warning_under_auto_sync_for_a_trainjob(tmp_path):
    from compiler import pipeline

    p = tmp_path / "job.yaml"
    p.write_text((REPO / "tests" / "golden" / "trainjob-tf-ttl-suspend" / "spec.yaml").read_text())
    units, diags = pipeline.run([str(p)], stage=pipeline.VALIDATE)
    assert not diags and gitops_warnings(units) == []


# ----------------------------------------------------------------------------- the merge, offline


SCHEMA = crd_schema("TrainJob")
EXPRESSIONS = IGNORE_DIFFERENCES[0]["jqPathExpressions"]


def kueue_entry(obj: dict) -> dict | None:
    return next((p for p in obj["spec"].get("runtimePatches") or [] if p["manager"] == KUEUE), None)


def with_last_applied(live: dict, desired: dict) -> dict:
    """The live object as a client-side apply of `desired` would have left it (last-applied annotation)."""
    import json

    out = copy.deepcopy(live)
    out["metadata"].setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(ssa._strip(desired))
    return out


@pytest.mark.parametrize("recorded", ["queued.yaml", "running.yaml"])
def test_server_side_apply_keeps_what_the_cluster_wrote(recorded):
    live, desired = load(recorded), load("desired.yaml")
    assert kueue_entry(live) is not None and kueue_entry(desired) is None
    result = ssa.server_side_apply(live, desired, SCHEMA)
    # Argo CD's diff (structured merge) predicts the live object: no drift.
    assert ssa.spec_view(result) == ssa.spec_view(live)
    assert kueue_entry(result) == kueue_entry(live)
    assert result["spec"]["suspend"] == live["spec"]["suspend"]
    assert [p.get("time") for p in result["spec"]["runtimePatches"]] == [p.get("time") for p in live["spec"]["runtimePatches"]]
    assert tr.patches_update(live, result) == []


def test_server_side_apply_of_a_moved_spec_touches_only_the_annotation():
    live, desired = load("running.yaml"), load("desired.yaml")
    moved = copy.deepcopy(desired)
    moved["metadata"]["annotations"]["specc.dev/source"] = "specs/nlp/llm-finetune.yaml"
    result = ssa.server_side_apply(live, moved, SCHEMA)
    assert result["spec"] == live["spec"]
    assert result["metadata"]["annotations"]["specc.dev/source"] == "specs/nlp/llm-finetune.yaml"
    assert tr.patches_update(live, result) == []


def test_server_side_apply_removes_what_argo_cd_alone_applied():
    """The rule that makes it safe: a field goes only when its last applier drops it and nobody else owns it."""
    live, desired = load("running.yaml"), load("desired.yaml")
    less = copy.deepcopy(desired)
    del less["metadata"]["labels"]["team"]
    del less["spec"]["activeDeadlineSeconds"]
    result = ssa.server_side_apply(live, less, SCHEMA)
    assert "team" not in result["metadata"]["labels"] and "activeDeadlineSeconds" not in result["spec"]
    assert kueue_entry(result) == kueue_entry(live) and result["spec"]["suspend"] is False


def test_client_side_apply_deletes_kueues_entry_or_is_refused():
    desired = load("desired.yaml")
    queued = with_last_applied(load("queued.yaml"), desired)
    result = ssa.client_side_apply(queued, desired)
    assert kueue_entry(result) is None  # Kueue's entry of a queued job is gone
    assert tr.patches_update(queued, result) == []  # (allowed: the job is suspended)
    running = with_last_applied(load("running.yaml"), desired)
    result = ssa.client_side_apply(running, desired)
    assert kueue_entry(result) is None
    assert tr.patches_update(running, result) == [
        "spec.runtimePatches: RuntimePatches can only be modified when the TrainJob is suspended before or after the update"]
    # Argo CD's default diff predicts that result: the job shows OutOfSync for ever.
    assert ssa.spec_view(result) != ssa.spec_view(running)


@pytest.mark.parametrize("recorded", ["queued.yaml", "running.yaml"])
def test_ignored_differences_hide_the_cluster_writes_and_are_applied_as_live(recorded):
    """ignoreDifferences takes Kueue's entry and the webhook's times out of any diff; under
    RespectIgnoreDifferences a sync applies them as they are live, so even a client-side apply
    keeps them and Trainer accepts the update."""
    desired = load("desired.yaml")
    live = with_last_applied(load(recorded), desired)
    predicted = ssa.client_side_apply(live, desired)
    manager = trainjob.MANAGER
    assert ssa.normalize(ssa.spec_view(predicted), EXPRESSIONS, manager) == ssa.normalize(ssa.spec_view(live), EXPRESSIONS, manager)
    applied = ssa.respect_ignored(live, desired, EXPRESSIONS, manager)
    assert kueue_entry(applied) == kueue_entry(live)
    after = ssa.client_side_apply(live, applied)
    assert after["spec"]["runtimePatches"] == live["spec"]["runtimePatches"]
    assert tr.patches_update(live, after) == []
    result = ssa.server_side_apply(load(recorded), applied, SCHEMA)
    assert ssa.spec_view(result) == ssa.spec_view(load(recorded))


def test_recorded_objects_are_valid_trainjobs():
    from k8s_schemas import validate_object

    for name in ("desired.yaml", "queued.yaml", "running.yaml"):
        obj = load(name)
        body = {k: v for k, v in obj.items() if k != "status"}
        assert validate_object(body) == [], name
