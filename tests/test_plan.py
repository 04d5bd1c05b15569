"""`specc plan`: real git repositories in temporary folders, one per test; every action, changed
fields, credential masking, totals, the committed rendered/ (a specc upgrade that renames jobs),
--base-dir, the default base, located errors on either side, --fail-on, nothing written; exact
Kubernetes quantities and pod requests of any kind; Markdown escaping against a CommonMark/GFM
parser (hypothesis); the Markdown/text/JSON golden (tests/golden-plan, SPECC_UPDATE_GOLDEN=1).

Specs compile in-process; git runs as subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import naming, quantity
from compiler.cli import main
from compiler.plan import changes, compare, markdown, requests, sides
from conftest import REPO, compile_specs

GOLDEN = Path(__file__).parent / "golden-plan"
UPDATE = os.environ.get("SPECC_UPDATE_GOLDEN") == "1"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "specc", "GIT_AUTHOR_EMAIL": "specc@example.com", "GIT_AUTHOR_DATE": "2024-05-01T10:00:00Z",
    "GIT_COMMITTER_NAME": "specc", "GIT_COMMITTER_EMAIL": "specc@example.com", "GIT_COMMITTER_DATE": "2024-05-01T10:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert r.returncode == 0, f"git {' '.join(args)}: {r.stderr}"
    return r.stdout.strip()


class Repo:
    """A git repository with specs/ and rendered/, committed on main; the working directory."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, rel: str, text: str) -> None:
        (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.path / rel).write_text(text)

    def edit(self, rel: str, old: str, new: str) -> None:
        text = (self.path / rel).read_text()
        assert old in text, f"{old!r} not in {rel}"
        (self.path / rel).write_text(text.replace(old, new, 1))

    def move(self, old: str, new: str) -> None:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        (self.path / old).rename(self.path / new)

    def render(self) -> None:
        assert main(["render", "specs", "-o", "rendered", "-q"]) == 0

    def commit(self, message: str = "change") -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.path, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Repo:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("GIT_DIR", raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    git(root, "init", "-q", "-b", "main")
    r = Repo(root)
    for name in ("mnist.yaml", "income.yaml", "pytorch-dist.yaml"):
        r.write(f"specs/{name}", (REPO / "specs" / name).read_text())
    r.render()
    r.commit("base")
    return r


def plan(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["plan", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def plan_json(capsys, *args: str) -> dict:
    rc, out, err = plan(capsys, "--format", "json", *args)
    assert rc == 0, err
    return json.loads(out)


def by_job(p: dict) -> dict[str, dict]:
    return {j["job"]: j for j in p["jobs"]}


def name_of(path: Path) -> str:
    jobs, diags = compile_specs([path])
    assert not diags, [str(d) for d in diags]
    return jobs[0].job_name


PINNED = {"mnist": "mnist-50f01bd5", "income": "income-54bcf5a1", "pytorch-dist": "pytorch-dist-5df0b522"}


# ----------------------------------------------------------------------------- actions


def test_nothing_changed_is_all_unchanged(repo, capsys):
    rc, out, err = plan(capsys)
    assert rc == 0 and err == ""
    assert out.startswith("specc plan: working tree against merge base with main (")
    assert out.endswith("Starts nothing.\n\nPlan: 0 to create, 0 to rerun, 0 to update, 0 to delete, 3 unchanged.\n")
    p = plan_json(capsys)
    assert [(j["job"], j["action"], j["old_name"], j["new_name"]) for j in p["jobs"]] == [
        (job, "unchanged", name, name) for job, name in sorted(PINNED.items(), key=lambda kv: kv[0])]
    assert p["base"]["rendered"] is True and p["base"]["commit"] == git(repo.path, "rev-parse", "HEAD")
    assert p["totals"] == {"jobs": 0, "replicas": 0, "gpus": 0, "gpu_resources": {}, "cpu": "0", "memory": "0"}


def test_every_action(repo, capsys):
    repo.edit("specs/mnist.yaml", "learning_rate: 0.01", "learning_rate: 0.02")  # rerun
    repo.move("specs/income.yaml", "specs/tabular/income.yaml")  # update: moved
    (repo.path / "specs" / "pytorch-dist.yaml").unlink()  # delete
    repo.write("specs/gpu.yaml", (REPO / "specs" / "mnist-gpu.yaml").read_text())  # create
    p = plan_json(capsys)
    jobs = by_job(p)
    assert [j["action"] for j in p["jobs"]] == ["create", "rerun", "update", "delete"]

    new_mnist = name_of(repo.path / "specs" / "mnist.yaml")
    assert jobs["mnist"] == {
        "job": "mnist", "namespace": "kubeflow", "action": "rerun",
        "old_name": PINNED["mnist"], "new_name": new_mnist,
        "old_source": "specs/mnist.yaml", "new_source": "specs/mnist.yaml",
        "reason": "spec changed",
        "changes": [{"path": "spec.trainer.learning_rate", "old": 0.01, "new": 0.02}],
        "requests": {"replicas": 2, "gpus": 0, "gpu_resources": {}, "cpu": "2", "memory": "4Gi"},
        "warnings": [f"prunes {PINNED['mnist']} even if it is still running: a training run in progress stops"],
    }
    assert new_mnist != PINNED["mnist"]
    income = jobs["income"]
    assert (income["old_name"], income["new_name"]) == (PINNED["income"], PINNED["income"])
    assert (income["old_source"], income["new_source"]) == ("specs/income.yaml", "specs/tabular/income.yaml")
    assert income["changes"] == [] and income["requests"] is None and income["warnings"] == []
    assert "only the specc.dev/source annotation changes" in income["reason"]
    assert jobs["pytorch-dist"]["old_name"] == PINNED["pytorch-dist"] and jobs["pytorch-dist"]["new_name"] is None
    assert jobs["pytorch-dist"]["reason"] == "spec removed" and "prunes pytorch-dist-5df0b522" in jobs["pytorch-dist"]["warnings"][0]
    gpu = jobs["mnist-gpu"]
    assert (gpu["old_name"], gpu["new_name"], gpu["reason"]) == (None, name_of(repo.path / "specs" / "gpu.yaml"), "new spec")
    assert p["counts"] == {"create": 1, "rerun": 1, "update": 1, "delete": 1, "unchanged": 0}

    rc, out, _ = plan(capsys)
    assert rc == 0
    assert f"rerun   kubeflow/mnist         {PINNED['mnist']} -> {new_mnist}\n" in out
    assert "          spec.trainer.learning_rate: 0.01 -> 0.02\n" in out
    assert "moved: specs/income.yaml -> specs/tabular/income.yaml" in out
    assert out.endswith("Plan: 1 to create, 1 to rerun, 1 to update, 1 to delete, 0 unchanged.\n")


def test_moved_spec_without_rendered_folder_is_an_update_and_an_unmoved_one_unchanged(repo, capsys):
    git(repo.path, "rm", "-r", "-q", "rendered")
    repo.commit("no rendered/")
    repo.move("specs/income.yaml", "specs/income-moved.yaml")
    p = plan_json(capsys)
    assert p["base"]["rendered"] is False
    assert {j["job"]: j["action"] for j in p["jobs"]} == {"income": "update", "mnist": "unchanged", "pytorch-dist": "unchanged"}
    rc, out, _ = plan(capsys)
    assert "(no rendered/ there: compared with what its specs render to)" in out.splitlines()[0]


def test_first_specs_are_all_created_and_a_removed_folder_all_deleted(repo, capsys):
    git(repo.path, "checkout", "-q", "--orphan", "empty")
    git(repo.path, "rm", "-r", "-q", "--cached", ".")
    git(repo.path, "commit", "-q", "--allow-empty", "-m", "empty")
    p = plan_json(capsys, "--base", "empty")
    assert {j["job"]: j["action"] for j in p["jobs"]} == {j: "create" for j in PINNED}
    assert p["base"]["rendered"] is False and p["totals"]["jobs"] == 3
    shutil.rmtree(repo.path / "specs")
    p = plan_json(capsys, "--base", "main")
    assert {j["job"]: j["action"] for j in p["jobs"]} == {j: "delete" for j in PINNED}


def test_rendered_folder_elsewhere(repo, capsys):
    (repo.path / "rendered").rename(repo.path / "deploy")
    repo.commit("rendered/ is deploy/")
    assert plan_json(capsys)["base"]["rendered"] is False
    p = plan_json(capsys, "--rendered", "deploy")
    assert p["base"]["rendered"] is True and {j["action"] for j in p["jobs"]} == {"unchanged"}


def test_named_spec_files_plan_only_their_jobs(repo, capsys):
    (repo.path / "specs" / "income.yaml").unlink()
    repo.edit("specs/mnist.yaml", "batch_size: 150", "batch_size: 100")
    p = plan_json(capsys, "specs/mnist.yaml")
    assert [(j["job"], j["action"]) for j in p["jobs"]] == [("mnist", "rerun")]  # income's deletion is not asked about
    p = plan_json(capsys, "specs/income.yaml")
    assert [(j["job"], j["action"]) for j in p["jobs"]] == [("income", "delete")]


def test_field_changes_are_dotted_paths_with_both_values(repo, capsys):
    repo.edit("specs/pytorch-dist.yaml", "count: 3", "count: 4")
    repo.edit("specs/mnist.yaml", "      resources: {cpu: \"1\", memory: 2Gi}\n", "")
    repo.edit("specs/mnist.yaml", "  volumes:\n", "  env:\n    MODE: fast\n  volumes:\n")
    jobs = by_job(plan_json(capsys))
    assert jobs["pytorch-dist"]["changes"] == [{"path": "spec.replicas.Worker.count", "old": 3, "new": 4}]
    assert jobs["mnist"]["changes"] == [
        {"path": "spec.replicas.Worker.resources.cpu", "old": "1", "new": None},
        {"path": "spec.replicas.Worker.resources.memory", "old": "2Gi", "new": None},
        {"path": "spec.replicas.Worker.resources.gpus", "old": 0, "new": None},
        {"path": "spec.env.MODE", "old": None, "new": "fast"},
    ]
    rc, out, _ = plan(capsys)
    assert '    spec.replicas.Worker.resources.cpu: "1" -> (not set)\n' in out
    assert '    spec.env.MODE: (not set) -> "fast"\n' in out


def test_fixed_naming_updates_in_place_and_warns(repo, capsys):
    repo.edit("specs/mnist.yaml", "  framework: tensorflow\n", "  framework: tensorflow\n  naming: fixed\n")
    repo.render()
    repo.commit("fixed")
    repo.edit("specs/mnist.yaml", "learning_rate: 0.01", "learning_rate: 0.03")
    jobs = by_job(plan_json(capsys))
    m = jobs["mnist"]
    assert (m["action"], m["old_name"], m["new_name"]) == ("update", "mnist", "mnist")
    assert m["changes"] == [{"path": "spec.trainer.learning_rate", "old": 0.01, "new": 0.03}]
    assert m["requests"] is None
    assert m["warnings"] == ["naming: fixed keeps the name mnist: if it has finished, this change never runs (the operator "
                             "does not re-run a finished job), and running pods keep their old settings"]


def test_immutable_field_under_fixed_naming_warns_that_the_sync_fails(repo, capsys):
    repo.edit("specs/income.yaml", "  framework: sklearn\n", "  framework: sklearn\n  naming: fixed\n")
    repo.edit("specs/mnist.yaml", "  runPolicy:\n", "  naming: fixed\n  runPolicy:\n    schedulingPolicy: {queue: a}\n")
    repo.render()
    repo.commit("fixed")
    repo.edit("specs/income.yaml", "n_estimators: 50", "n_estimators: 60")  # ConfigMap only: allowed
    jobs = by_job(plan_json(capsys))
    assert jobs["income"]["action"] == "update" and len(jobs["income"]["warnings"]) == 1
    repo.edit("specs/income.yaml", 'cpu: "2"', 'cpu: "3"')  # the Job's pod template
    repo.edit("specs/mnist.yaml", "{queue: a}", "{queue: b}")
    jobs = by_job(plan_json(capsys))
    assert jobs["income"]["warnings"][1] == (
        "changes spec.template of Job income, which Kubernetes does not allow to change: the sync fails "
        "(field is immutable); use naming: hashed, or delete the job first")
    assert "changes spec.runPolicy.schedulingPolicy.queue of TFJob mnist" in jobs["mnist"]["warnings"][1]


def test_immutable_fields_of_a_trainjob_kind_once_it_exists(monkeypatch):
    """The TrainJob kind module declares its immutable fields; plan reads them through compiler.kinds."""
    from types import SimpleNamespace

    from compiler import kinds

    fake = SimpleNamespace(KIND="TrainJob", IMMUTABLE_FIELDS=("spec.runtimeRef", "spec.trainer"))
    monkeypatch.setitem(kinds._BY_KIND, "TrainJob", fake)

    def trainjob(image: str, deadline: int) -> dict:
        return {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
                "metadata": {"name": "llm", "namespace": "ml"},
                "spec": {"runtimeRef": {"name": "torch-distributed"}, "suspend": False, "activeDeadlineSeconds": deadline,
                         "trainer": {"image": image, "numNodes": 2}}}

    unit = SimpleNamespace(job=SimpleNamespace(spec=SimpleNamespace(naming="fixed")))
    e = compare.Entry("llm", "ml", "", "llm", "llm", None, None, "")
    compare._decide(e, compare._Job([trainjob("a:1", 60)]), compare._Job([trainjob("a:2", 60)]),
                    compare._Job([trainjob("a:1", 60)]), unit, "rendered/")
    assert e.action == "update"
    assert any(w.startswith("changes spec.trainer of TrainJob llm") for w in e.warnings)
    e = compare.Entry("llm", "ml", "", "llm", "llm", None, None, "")
    compare._decide(e, compare._Job([trainjob("a:1", 60)]), compare._Job([trainjob("a:1", 90)]),
                    compare._Job([trainjob("a:1", 60)]), unit, "rendered/")
    assert e.action == "update" and not any("immutable" in w for w in e.warnings)


def test_specc_upgrade_that_renames_jobs_shows_reruns(repo, capsys, monkeypatch):
    """rendered/ committed by a specc whose hash format differed: same specs, new names -> re-runs."""
    monkeypatch.setattr(naming, "FORMAT_VERSION", "0")
    monkeypatch.setenv("SPECC_NO_CACHE", "1")  # the render cache knows specc's code, not this patch
    repo.render()
    old = {f.name: next(f.glob("*job.yaml")).read_text() for f in (repo.path / "rendered").iterdir() if f.is_dir()}
    repo.commit("rendered by an older specc")
    monkeypatch.undo()
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(repo.path)
    assert all(PINNED[job] not in text for job, text in old.items())
    p = plan_json(capsys)
    assert {j["job"]: (j["action"], j["new_name"]) for j in p["jobs"]} == {j: ("rerun", n) for j, n in PINNED.items()}
    for j in p["jobs"]:
        assert j["changes"] == [] and j["reason"] == "same spec, but this specc renders it differently from the base's rendered/"
    assert p["warnings"][-1] == {
        "job": None, "namespace": None,
        "message": "3 jobs at the base render differently with this specc than in the base's rendered/ (made by another "
                   "specc version, or stale); the plan compares with the base's rendered/, which is what Argo CD applied"}
    assert p["totals"]["jobs"] == 3


def test_base_dir_compares_with_another_checkout(repo, capsys, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(repo.path, other, ignore=shutil.ignore_patterns(".git"))
    repo.edit("specs/mnist.yaml", "batch_size: 150", "batch_size: 100")
    p = plan_json(capsys, "--base-dir", str(other))
    assert p["base"] == {"label": str(other), "ref": None, "commit": None, "dir": str(other), "rendered": True}
    assert {j["job"]: j["action"] for j in p["jobs"]} == {"income": "unchanged", "mnist": "rerun", "pytorch-dist": "unchanged"}
    (other / "specs" / "bad.yaml").write_text("apiVersion: specc.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: Bad}\n")
    rc, out, err = plan(capsys, "--base-dir", str(other))
    assert rc == 2 and out == ""
    assert err.startswith(f"{other}/specs/bad.yaml:1:1: spec: missing required field") and "got 'Bad'" in err


def test_default_base_is_the_merge_base_with_origin_main_else_main(repo, capsys):
    base = git(repo.path, "rev-parse", "HEAD")
    git(repo.path, "checkout", "-q", "-b", "feature")
    repo.edit("specs/mnist.yaml", "batch_size: 150", "batch_size: 120")
    repo.commit("feature")
    git(repo.path, "checkout", "-q", "main")
    repo.edit("specs/income.yaml", "n_estimators: 50", "n_estimators: 70")  # main moves on: not this branch's change
    repo.render()
    repo.commit("main moves on")
    git(repo.path, "checkout", "-q", "feature")
    p = plan_json(capsys)
    assert p["base"]["commit"] == base and p["base"]["label"] == f"merge base with main ({base[:12]})"
    assert {j["job"]: j["action"] for j in p["jobs"]} == {"income": "unchanged", "mnist": "rerun", "pytorch-dist": "unchanged"}
    # origin/main wins over main when both exist.
    git(repo.path, "update-ref", "refs/remotes/origin/main", "main")
    p = plan_json(capsys)
    assert p["base"]["commit"] == base and p["base"]["label"].startswith("merge base with origin/main (")
    # An explicit --base is taken as it is: main's own change then shows as a revert.
    p = plan_json(capsys, "--base", "main")
    assert p["base"]["ref"] == "main"
    assert {j["job"]: j["action"] for j in p["jobs"]} == {"income": "rerun", "mnist": "rerun", "pytorch-dist": "unchanged"}


def test_plan_from_a_subfolder_names_files_as_the_working_tree(repo, capsys, monkeypatch):
    (repo.path / "sub").mkdir()
    monkeypatch.chdir(repo.path / "sub")
    p = plan_json(capsys, "../specs", "--rendered", "../rendered")
    assert {j["action"] for j in p["jobs"]} == {"update"}  # sources read ../specs/... now, as a render from here
    assert by_job(p)["mnist"]["new_source"] == "../specs/mnist.yaml"
    assert by_job(p)["mnist"]["old_source"] == "specs/mnist.yaml"


def test_symlinked_spec_in_the_base_is_followed(repo, capsys):
    (repo.path / "specs" / "income.yaml").rename(repo.path / "income-real.yaml")
    (repo.path / "specs" / "income.yaml").symlink_to("../income-real.yaml")
    repo.commit("symlink")
    p = plan_json(capsys)
    assert {j["job"]: j["action"] for j in p["jobs"]}["income"] == "unchanged"


def test_working_tree_reads_each_folders_defaults_once(repo):
    """Every spec of a folder shares its `.specc.yaml` answer (as a render does): one read per folder."""
    repo.write("specs/.specc.yaml", "target: trainjob\n")
    side = sides.working_tree(["specs"])
    first = side.defaults("specs/mnist.yaml")
    (repo.path / "specs" / ".specc.yaml").unlink()
    assert side.defaults("specs/income.yaml") == first == ("specs/.specc.yaml", b"target: trainjob\n")
    assert sides.working_tree(["specs"]).defaults("specs/income.yaml") is None  # a new plan reads again


def test_base_from_git_is_read_with_one_ls_tree_and_one_cat_file(repo, monkeypatch):
    """Every named path and rendered/ in one listing; the specs, the `.specc.yaml` files above
    them and the rendered files in one `git cat-file`; `rev-parse --show-prefix` is the repository check."""
    repo.write("specs/.specc.yaml", "target: v1\n")
    repo.move("specs/income.yaml", "specs/team/deep/income.yaml")
    repo.commit("nested")
    calls = []
    real = sides._git

    def counting(*args, stdin=None):
        calls.append(" ".join(args[:2]) if args[0] == "rev-parse" else args[0])
        return real(*args, stdin=stdin)

    monkeypatch.setattr(sides, "_git", counting)
    side = sides.commit("main", ["specs", "nowhere", "specs/mnist.yaml", "gone"], "rendered")
    assert side.missing == ["nowhere", "gone"] and not side.diags
    assert [n for n, _ in side.specs] == ["specs/mnist.yaml", "specs/pytorch-dist.yaml", "specs/team/deep/income.yaml"]
    assert side.specs[0][1] == (repo.path / "specs" / "mnist.yaml").read_bytes()
    on_disk = {f"{f.parent.name}/{f.name}": f.read_bytes() for f in (repo.path / "rendered").glob("*/*.yaml")}
    assert side.rendered == on_disk and len(on_disk) > 3
    assert side.defaults("specs/team/deep/income.yaml") == side.defaults("specs/mnist.yaml") == (
        "specs/.specc.yaml", b"target: v1\n")
    assert calls == ["rev-parse --show-prefix", "rev-parse --verify", "ls-tree", "cat-file"]


# ----------------------------------------------------------------------------- credentials, totals


SECRET = "hunter2hunter2"


def test_credentials_are_never_printed(repo, capsys):
    repo.edit("specs/mnist.yaml", "  volumes:\n",
              f"  env:\n    DB_URL: postgres://trainer:{SECRET}@db:5432/runs\n    LOG: info\n  volumes:\n")
    repo.edit("specs/mnist.yaml", "  namespace: kubeflow\n",
              "  namespace: kubeflow\n  annotations:\n    example.com/hub: hf_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
              "    example.com/api-token: none\n")
    # Validation refuses literal credentials; masking matters for findings accepted as false positives.
    repo.edit("specs/mnist.yaml", "  volumes:\n", "  lint:\n    allow:\n"
              "      - {rule: literal-credential, at: 'metadata.annotations[\"example.com/hub\"]'}\n"
              "      - {rule: literal-credential, at: 'metadata.annotations[\"example.com/api-token\"]'}\n"
              "      - {rule: literal-credential, at: spec.env.DB_URL}\n  volumes:\n")
    repo.render()
    repo.commit("secrets")
    repo.edit("specs/mnist.yaml", SECRET, SECRET + "2")
    repo.edit("specs/mnist.yaml", "hf_aaaa", "hf_bbbb")
    repo.edit("specs/mnist.yaml", "api-token: none", "api-token: n0ne")
    repo.edit("specs/mnist.yaml", "LOG: info", "LOG: debug")
    outputs = [plan(capsys, "--format", f)[1] for f in ("text", "markdown", "json")]
    for out in outputs:
        assert SECRET not in out and "hf_" not in out and "trainer:" not in out and "n0ne" not in out
        assert "***" in out
    jobs = by_job(json.loads(outputs[2]))
    assert jobs["mnist"]["changes"] == [
        {"path": 'metadata.annotations["example.com/hub"]', "old": "***", "new": "***"},
        {"path": 'metadata.annotations["example.com/api-token"]', "old": "***", "new": "***"},
        {"path": "spec.env.DB_URL", "old": "***", "new": "***"},
        {"path": "spec.env.LOG", "old": "info", "new": "debug"},
    ]


def test_totals_sum_the_requests_of_created_and_rerun_jobs(repo, capsys):
    repo.write("specs/big.yaml", """\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata: {name: big, namespace: ml}
spec:
  framework: pytorch
  container: {image: "registry.example.com/train:1", command: [python, train.py]}
  replicas:
    Master: {count: 1, resources: {cpu: 500m, memory: 512Mi, gpus: 1}}
    Worker: {count: 3, resources: {cpu: "1.5", memory: 1Gi, memoryLimit: 2Gi, gpus: 2}}
""")
    repo.edit("specs/income.yaml", "n_estimators: 50", "n_estimators: 51")  # rerun: 1 pod, cpu 2, memory 4Gi
    repo.edit("specs/mnist.yaml", "learning_rate: 0.01", "learning_rate: 0.5")  # rerun: 2 pods, cpu 1, memory 2Gi each
    p = plan_json(capsys)
    assert by_job(p)["big"]["requests"] == {"replicas": 4, "gpus": 7, "gpu_resources": {"nvidia.com/gpu": 7},
                                            "cpu": "5", "memory": "3584Mi"}
    assert p["totals"] == {"jobs": 3, "replicas": 7, "gpus": 7, "gpu_resources": {"nvidia.com/gpu": 7},
                           "cpu": "9", "memory": "11776Mi"}
    rc, out, _ = plan(capsys)
    assert "Starts 3 jobs: 7 replicas, 7 GPUs (nvidia.com/gpu), 9 CPU, 11776Mi memory requested.\n" in out
    rc, out, _ = plan(capsys, "--format", "markdown")
    assert "| 3 | 7 | 7 \\(nvidia.com/gpu\\) | 9 | 11776Mi |\n" in out


# ----------------------------------------------------------------------------- errors, gating, no writes


def test_invalid_specs_on_either_side_are_located(repo, capsys):
    bad = "apiVersion: specc.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: bad}\nspec:\n  framework: tensorflow\n  replicas: {Worker: 0}\n"
    repo.write("specs/bad.yaml", bad)
    repo.commit("bad spec on main")
    rc, out, err = plan(capsys, "--base", "main")
    assert rc == 2 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith("specs/bad.yaml:6:22: spec.replicas.Worker:")  # the working tree's copy
    assert lines[1].startswith("main:specs/bad.yaml:6:22: spec.replicas.Worker:")  # the base's
    assert lines[-1] == "specc: 2 errors"


def test_usage_errors(repo, capsys, tmp_path, monkeypatch):
    rc, _, err = plan(capsys, "--base", "no-such-branch")
    assert rc == 2 and err == "specc: error: --base no-such-branch: no such commit, branch or tag\n"
    rc, _, err = plan(capsys, "nowhere")
    assert rc == 2 and "nowhere:1:1: not found in the working tree nor at merge base with main" in err
    rc, _, err = plan(capsys, "--base-dir", str(tmp_path / "missing"))
    assert rc == 2 and "not a folder" in err
    with pytest.raises(SystemExit) as exc:
        main(["plan", "--fail-on", "rerun,explode"])
    assert exc.value.code == 2
    assert "name actions from create, rerun, update, delete" in capsys.readouterr().err
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    rc, _, err = plan(capsys)
    assert rc == 2 and "not in a git repository" in err
    git(outside, "init", "-q", "-b", "trunk")
    (outside / "x").write_text("x")
    git(outside, "add", "x")
    git(outside, "commit", "-q", "-m", "x")
    rc, _, err = plan(capsys)
    assert rc == 2 and "no base to compare with" in err


def test_fail_on_gates_actions_with_exit_1(repo, capsys):
    assert plan(capsys, "--fail-on", "rerun,delete")[0] == 0
    (repo.path / "specs" / "pytorch-dist.yaml").unlink()
    rc, out, err = plan(capsys, "--fail-on", "rerun,delete")
    assert rc == 1 and "1 to delete" in out
    assert err == "specc plan: 1 to delete (--fail-on rerun,delete)\n"
    assert plan(capsys, "--fail-on", "create")[0] == 0


def test_plan_writes_nothing(repo, capsys):
    repo.edit("specs/mnist.yaml", "learning_rate: 0.01", "learning_rate: 0.02")

    def snapshot() -> dict:
        return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in repo.path.rglob("*") if p.is_file()}

    before = snapshot()
    for fmt in ("text", "markdown", "json"):
        assert plan(capsys, "--format", fmt)[0] == 0
    assert snapshot() == before


# ----------------------------------------------------------------------------- quantities, requests


@pytest.mark.parametrize("text, value", [
    ("500m", Fraction(1, 2)), ("2", Fraction(2)), ("1.5", Fraction(3, 2)), ("4Gi", Fraction(4 << 30)),
    ("512Mi", Fraction(512 << 20)), ("1e3", Fraction(1000)), ("1E3", Fraction(1000)), ("2.5e-3", Fraction(1, 400)),
    ("1E", Fraction(10 ** 18)), ("3k", Fraction(3000)), (".5", Fraction(1, 2)), ("5.", Fraction(5)),
    ("-1", Fraction(-1)), ("+1M", Fraction(10 ** 6)), ("100n", Fraction(1, 10 ** 7)), ("1Ki", Fraction(1024)), (7, Fraction(7)),
])
def test_quantities(text, value):
    assert quantity.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1.2.3", "1gi", "1 Gi", "1e", "1e3.5", "1Kib", "0x10", "1e999", True, None, 1.5])
def test_not_quantities(text):
    with pytest.raises(ValueError):
        quantity.parse_quantity(text)


@given(st.integers(min_value=0, max_value=1 << 70))
def test_memory_format_is_exact(n):
    assert quantity.parse_quantity(quantity.format_memory(Fraction(n))) == n


@given(st.integers(min_value=-10 ** 12, max_value=10 ** 12), st.integers(min_value=0, max_value=12))
def test_cpu_format_is_exact(units, places):
    value = Fraction(units, 10 ** places)
    assert quantity.parse_quantity(quantity.format_cpu(value)) == value


def test_memory_format_prefers_the_largest_exact_suffix():
    assert [quantity.format_memory(Fraction(n)) for n in (0, 1000, 1024, 3 * 10 ** 9, (5 << 29), 1536870912)] == [
        "0", "1k", "1Ki", "3G", "2560Mi", "1536870912"]
    assert quantity.approx_memory(Fraction(1536870912)) == "~1.43Gi"


def test_requests_of_a_trainjob_and_of_pods_with_init_containers():
    tj = {"kind": "TrainJob", "spec": {"trainer": {"numNodes": 4, "resourcesPerNode": {
        "requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"nvidia.com/gpu": "1", "amd.com/gpu": 1}}}}}
    r = requests.workload(tj)
    assert (r.replicas, r.cpu, r.memory, r.gpus) == (4, 8, 32 << 30, {"amd.com/gpu": 4, "nvidia.com/gpu": 4})
    assert requests.workload({"kind": "TrainJob", "spec": {"trainer": {}}}).replicas == 1
    job = {"kind": "Job", "spec": {"parallelism": 2, "template": {"spec": {
        "initContainers": [
            {"name": "fetch", "resources": {"requests": {"cpu": "4", "memory": "1Gi"}}},
            {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
        ],
        "containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "2Gi"}}},
                       {"name": "b", "resources": {"requests": {"cpu": "250m", "memory": "nonsense"}}}],
    }}}}
    r = requests.workload(job)
    # per pod: init peak cpu 4 > 1.25 + 0.1 running; memory max(1Gi, 2Gi) = 2Gi; two pods.
    assert (r.replicas, r.cpu, r.memory) == (2, 8, 4 << 30)
    assert r.unreadable == ["Job spec.template.spec.containers[1].memory: 'nonsense'"]


# ----------------------------------------------------------------------------- changes, masking


def test_diff_lists_leaves_in_document_order():
    old = {"spec": {"a": 1, "vols": [{"n": "x", "ro": True}], "args": ["--x", "1"], "m": {"k": "v"}}}
    new = {"spec": {"a": 2, "vols": [{"n": "y", "ro": True}], "args": ["--x", "2", "--y"], "z": True}}
    assert changes.diff(old, new) == [
        changes.Change("spec.a", 1, 2),
        changes.Change("spec.vols[0].n", "x", "y"),
        changes.Change("spec.args", ["--x", "1"], ["--x", "2", "--y"]),
        changes.Change("spec.m.k", "v", changes.ABSENT),
        changes.Change("spec.z", changes.ABSENT, True),
    ]
    assert changes.diff({"a": 1}, {"a": 1.0}) == [changes.Change("a", 1, 1.0)]  # 1 and 1.0 render differently


@pytest.mark.parametrize("loc, value, masked", [
    (("spec", "env", "API_TOKEN"), "abc", "***"),
    (("spec", "env", "dbPassword"), {"x": 1}, "***"),
    (("metadata", "annotations", "example.com/signing-key"), "k", "***"),
    (("spec", "env", "CACHE_KEY"), "users", "users"),  # a key-ish name with a word: kept
    (("spec", "env", "CACHE_KEY"), "q8Zr2LmP0xT4vB7nK1sW", "***"),  # ...with a random-looking value: masked
    (("spec", "trainer", "max_tokens"), 512, 512),
    (("spec", "storage", "credentials", "secretName"), "minio-credentials", "minio-credentials"),
    (("spec", "env", "HF_TOKEN", "secretKeyRef", "name"), "hf", "hf"),
    (("spec", "image"), "https://user:pa55word@registry.example.com/x", "***"),
    (("spec", "container", "args"), ["--password", "pw", "--epochs", "3"], ["--password", "***", "--epochs", "3"]),
    (("spec", "container", "args"), ["--token=ghp_" + "a" * 36], ["***"]),
    (("spec", "container", "args"), ["--db-pass=abc", "--password", "/run/pw"], ["***", "--password", "***"]),
    (("metadata", "annotations", "secretName"), "x", "***"),  # an annotation named like a credential, not a reference
    (("spec", "podTemplate", "spec", "containers"), [{"name": "t", "env": [{"name": "DB_PASSWORD", "value": "pw"}]}],
     [{"name": "t", "env": [{"name": "DB_PASSWORD", "value": "***"}]}]),
])
def test_mask(loc, value, masked):
    assert changes.mask(loc, value) == masked


def test_diff_masks_a_kubernetes_env_list_value_by_its_items_name():
    old = {"env": [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "LOG", "value": "info"}]}
    new = {"env": [{"name": "DB_PASSWORD", "value": "hunter3"}, {"name": "LOG", "value": "debug"}]}
    assert changes.diff(old, new) == [changes.Change("env[0].value", "***", "***"), changes.Change("env[1].value", "info", "debug")]


# Spec-like documents: the places the literal-credential rule looks (env and annotations maps,
# Kubernetes env lists, args and command), under keys that name credentials, key-ish keys and the
# keys of Secret references, holding credential-looking and harmless values.
_NAMES = st.sampled_from(["DB_PASSWORD", "API_KEY", "CACHE_KEY", "LOG", "secretName", "secretKeyRef", "value",
                          "example.com/api-token", "name", "storage"])
_VALUES = st.sampled_from(["hunter2", "q8Zr2LmP0xT4vB7nK1sW", "$(DB_PW)", "/run/pw", "", "info", "-v",
                           "--password", "--db-pass", "--password=hunter2", "--db-pass=abc", "--api-key=$(K)",
                           "postgres://u:pw@db/x", "ghp_" + "a" * 36])
_LEAF = _VALUES | st.lists(_VALUES, max_size=4)
_ENV_LIST = st.lists(st.fixed_dictionaries({"name": _NAMES, "value": _VALUES}), max_size=3)
_NODE = st.recursive(
    _LEAF,
    lambda inner: st.dictionaries(_NAMES | st.sampled_from(["env", "annotations", "args", "command", "containers"]),
                                  inner | _ENV_LIST, max_size=4) | st.lists(inner, max_size=2),
    max_leaves=12)


def _leaves(loc: tuple, v):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _leaves((*loc, k), x)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _leaves((*loc, i), x)
    else:
        yield loc, v


@settings(max_examples=400, deadline=None)
@given(_NODE, _NODE)
def test_plan_masks_everything_the_credential_rule_flags(spec, other):
    """Whatever the literal-credential rule flags in a spec (compiler/credentials.py), plan's mask
    hides: in the whole document, and in every change a diff against another document shows."""
    from unittest import mock

    from compiler import credentials

    doc, other = {"spec": spec}, {"spec": other}
    secrets = set()  # (location, value) of every finding on either side
    for d in (doc, other):
        flagged = {loc for loc, _ in credentials.findings(d)}
        secrets |= {(loc, v) for loc, v in _leaves((), d) if loc in flagged}
        masked = dict(_leaves((), changes.mask((), d)))
        for loc in flagged:
            assert any(masked.get(loc[:n]) == changes.MASK for n in range(1, len(loc) + 1)), (loc, masked)
    shown, depth = [], []
    real = changes.mask

    def recording(loc, value, parent=None):  # what diff shows: the outermost calls' answers
        depth.append(loc)
        try:
            out = real(loc, value, parent)
        finally:
            depth.pop()
        if not depth:
            shown.extend(_leaves(loc, out))
        return out

    with mock.patch.object(changes, "mask", recording):
        changes.diff(other, doc)
        changes.diff(doc, other)
    assert not secrets & set(shown)


def test_display_shows_hidden_characters():
    assert changes.value("a\nb\u202ec\u200b\x1b") == '"a\\nb\\u202ec\\u200b\\u001b"'
    assert changes.text("x\u2028y\ttab\U000e0041") == "x\\u2028y\\x09tab\\U000e0041"
    assert changes.value("x" * 300).endswith("... (102 more characters)")
    assert (changes.value(changes.ABSENT), changes.value(changes.MASK), changes.value([1, "a"])) == ("(not set)", "***", '[1, "a"]')


# ----------------------------------------------------------------------------- Markdown escaping

HOSTILE = [
    "|", "a|b", "\\|", "`", "``x``", "` x `", "*bold*", "_it_", "~~s~~", "[l](http://e.x)", "![i](x)", "<b>", "<!-- c -->",
    "&amp;", "&#64;", "@octocat", "@org/team", "me@example.com", "#123", "GH-45", "org/repo#1", "www.evil.example",
    "https://evil.example/x", "mailto:a@b.co", "$x^2$", "# heading", "- item", "1. item", "> quote", "    code",
    "line\nbreak", "\r\n", "\u2028", "\x00", "\x1b[31m", "\u202egnp.exe", "\u200b", "a\\", "\\", "  ", " x ", "",
    "=====", "---", "| --- |", ":smile:", "<https://x.y>", "[^1]", "\\`", "``", "*", "\t",
]
hostile = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40),
                    st.lists(st.sampled_from(HOSTILE), max_size=5).map("".join))


def _md():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").enable("strikethrough")


def _inline(tokens) -> list:
    return [t for t in tokens if t.type == "inline"]


def _after_github(rendered: str) -> None:
    """Nothing GitHub links after Markdown: @mentions, e-mails, #refs, GH-refs, www., scheme://."""
    for pattern in (r"@[A-Za-z0-9]", r"#[0-9]", r"(?i)\bgh-[0-9]", r"(?i)\bwww\.", r"://"):
        assert not re.search(pattern, rendered), (pattern, rendered)


@settings(max_examples=300, deadline=None)
@given(hostile)
def test_markdown_text_renders_as_the_text_and_nothing_else(s):
    md = _md()
    tokens = md.parse(f"x {markdown.text(s, limit=None)}\n")
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    children = tokens[1].children
    assert {c.type for c in children} <= {"text", "text_special"}, children
    rendered = "".join(c.content for c in children)
    _after_github(rendered)
    # (a paragraph or cell drops whitespace at its ends: not part of what a reader sees)
    assert rendered.replace(markdown.ZWSP, "").strip() == ("x " + changes.text(s)).replace(markdown.ZWSP, "").strip()


@settings(max_examples=300, deadline=None)
@given(hostile, hostile)
def test_markdown_table_cells_keep_their_text(a, b):
    md = _md()
    tokens = md.parse(f"| h | i |\n| --- | --- |\n| {markdown.text(a, limit=None)} | {markdown.code(b, table=True, limit=None)} |\n")
    types = [t.type for t in tokens]
    assert types.count("td_open") == 2 and types.count("tr_open") == 2, types
    first, second = _inline(tokens)[2:]
    assert {c.type for c in first.children} <= {"text", "text_special"}
    assert "".join(c.content for c in first.children).replace(markdown.ZWSP, "").strip() == changes.text(a).replace(markdown.ZWSP, "").strip()
    assert [c.type for c in second.children] == ["code_inline"]
    assert second.children[0].content.replace(markdown.ZWSP, "") == (changes.text(b).replace(markdown.ZWSP, "") or " ")


@settings(max_examples=300, deadline=None)
@given(hostile)
def test_markdown_code_span_in_a_list_item(s):
    md = _md()
    tokens = md.parse(f"- x {markdown.code(s, limit=None)}\n- y\n")
    assert [t.type for t in tokens].count("list_item_open") == 2
    children = _inline(tokens)[0].children
    assert [c.type for c in children] == ["text", "code_inline"]
    assert children[1].content.replace(markdown.ZWSP, "") == (changes.text(s).replace(markdown.ZWSP, "") or " ")
    assert not re.search(r"(?<![A-Za-z0-9_`])@[A-Za-z0-9]", children[1].content)


def test_template_refuses_unescaped_values():
    with pytest.raises(TypeError, match="without a Markdown filter"):
        markdown._printable("raw")
    assert markdown._printable(markdown.text("x")) == "x" and markdown._printable(3) == 3


def test_template_ships_with_the_package():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = meta["tool"]["setuptools"]["package-data"]["compiler"]
    assert any((REPO / "compiler").glob(g) and Path(markdown.TEMPLATE).match(g) for g in globs)
    assert "jinja2>=3.1" in meta["project"]["dependencies"]


def test_jinja2_is_imported_only_for_markdown(repo):
    code = ("import sys; from compiler.cli import main; rc = main(['plan', '--format', '{}']); "
            "sys.exit(rc or 10 + ('jinja2' in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for fmt, status in (("json", 10), ("text", 10), ("markdown", 11)):
        r = subprocess.run([sys.executable, "-c", code.format(fmt)], cwd=repo.path, capture_output=True, text=True, env=env)
        assert r.returncode == status, r.stderr


# ----------------------------------------------------------------------------- golden


def golden_repo(root: Path, monkeypatch) -> None:
    """The golden scenario: base/ rendered and committed on main, then head/ as the working tree
    (the working directory)."""
    shutil.copytree(GOLDEN / "base", root)
    monkeypatch.chdir(root)
    git(root, "init", "-q", "-b", "main")
    assert main(["render", "specs", "-o", "rendered", "-q"]) == 0
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    shutil.rmtree(root / "specs")
    shutil.copytree(GOLDEN / "head" / "specs", root / "specs")


@pytest.mark.parametrize("fmt, file", [("markdown", "expected.md"), ("text", "expected.txt"), ("json", "expected.json")])
def test_golden(tmp_path, monkeypatch, capsys, fmt, file):
    """The plan of tests/golden-plan (head/ against base/) in each format (SPECC_UPDATE_GOLDEN=1 rewrites)."""
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    golden_repo(tmp_path / "repo", monkeypatch)
    rc = main(["plan", "--base", "main", "--format", fmt])
    got, err = capsys.readouterr()
    assert rc == 0, err
    expected = GOLDEN / file
    if UPDATE:
        if os.environ.get("CI"):
            pytest.fail("SPECC_UPDATE_GOLDEN is refused in CI")
        expected.write_text(got)
    assert expected.exists(), f"no golden file: run SPECC_UPDATE_GOLDEN=1 pytest {__file__}::test_golden"
    assert got == expected.read_text(), (
        f"plan golden mismatch ({file}); if intended, run: SPECC_UPDATE_GOLDEN=1 pytest tests/test_plan.py -k golden")
