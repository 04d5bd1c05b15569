"""Rendering: golden files, CRD / core schema validity, byte stability, CLI behaviour."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compiler.cli import main
from compiler.render import render_stream
from conftest import REPO, compile_specs
from k8s_schemas import validate_object

SPECC = [sys.executable, "-m", "compiler"]
GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "spec.yaml").exists())
UPDATE = os.environ.get("SPECC_UPDATE_GOLDEN") == "1"


def specc(*args, cwd=REPO, env=None):
    return subprocess.run([*SPECC, *args], cwd=cwd, capture_output=True, text=True, env=env)


def render_case(case: str) -> str:
    jobs, diags = compile_specs([str(GOLDEN / case / "spec.yaml")])
    assert not diags, [str(d) for d in diags]
    return render_stream(jobs).replace(str(GOLDEN), "tests/golden")


@pytest.mark.parametrize("case", CASES)
def test_golden(case):
    """Each case's rendered stream equals its expected.yaml (SPECC_UPDATE_GOLDEN=1 rewrites it)."""
    expected = GOLDEN / case / "expected.yaml"
    got = render_case(case)
    if UPDATE:
        if os.environ.get("CI"):
            pytest.fail("SPECC_UPDATE_GOLDEN is refused in CI")
        expected.write_text(got)
    assert expected.exists(), f"no golden file: run SPECC_UPDATE_GOLDEN=1 pytest {__file__}::test_golden"
    want = expected.read_text()
    assert got == want, (
        f"golden mismatch for {case}; if intended, run: SPECC_UPDATE_GOLDEN=1 pytest tests/test_render.py -k {case}"
    )


def test_rendered_folder_is_up_to_date():
    """rendered/ is exactly what `specc render specs -o rendered` produces today."""
    r = specc("render", "specs", "-o", "rendered", "--check")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr


def test_kustomize_builds_rendered():
    r = subprocess.run(["kubectl", "kustomize", "rendered"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(r.stdout))
    assert kinds.count("TFJob") == 4 and kinds.count("PyTorchJob") == 2 and kinds.count("Job") == 1


def _all_objects():
    jobs, diags = compile_specs([str(REPO / "specs")] + [str(GOLDEN / c / "spec.yaml") for c in CASES])
    assert not diags
    return [(cj.spec_name, o) for cj in jobs for o in cj.objects]


@pytest.mark.parametrize("name,obj", _all_objects(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_objects_are_schema_valid(name, obj):
    """The Kubeflow kinds against the v1.9.4 CRDs (schema and CEL rules), Job/ConfigMap against
    Kubernetes 1.32 (strict)."""
    assert validate_object(obj) == []


EVERY_METRIC = """\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata: {name: scaled}
spec:
  framework: pytorch
  container: {image: registry.example.com/ml/train:1.0}
  replicas: {Worker: 2}
  elasticPolicy:
    maxReplicas: 8
    metrics:
      - {type: Resource, resource: {name: cpu, target: {type: AverageValue, averageValue: 1.5}}}
      - type: ContainerResource
        containerResource: {name: memory, container: pytorch, target: {type: Utilization, averageUtilization: 70}}
      - type: Pods
        pods:
          metric:
            name: samples_per_second
            selector: {matchExpressions: [{key: app, operator: In, values: [train]}, {key: canary, operator: DoesNotExist}]}
          target: {type: AverageValue, averageValue: "500"}
      - type: Object
        object:
          describedObject: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: main-route}
          metric: {name: requests-per-second}
          target: {type: Value, value: 10000}
      - type: External
        external:
          metric: {name: queue_messages_ready, selector: {matchLabels: {queue: worker-tasks}}}
          target: {type: AverageValue, averageValue: "30"}
"""


def test_every_metric_source_is_valid_in_the_crd(tmp_path):
    """Each autoscaling/v2 metric source specc accepts renders as the PyTorchJob CRD wants it,
    numbers as quantity strings."""
    spec = tmp_path / "scaled.yaml"
    spec.write_text(EVERY_METRIC)
    (job,), diags = compile_specs([spec])
    assert not diags, [str(d) for d in diags]
    (obj,) = job.objects
    assert [m["type"] for m in obj["spec"]["elasticPolicy"]["metrics"]] == [
        "Resource", "ContainerResource", "Pods", "Object", "External"]
    metrics = obj["spec"]["elasticPolicy"]["metrics"]
    assert metrics[0]["resource"]["target"]["averageValue"] == "1.5" and metrics[3]["object"]["target"]["value"] == "10000"
    assert validate_object(obj) == []


#: The operator's names for each v1 kind (pkg/apis/kubeflow.org/v1/*_types.go of v1.9.4):
#: replica specs key, default container, default port (name, number), replica types.
OPERATOR_NAMES = {
    "TFJob": ("tfReplicaSpecs", "tensorflow", ("tfjob-port", 2222), {"Chief", "Master", "PS", "Worker", "Evaluator"}),
    "PyTorchJob": ("pytorchReplicaSpecs", "pytorch", ("pytorchjob-port", 23456), {"Master", "Worker"}),
    "XGBoostJob": ("xgbReplicaSpecs", "xgboost", ("xgboostjob-port", 9999), {"Master", "Worker"}),
    "JAXJob": ("jaxReplicaSpecs", "jax", ("jaxjob-port", 6666), {"Worker"}),
    "PaddleJob": ("paddleReplicaSpecs", "paddle", ("master", 36543), {"Master", "Worker"}),
}


def test_operator_conventions():
    """Container names, ports, canonical replica types and DNS-safe pod names, for every kind."""
    from compiler.kinds import WORKLOADS, v1

    assert set(OPERATOR_NAMES) == {k.KIND for k in WORKLOADS if k.API_VERSION == v1.API_VERSION}
    seen = set()
    for _, obj in _all_objects():
        kind = obj["kind"]
        if kind not in OPERATOR_NAMES:
            continue
        seen.add(kind)
        key, cname, (pname, port), types = OPERATOR_NAMES[kind]
        for rtype, rs in obj["spec"][key].items():
            c = rs["template"]["spec"]["containers"][0]
            assert c["name"] == cname
            if "ports" in c:
                assert c["ports"][0] == {"containerPort": port, "name": pname}
            assert rtype in types
            for i in range(rs["replicas"]):
                pod = f"{obj['metadata']['name']}-{rtype.lower()}-{i}"
                assert len(pod) <= 63
    assert seen == set(OPERATOR_NAMES)


@pytest.mark.parametrize("kind", sorted(OPERATOR_NAMES))
def test_crd_cel_rules_are_the_immutable_fields(kind):
    """The CRD's CEL rules are evaluated: every one is a transition rule on a field the kind
    lists in IMMUTABLE_FIELDS; a rendered object passes them on create, and an update that
    changes the field is refused with the CRD's message."""
    from compiler.kinds import by_kind
    from k8s_schemas import cel_problems, cel_rules

    rules = cel_rules(kind)
    assert rules and {path for path, _, _ in rules} == set(by_kind(kind).IMMUTABLE_FIELDS)
    assert all(rule == "self == oldSelf" for _, rule, _ in rules)
    obj = {"apiVersion": "kubeflow.org/v1", "kind": kind, "metadata": {"name": "x"},
           "spec": {"runPolicy": {"schedulingPolicy": {"queue": "team-a"}}}}
    moved = {**obj, "spec": {"runPolicy": {"schedulingPolicy": {"queue": "team-b"}}}}
    assert cel_problems(obj) == [] and cel_problems(obj, old=obj) == []
    assert cel_problems(moved, old=obj) == [
        "spec.runPolicy.schedulingPolicy.queue: spec.runPolicy.schedulingPolicy.queue is immutable"]


def test_render_stream_is_byte_stable_across_hash_seeds():
    outs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = specc("render", "specs", env=env)
        assert r.returncode == 0, r.stderr
        outs.add(r.stdout)
    assert len(outs) == 1
    text = outs.pop()
    assert "Generated by specc from specs/mnist.yaml" in text
    docs = list(yaml.safe_load_all(text))
    for d in docs:
        assert list(d)[:3] == ["apiVersion", "kind", "metadata"]


def test_write_removes_only_stale_generated_files(tmp_path):
    out = tmp_path / "out"
    specs = tmp_path / "specs"
    specs.mkdir()
    for n in ("mnist.yaml", "income.yaml"):
        (specs / n).write_text((REPO / "specs" / n).read_text())
    assert specc("render", str(specs), "-o", str(out)).returncode == 0
    (out / "income" / "notes.yaml").write_text("# mine\nkeep: me\n")
    (out / "README.md").write_text("hand-written\n")
    (specs / "income.yaml").unlink()
    r = specc("render", str(specs), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert not (out / "income" / "job.yaml").exists()
    assert (out / "income" / "notes.yaml").read_text() == "# mine\nkeep: me\n"
    assert (out / "README.md").exists()
    assert (out / "mnist" / "tfjob.yaml").exists()
    kust = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert kust["resources"] == ["mnist"]


def test_check_reports_diff_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    assert specc("render", "specs", "-o", str(out)).returncode == 0
    tf = out / "mnist" / "tfjob.yaml"
    tf.write_text(tf.read_text().replace("replicas: 2", "replicas: 3"))
    before = {p: p.read_bytes() for p in out.rglob("*")  if p.is_file()}
    r = specc("render", "specs", "-o", str(out), "--check")
    assert r.returncode == 1
    assert "-      replicas: 3" in r.stdout and "+      replicas: 2" in r.stdout
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_refuses_to_overwrite_hand_written_file(tmp_path):
    out = tmp_path / "out"
    (out / "mnist").mkdir(parents=True)
    (out / "mnist" / "tfjob.yaml").write_text("mine: true\n")
    r = specc("render", "specs/mnist.yaml", "-o", str(out))
    assert r.returncode == 2
    assert "not generated by specc" in r.stderr and "Traceback" not in r.stderr
    assert (out / "mnist" / "tfjob.yaml").read_text() == "mine: true\n"
    assert not (out / "kustomization.yaml").exists()


@pytest.mark.parametrize("make, words", [
    (lambda p: os.mkfifo(p), "not generated by specc"),
    (lambda p: p.mkdir(), "is a directory where specc writes a file"),
    (lambda p: p.write_bytes(b"# Generated by specc from x. DO NOT EDIT.\n\xff\xfe\n"), "cannot read"),
])
def test_odd_files_where_specc_writes_are_refused_without_blocking(tmp_path, make, words):
    out = tmp_path / "out"
    (out / "mnist").mkdir(parents=True)
    make(out / "mnist" / "tfjob.yaml")
    r = subprocess.run([sys.executable, "-m", "compiler", "render", "specs/mnist.yaml", "-o", str(out)], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (out / "kustomization.yaml").exists()


def test_invalid_spec_writes_nothing(tmp_path):
    out = tmp_path / "out"
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "good.yaml").write_text((REPO / "specs" / "mnist.yaml").read_text())
    (specs / "bad.yaml").write_text((REPO / "specs" / "income.yaml").read_text().replace("n_estimators: 50", "n_estimators: -1"))
    r = specc("render", str(specs), "-o", str(out))
    assert r.returncode == 2
    assert "bad.yaml:14:19: spec.trainer.n_estimators: Input should be greater than or equal to 1" in r.stderr
    assert not out.exists()


def _snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


@contextlib.contextmanager
def _mounted(args: list[str], target: Path):
    """Mount something over target for the test (root only), unmounting afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount")
    r = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount here: {r.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=False)


def test_read_only_output_dir(tmp_path):
    """A read-only DIR (bind-mounted read-only) gives a clear error and changes nothing."""
    out = tmp_path / "out"
    assert specc("render", "specs/mnist.yaml", "-o", str(out)).returncode == 0
    before = _snapshot(out)
    with _mounted(["--bind", str(out)], out):
        subprocess.run(["mount", "-o", "remount,ro,bind", str(out)], check=True)
        r = specc("render", "specs", "-o", str(out))
        assert r.returncode == 2, r.stderr
        assert "read-only file system" in r.stderr and "nothing was changed" in r.stderr
        assert "Traceback" not in r.stderr
        assert _snapshot(out) == before


def test_disk_full_midway_changes_nothing(tmp_path):
    """When writing fails part-way (a tiny tmpfs fills up), DIR is exactly as before."""
    out = tmp_path / "out"
    out.mkdir()
    with _mounted(["-t", "tmpfs", "-o", "size=24k", "tmpfs"], out):
        assert specc("render", "specs/mnist.yaml", "-o", str(out)).returncode == 0
        before = _snapshot(out)
        r = specc("render", "specs", "-o", str(out))
        assert r.returncode == 2, r.stderr
        assert "nothing was changed" in r.stderr
        assert _snapshot(out) == before
        assert not list(out.rglob(".*specc-tmp*"))


def test_schema_command_prints_json_schema():
    import json

    r = specc("schema")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert schema["title"] == "TrainingJob"
    assert "spec" in schema["properties"]


def test_main_returns_exit_codes(capsys):
    assert main(["validate", str(REPO / "specs")]) == 0
    assert main(["validate", str(REPO / "nonexistent.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["render", "specs/mnist.yaml"], ["render", "a.yaml", "b/"], ["render", "x y.yaml"]])
def test_plain_render_arguments_are_what_argparse_parses(argv):
    """`specc render PATH...` skips importing argparse; it must get exactly argparse's answer."""
    from compiler.cli import _plain_render, build_parser

    assert vars(_plain_render(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["render"], ["render", "-o", "d", "x"], ["render", "x", "--check"], ["render", "x", "-q"],
                                  ["validate", "x"], ["render", "--", "x"], ["render", ""], ["--help"]])
def test_other_command_lines_go_through_argparse(argv):
    from compiler.cli import _plain_render

    assert _plain_render(argv) is None
