"""GitOps delivery: stable hashed names across re-renders, the Argo CD health Lua (run in a real
Lua 5.1), the Application, the CMP plugin, pre-commit hooks and the example CI workflow.

A few subprocesses: specc via the CMP command and the CI steps, kubectl kustomize.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compiler.cli import main
from compiler.gitops.application import SYNC_OPTIONS
from compiler.gitops.health import config_key
from compiler.kinds import WORKLOADS
from compiler.kinds.v1 import HEALTH_LUA

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A scratch repo with a copy of specs/ and rendered/, as the working directory."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    shutil.copytree(ROOT / "rendered", tmp_path / "rendered")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tree(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def render(out: str = "rendered") -> int:
    return main(["render", "specs", "-o", out, "-q"])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def workload(folder: Path) -> dict:
    return next(yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml")
                if yaml.safe_load(p.read_text())["kind"] in ("TFJob", "PyTorchJob", "Job"))


def kustomize(d: Path) -> list[dict]:
    r = subprocess.run([KUBECTL, "kustomize", str(d)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [doc for doc in yaml.safe_load_all(r.stdout) if doc]


# ----------------------------------------------------------------------------- hashed names


def test_committed_rendered_folder_is_what_specs_render_to(repo):
    assert render("fresh") == 0
    assert tree(repo / "fresh") == tree(ROOT / "rendered")


def test_changing_one_spec_changes_only_that_job(repo):
    before = tree(repo / "rendered")
    old = workload(repo / "rendered" / "mnist")["metadata"]["name"]
    edit(repo / "specs" / "mnist.yaml", "learning_rate: 0.01", "learning_rate: 0.02")
    assert render() == 0
    after = tree(repo / "rendered")

    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {"mnist/configmap.yaml", "mnist/tfjob.yaml"}
    new = workload(repo / "rendered" / "mnist")["metadata"]["name"]
    assert new != old and new.startswith("mnist-") and len(new) == len("mnist-") + 8
    cm = yaml.safe_load((repo / "rendered" / "mnist" / "configmap.yaml").read_text())
    assert cm["metadata"]["name"] == f"{new}-config"
    assert '"learning_rate": 0.02' in cm["data"]["config.json"] or '"learning_rate":0.02' in cm["data"]["config.json"]

    objs = kustomize(repo / "rendered")
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert ("TFJob", new) in names and ("TFJob", old) not in names
    assert ("ConfigMap", f"{new}-config") in names
    # Every other job kept its name.
    others = {f.name for f in (ROOT / "rendered").iterdir() if f.is_dir()} - {"mnist"}
    for folder in others:
        assert workload(repo / "rendered" / folder) == workload(ROOT / "rendered" / folder)

    # Re-rendering the unchanged specs changes nothing; reverting restores the old name.
    assert render() == 0
    assert tree(repo / "rendered") == after
    edit(repo / "specs" / "mnist.yaml", "learning_rate: 0.02", "learning_rate: 0.01")
    assert render() == 0
    assert tree(repo / "rendered") == before


def test_fixed_naming_keeps_the_plain_name(repo):
    edit(repo / "specs" / "mnist.yaml", "  framework: tensorflow\n", "  framework: tensorflow\n  naming: fixed\n")
    assert render() == 0
    assert workload(repo / "rendered" / "mnist")["metadata"]["name"] == "mnist"
    edit(repo / "specs" / "mnist.yaml", "learning_rate: 0.01", "learning_rate: 0.02")
    assert render() == 0
    assert workload(repo / "rendered" / "mnist")["metadata"]["name"] == "mnist"
    cm = yaml.safe_load((repo / "rendered" / "mnist" / "configmap.yaml").read_text())
    assert cm["metadata"]["name"] == "mnist-config"
    kustomize(repo / "rendered" / "mnist")


def test_lint_settings_do_not_change_output_or_hash(repo):
    before = tree(repo / "rendered")
    edit(repo / "specs" / "mnist.yaml", "  framework: tensorflow\n",
         "  framework: tensorflow\n  lint:\n    ignore: [name-length, ttl-after-finished]\n")
    assert render() == 0
    assert tree(repo / "rendered") == before


# ----------------------------------------------------------------------------- health Lua


def lua_health(obj: dict, script: str = HEALTH_LUA) -> tuple[str, str]:
    """Run the health script as Argo CD does: a chunk with the live object as global `obj`."""
    import lupa

    mod = getattr(lupa, "lua51", None)
    lua = mod.LuaRuntime() if mod is not None else lupa.LuaRuntime()
    assert lua.execute("return _VERSION") == "Lua 5.1"
    lua.globals().obj = lua.table_from(obj, recursive=True)
    hs = lua.execute(script)
    return hs["status"], hs["message"]


def cond(type_: str, status: str, message: str | None = None, reason: str | None = None) -> dict:
    c = {"type": type_, "status": status, "lastUpdateTime": "2024-05-01T10:00:00Z"}
    if message is not None:
        c["message"] = message
    if reason is not None:
        c["reason"] = reason
    return c


BOOK_SUCCEEDED = {
    "apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "mnist"},
    "status": {
        "conditions": [
            cond("Created", "True", "TFJob mnist is created.", "TFJobCreated"),
            cond("Running", "False", "TFJob mnist is running.", "TFJobRunning"),
            cond("Succeeded", "True", "TFJob kubeflow/mnist successfully completed.", "TFJobSucceeded"),
        ],
        "replicaStatuses": {"Worker": {"succeeded": 2}},
        "startTime": "2024-05-01T10:00:00Z", "completionTime": "2024-05-01T10:05:00Z",
    },
}


@pytest.mark.parametrize("obj, status, message", [
    (BOOK_SUCCEEDED, "Healthy", "TFJob kubeflow/mnist successfully completed. (Worker: succeeded 2)"),
    ({"status": {"conditions": [cond("Created", "True", "TFJob mnist is created.")]}},
     "Progressing", "TFJob mnist is created."),
    ({"status": {"conditions": [cond("Created", "True", "created"), cond("Running", "True", "TFJob mnist is running.")],
                 "replicaStatuses": {"Worker": {"active": 2}}}},
     "Progressing", "TFJob mnist is running. (Worker: active 2)"),
    ({"status": {"conditions": [cond("Created", "True", "c"), cond("Running", "False", "r"),
                                cond("Restarting", "True", "TFJob mnist is restarting because 1 Worker replica(s) failed.")],
                 "replicaStatuses": {"Worker": {"active": 1, "failed": 1}}}},
     "Progressing", "TFJob mnist is restarting because 1 Worker replica(s) failed. (Worker: active 1, failed 1)"),
    ({"status": {"conditions": [cond("Created", "True", "c"), cond("Running", "False", "r"),
                                cond("Failed", "True", "TFJob mnist has failed because 1 Worker replica(s) failed.")],
                 "replicaStatuses": {"Worker": {"failed": 1, "succeeded": 1}}}},
     "Degraded", "TFJob mnist has failed because 1 Worker replica(s) failed. (Worker: succeeded 1, failed 1)"),
    ({"status": {"conditions": [cond("Created", "True", "c"), cond("Suspended", "True", "PyTorchJob p is suspended.")]}},
     "Suspended", "PyTorchJob p is suspended."),
    # Resumed after a suspension: the last True condition wins.
    ({"status": {"conditions": [cond("Created", "True", "c"), cond("Suspended", "False", "s"),
                                cond("Running", "True", "PyTorchJob p is running.")]}},
     "Progressing", "PyTorchJob p is running."),
    # A True condition earlier in the list does not beat a later one.
    ({"status": {"conditions": [cond("Failed", "True", "old failure"), cond("Succeeded", "True", "done")]}},
     "Healthy", "done"),
    # No message: the reason, then the type.
    ({"status": {"conditions": [cond("Failed", "True", reason="DeadlineExceeded")]}}, "Degraded", "DeadlineExceeded"),
    ({"status": {"conditions": [cond("Succeeded", "True")]}}, "Healthy", "Succeeded"),
    # Nothing reported yet.
    ({"metadata": {"name": "fresh"}}, "Progressing", "Waiting for the training operator to report status"),
    ({"status": {}}, "Progressing", "Waiting for the training operator to report status"),
    ({"status": {"conditions": []}}, "Progressing", "Waiting for the training operator to report status"),
    ({"status": {"conditions": [cond("Created", "False", "c")], "replicaStatuses": {"Master": {}, "Worker": {"active": 0}}}},
     "Progressing", "Waiting for the training operator to report status"),
    ({"status": {"replicaStatuses": {"Worker": {"active": 1}, "Master": {"active": 1}}}},
     "Progressing", "Waiting for the training operator to report status (Master: active 1; Worker: active 1)"),
])
def test_health_lua(obj, status, message):
    assert lua_health(obj) == (status, message)


#: Statuses of the other v1 kinds in their controllers' words (kubeflow/trainer v1.9.4
#: pkg/controller.v1/<kind>/*_controller.go UpdateJobStatus).
V1_STATUSES = [
    ("XGBoostJob", [cond("Created", "True", "XGBoostJob xgboost-iris is created.", "XGBoostJobCreated"),
                    cond("Running", "False", "XGBoostJob xgboost-iris is running.", "XGBoostJobRunning"),
                    cond("Succeeded", "True", "XGBoostJob xgboost-iris is successfully completed.", "XGBoostJobSucceeded")],
     {"Master": {"succeeded": 1}, "Worker": {"succeeded": 2}},
     "Healthy", "XGBoostJob xgboost-iris is successfully completed. (Master: succeeded 1; Worker: succeeded 2)"),
    ("JAXJob", [cond("Created", "True", "JAXJob jax-simple is created.", "JAXJobCreated"),
                cond("Running", "False", "JAXJob kubeflow/jax-simple is running.", "JAXJobRunning"),
                cond("Failed", "True", "JAXJob jax-simple is failed because 1 Worker replica(s) failed.", "JAXJobFailed")],
     {"Worker": {"active": 1, "failed": 1}},
     "Degraded", "JAXJob jax-simple is failed because 1 Worker replica(s) failed. (Worker: active 1, failed 1)"),
    ("PaddleJob", [cond("Created", "True", "PaddleJob paddle-simple is created.", "PaddleJobCreated"),
                   cond("Restarting", "True", "PaddleJob paddle-simple is restarting because 1 Worker replica(s) failed.",
                        "PaddleJobRestarting")],
     {"Worker": {"active": 1, "failed": 1}},
     "Progressing", "PaddleJob paddle-simple is restarting because 1 Worker replica(s) failed. (Worker: active 1, failed 1)"),
    ("PyTorchJob", [cond("Created", "True", "PyTorchJob elastic-imagenet is created.", "PyTorchJobCreated"),
                    cond("Running", "False", "PyTorchJob kubeflow/elastic-imagenet is running.", "PyTorchJobRunning"),
                    cond("Succeeded", "True", "PyTorchJob kubeflow/elastic-imagenet successfully completed.",
                         "PyTorchJobSucceeded")],
     {"Worker": {"succeeded": 1, "active": 1}},
     "Healthy", "PyTorchJob kubeflow/elastic-imagenet successfully completed. (Worker: active 1, succeeded 1)"),
]


@pytest.mark.parametrize("kind, conditions, replicas, status, message", V1_STATUSES, ids=[s[0] for s in V1_STATUSES])
def test_health_of_each_v1_kind(capsys, kind, conditions, replicas, status, message):
    """Each kind's check, as `specc argocd health` puts it under the kind's argocd-cm key, reads
    that kind's status."""
    assert main(["argocd", "health"]) == 0
    script = yaml.safe_load(capsys.readouterr().out)["data"][f"resource.customizations.health.kubeflow.org_{kind}"]
    obj = {"apiVersion": "kubeflow.org/v1", "kind": kind, "status": {"conditions": conditions, "replicaStatuses": replicas}}
    assert lua_health(obj, script) == (status, message)


def test_health_command_prints_argocd_cm_patch(capsys):
    assert main(["argocd", "health"]) == 0
    cm = yaml.safe_load(capsys.readouterr().out)
    assert cm["apiVersion"] == "v1" and cm["kind"] == "ConfigMap"
    assert cm["metadata"]["name"] == "argocd-cm" and cm["metadata"]["namespace"] == "argocd"
    assert set(cm["data"]) == {config_key(k) for k in WORKLOADS if k.HEALTH_LUA} == {
        *(f"resource.customizations.health.kubeflow.org_{kind}"
          for kind in ("TFJob", "PyTorchJob", "XGBoostJob", "JAXJob", "PaddleJob")),
        "resource.customizations.health.trainer.kubeflow.org_TrainJob",
    }
    for key, script in cm["data"].items():  # the YAML round trip keeps a working script
        if key.endswith("TrainJob"):
            continue  # tests/test_trainjob_gitops.py runs the TrainJob's
        assert script == HEALTH_LUA
        assert lua_health(BOOK_SUCCEEDED, script)[0] == "Healthy"
    assert main(["argocd", "health", "--lua", "--namespace", "x"]) == 0
    assert capsys.readouterr().out == HEALTH_LUA
    for kind in ("PyTorchJob", "XGBoostJob", "JAXJob", "PaddleJob"):
        assert main(["argocd", "health", "--lua", "--kind", kind]) == 0
        assert capsys.readouterr().out == HEALTH_LUA
    assert main(["argocd", "health", "--lua", "--kind", "Job"]) == 2


# ----------------------------------------------------------------------------- Application


def app(capsys, *args: str) -> tuple[int, dict | None, str]:
    rc = main(["argocd", "app", "--repo", "https://git.example.com/ml/jobs.git", *args])
    out, err = capsys.readouterr()
    return rc, (yaml.safe_load(out) if out else None), err


def test_application_fields(capsys):
    rc, a, err = app(capsys)
    assert rc == 0 and err == ""
    assert a["apiVersion"] == "argoproj.io/v1alpha1" and a["kind"] == "Application"
    assert a["metadata"] == {"name": "specc-jobs", "namespace": "argocd",
                             "labels": {"app.kubernetes.io/managed-by": "specc"},
                             "finalizers": ["resources-finalizer.argocd.argoproj.io"]}
    assert a["spec"]["project"] == "default"
    assert a["spec"]["source"] == {"repoURL": "https://git.example.com/ml/jobs.git", "targetRevision": "main", "path": "rendered"}
    assert a["spec"]["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "kubeflow"}
    sync = a["spec"]["syncPolicy"]
    assert "automated" not in sync
    assert sync["syncOptions"] == list(SYNC_OPTIONS)
    assert {"CreateNamespace=false", "PrunePropagationPolicy=foreground", "PruneLast=true", "ApplyOutOfSyncOnly=true"} <= set(sync["syncOptions"])
    assert not any(o.startswith(("Replace=", "Force=")) for o in sync["syncOptions"])

    rc, a, _ = app(capsys, "--auto-sync", "--path", "deploy/rendered", "--revision", "v2", "--namespace", "ml",
                   "--name", "training", "--project", "ml")
    assert rc == 0
    assert a["metadata"]["name"] == "training" and a["spec"]["project"] == "ml"
    assert a["spec"]["source"]["path"] == "deploy/rendered" and a["spec"]["source"]["targetRevision"] == "v2"
    assert a["spec"]["destination"]["namespace"] == "ml"
    assert a["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}

    rc, a, _ = app(capsys, "--plugin")
    assert a["spec"]["source"]["plugin"] == {"name": "specc"} and a["spec"]["source"]["path"] == "."


def test_application_warns_about_ttl_under_auto_sync(repo, capsys):
    spec = repo / "specs" / "income.yaml"
    edit(spec, "    backoffLimit: 2\n", "    backoffLimit: 2\n    ttlSecondsAfterFinished: 600\n")
    line = spec.read_text().splitlines().index("    ttlSecondsAfterFinished: 600") + 1

    rc, a, err = app(capsys, "--auto-sync", "--specs", "specs")
    assert rc == 0 and a["kind"] == "Application"
    assert err.startswith(f"specs/income.yaml:{line}:30: spec.runPolicy.ttlSecondsAfterFinished: warning: ")
    assert "re-running training" in err and err.count("\n") == 1

    rc, a, err = app(capsys, "--specs", "specs")  # no auto-sync: nothing re-creates the job
    assert rc == 0 and err == "" and a["kind"] == "Application"

    edit(spec, "name: income\n", "name: Income\n")  # invalid spec: an error, no Application
    rc, a, err = app(capsys, "--auto-sync", "--specs", "specs")
    assert rc == 2 and a is None and "specs/income.yaml:6:" in err


# ----------------------------------------------------------------------------- CMP, hooks, CI


def env_with_venv() -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_plugin_renders_specs_to_stdout(repo, capsys):
    plugin = yaml.safe_load((ROOT / "plugin.yaml").read_text())
    assert plugin["apiVersion"] == "argoproj.io/v1alpha1" and plugin["kind"] == "ConfigManagementPlugin"
    assert plugin["metadata"]["name"] == "specc"
    pattern = plugin["spec"]["discover"]["fileName"]
    assert sorted(repo.glob(pattern)) == sorted((repo / "specs").glob("*.yaml")) != []
    cmd = plugin["spec"]["generate"]["command"] + plugin["spec"]["generate"].get("args", [])
    assert cmd[:2] == ["specc", "render"] and "-o" not in cmd

    shutil.rmtree(repo / "rendered")  # a CMP repository does not commit rendered/
    r = subprocess.run(cmd, cwd=repo, env=env_with_venv(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert main(["render", "specs"]) == 0
    assert r.stdout == capsys.readouterr().out
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    kinds = {d["kind"] for d in docs}
    assert {"TFJob", "PyTorchJob", "Job", "ConfigMap"} <= kinds
    assert not (repo / "rendered").exists()  # the plugin writes nothing into the repository


def test_pre_commit_hooks(repo):
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert {"specc-render", "specc-check", "specc-lint"} <= set(hooks)
    for h in hooks.values():
        assert h["language"] == "python" and h["entry"].startswith("specc ")
    render_args = shlex.split(hooks["specc-render"]["entry"])[1:]
    check_args = shlex.split(hooks["specc-check"]["entry"])[1:]
    assert render_args == ["render", "specs", "-o", "rendered"] and check_args == render_args + ["--check"]
    assert hooks["specc-render"]["pass_filenames"] is False and hooks["specc-check"]["pass_filenames"] is False

    assert main(check_args) == 0
    edit(repo / "specs" / "mnist.yaml", "batch_size: 150", "batch_size: 100")
    assert main(check_args) == 1  # stale
    assert main(render_args) == 0
    assert main(check_args) == 0
    lint_args = shlex.split(hooks["specc-lint"]["entry"])[1:] + ["specs/mnist.yaml"]
    assert main(lint_args) == 0


def test_example_ci_workflow_runs_clean_on_this_repo(repo, tmp_path_factory):
    wf = yaml.safe_load((ROOT / "examples" / "ci" / "github-actions.yaml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in on
    steps = next(iter(wf["jobs"].values()))["steps"]
    assert any(s.get("uses", "").startswith("actions/setup-python") for s in steps)
    runs = [s["run"] for s in steps if "run" in s]
    assert "specc render specs -o rendered --check" in runs
    # A pull request's checkout (fetch-depth: 0): the repository with its base branch as origin/main.
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"],
                 ["update-ref", "refs/remotes/origin/main", "HEAD"]):
        subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", "-c", "commit.gpgsign=false", *args],
                       cwd=repo, check=True, capture_output=True)
    summary = tmp_path_factory.mktemp("github") / "step-summary.md"
    github = {"github.base_ref": "main"}
    for s in steps:
        cmd = s.get("run", "")
        if cmd.startswith(("specc ", "kubectl ")):
            step_env = {k: github.get(v.strip("${} "), v) for k, v in s.get("env", {}).items()}
            env = {**env_with_venv(), "GITHUB_STEP_SUMMARY": str(summary), **step_env}
            r = subprocess.run(cmd, shell=True, cwd=repo, env=env, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, f"{cmd}: {r.stderr}"
    assert summary.read_text().startswith("### specc plan: 0 to create, 0 to rerun, 0 to update, 0 to delete, 7 unchanged\n")
