"""The pydantic-free snapshot validator (compiler/fastvalid.py) against pydantic itself.

- the committed snapshot is what compiler/snapshot.py makes of the models now;
- soundness: whatever the walker accepts, pydantic accepts, with the same values, and the
  compiled objects are identical; completeness: every document pydantic accepts, the walker
  accepts too (else renders silently lose their speed);
- a stale or damaged snapshot is ignored (pydantic validates), never trusted;
- a cold `specc render` of the example specs imports no pydantic.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from compiler import fastvalid, snapshot
from compiler.build.configmap import runtime_config
from compiler.build.common import Names
from compiler.compile import compile_job
from compiler.diagnostics import SpecError
from compiler.loader import load_file, load_text
from compiler.spec import TrainingJob
from compiler.validate import validate
from conftest import REPO

EXAMPLES = int(os.environ.get("SPECC_FUZZ_EXAMPLES", "300"))
SPECS = sorted((REPO / "specs").glob("*.yaml")) + sorted((REPO / "tests" / "golden").glob("*/spec.yaml"))
INVALID = sorted((REPO / "tests" / "fixtures" / "invalid").glob("*.yaml"))

# Documents that set (nearly) every field, the base of the mutations below.
RICH_TF = {
    "apiVersion": "specc.dev/v1alpha1", "kind": "TrainingJob",
    "metadata": {"name": "rich", "namespace": "ml", "labels": {"team": "a", "example.com/tier": "x"},
                 "annotations": {"note": "hello\nworld"}},
    "spec": {
        "framework": "tensorflow", "image": "registry.io/team/runtime:v1",
        "trainer": {"name": "recommender", "export_directory": "recs", "model_root": "s3://models/x",
                    "batch_size": 64, "epochs": 3, "validation_split": 0.25, "factors": 50, "dropout": 0.2,
                    "learning_rate": 0.001, "split": "tail", "seed": 7, "checkpoint_uri": "/ckpt"},
        "replicas": {"Chief": 1, "Worker": {"count": 2, "restartPolicy": "ExitCode",
                                            "resources": {"cpu": "1", "memory": "2Gi", "gpus": 1},
                                            "env": {"A": "1", "REF": {"secretKeyRef": {"name": "s", "key": "k", "optional": True}},
                                                    "POD": {"fieldRef": {"fieldPath": "metadata.name"}},
                                                    "CM": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
                                            "args": ["--x", "1"]},
                     "PS": {"count": 1}, "Evaluator": 1},
        "resources": {"cpu": "500m", "memory": "1Gi", "cpuLimit": "2", "memoryLimit": "3Gi"},
        "env": {"GLOBAL": "yes"},
        "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": 3, "activeDeadlineSeconds": 600,
                      "ttlSecondsAfterFinished": 60,
                      "schedulingPolicy": {"minAvailable": 2, "queue": "q", "minResources": {"cpu": "4"},
                                           "priorityClass": "high", "scheduleTimeoutSeconds": 30}},
        "successPolicy": "AllWorkers",
        "volumes": [{"name": "data", "mountPath": "/data", "persistentVolumeClaim": "claim", "readOnly": True},
                    {"name": "scratch", "mountPath": "/scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}],
        "storage": {"endpoint": "http://minio.kubeflow:9000", "region": "eu-west-1",
                    "credentials": {"secretName": "minio", "accessKeyKey": "ak", "secretKeyKey": "sk"}},
        "scheduling": {"nodeSelector": {"pool": "gpu"}, "priorityClassName": "p",
                       "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}],
                       "serviceAccountName": "trainer"},
        "naming": "fixed",
        "lint": {"ignore": ["some-rule"]},
    },
}
RICH_PT = {
    "apiVersion": "specc.dev/v1alpha1", "kind": "TrainingJob",
    "metadata": {"name": "pt"},
    "spec": {
        "framework": "pytorch",
        "trainer": {"name": "mnist", "data_dir": "/data/", "export_uri": None, "learning_rate": 0.01,
                    "batch_size": 150, "max_steps": 100, "dropout": 0.9, "train_rows": 10, "test_rows": 5,
                    "checkpoint_every": 10},
        "replicas": {"Master": 1, "Worker": {"count": 3}},
        "elasticPolicy": {"minReplicas": 1, "maxReplicas": 4, "rdzvBackend": "c10d", "rdzvPort": 29400,
                          "rdzvHost": "h", "rdzvId": "i", "rdzvConf": [{"key": "a", "value": "b"}],
                          "standalone": False, "maxRestarts": 3},
        "nprocPerNode": "auto",
        "scheduling": {"queue": "team-q"},
    },
}
RICH_SK = {
    "apiVersion": "specc.dev/v1alpha1", "kind": "TrainingJob",
    "metadata": {"name": "inc"},
    "spec": {"framework": "sklearn",
             "trainer": {"name": "income", "data_uri": "file:///d/adult.data", "export_uri": "/m/1/", "n_estimators": 10,
                         "n_jobs": 2, "explain": False, "anchor_threshold": 0.9, "explain_rows": [0, 1, 2]}},
}
RICH_CUSTOM = {
    "apiVersion": "specc.dev/v1alpha1", "kind": "TrainingJob",
    "metadata": {"name": "custom"},
    "spec": {"framework": "python", "container": {"image": "python:3.11@sha256:" + "a" * 64, "command": ["python"],
                                                   "args": ["-c", "print(1)"], "workingDir": "/w"},
             "replicas": {"Worker": {"restartPolicy": "Never"}}, "runPolicy": {"backoffLimit": 0, "suspend": True}},
}
BASES = [RICH_TF, RICH_PT, RICH_SK, RICH_CUSTOM]

VALUES = [
    0, 1, -1, 2, 7, 64, 65535, 65536, 2**31, 2**63, 1.0, 0.5, 0.0, -0.0, 1e-9, 1e308, math.inf, -math.inf, math.nan,
    True, False, None, "", "a", "abc", "abc\n", "ABC", "1", "0.5", "true", "s3://bucket/key", "s3://b/k\n", "/abs",
    "/a/../b", "file://x", "http://minio:9000", "Worker", "Master", "tensorflow", "pytorch", "mnist", "income",
    "recommender", "OnFailure", "Always", "1Gi", "100m", "x" * 300, "tab\there", "nul\x00", "日本", [], {}, ["a"],
    [1, 2], {"count": 2}, {"a": 1}, {"name": "mnist"}, {"secretKeyRef": {"name": "s", "key": "k"}},
]

CONFUSIONS = {
    int: [True, False, 1.0, 0.0, "1", None, -1, 0, 10**6, [1]],
    float: [True, 1, 0, "0.5", None, -1.0, 1e6, math.nan, math.inf],
    bool: [1, 0, "true", None, 1.0],
    str: [1, 1.5, True, None, ["a"], {"a": "b"}, "", "A", "a\n", "x" * 5000],
    type(None): [0, "", False, {}, []],
    dict: [[], "a", None, 1, {}],
    list: [{}, "a", None, 1, []],
}


def paths(node, prefix=()):
    """Every (path, value) in a document, containers included."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def at(doc, path):
    for p in path[:-1]:
        doc = doc[p]
    return doc


@st.composite
def mutated(draw):
    """A rich valid document with 0-3 random edits: a value replaced, a key removed or added."""
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(0, 3))):
        path, _value = draw(st.sampled_from([p for p in paths(doc) if p[0]]))
        parent = at(doc, path)
        how = draw(st.sampled_from(["confuse", "confuse", "replace", "replace", "delete", "add"]))
        if how == "confuse":  # a value of a neighbouring type: strictness is where validators differ
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(CONFUSIONS.get(type(_value), VALUES))))
        elif how == "replace":
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(VALUES)))
        elif how == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "count", "name", "cpu", "Worker", "key"]))] = copy.deepcopy(draw(st.sampled_from(VALUES)))
    return doc


def pydantic_result(data):
    try:
        return TrainingJob.model_validate(data)
    except ValidationError:
        return None


def has_nonfinite(node) -> bool:
    return any(isinstance(v, float) and not math.isfinite(v) for _, v in paths(node))


def same_compiled(fast_job, slow_job) -> None:
    from compiler.checks import check

    assert check(fast_job) == check(slow_job)
    if not check(slow_job):
        assert compile_job(fast_job, "s.yaml") == compile_job(slow_job, "s.yaml")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_walker_agrees_with_pydantic(doc):
    fast = fastvalid.validate_spec(doc)
    slow = pydantic_result(doc)
    if fast is not None:
        assert slow is not None, "the walker accepted what pydantic rejects"
        assert fast.model_dump() == slow.model_dump()
        same_compiled(fast, slow)
    elif slow is not None:
        assert has_nonfinite(doc), "pydantic accepted what the walker left to it"


@pytest.mark.parametrize("base", BASES, ids=lambda b: b["metadata"]["name"])
def test_every_single_edit_agrees(base):
    """Exhaustive single edits: every path of a rich document, each confusable value, removal."""
    checked = 0
    for path, value in list(paths(base)):
        if not path:
            continue
        edits = [copy.deepcopy(v) for v in CONFUSIONS.get(type(value), [])] + [_DELETE]
        if isinstance(value, list) and value:  # past every max_length (the largest is 1000)
            edits.append(copy.deepcopy(value * (1100 // len(value) + 1)))
        if isinstance(value, dict) and value:
            k, v = next(iter(value.items()))
            edits.append({**value, **{f"{k}{i}": copy.deepcopy(v) for i in range(300)}})
        for new in edits:
            doc = copy.deepcopy(base)
            parent = at(doc, path)
            if new is _DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = new
            test_walker_agrees_with_pydantic.hypothesis.inner_test(doc)
            checked += 1
    assert checked > 100


_DELETE = object()


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(REPO)))
def test_example_specs_take_the_walker_with_identical_output(path):
    doc = load_file(path)
    fast = fastvalid.validate_spec(doc.data)
    assert fast is not None
    slow = TrainingJob.model_validate(doc.data)
    assert fast.model_dump() == slow.model_dump()
    same_compiled(fast, slow)
    if slow.spec.trainer is not None:
        names = Names.for_job("x")
        assert runtime_config(fast, names).model_dump() == runtime_config(slow, names).model_dump()


@pytest.mark.parametrize("base", BASES, ids=lambda b: b["metadata"]["name"])
def test_rich_documents_take_the_walker(base):
    fast = fastvalid.validate_spec(copy.deepcopy(base))
    slow = TrainingJob.model_validate(copy.deepcopy(base))
    assert fast is not None and fast.model_dump() == slow.model_dump()
    same_compiled(fast, slow)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_fixtures_are_left_to_pydantic(path):
    try:
        doc = load_file(path)
    except SpecError:
        return  # rejected before validation
    assert fastvalid.validate_spec(doc.data) is None
    with pytest.raises(SpecError):
        validate(doc, fast=True)


@pytest.mark.parametrize("name", ["abc\n", "Abc", "a" * 64, "-a", ""])
def test_rust_regex_anchors_kept(name):
    """pydantic-core's `$` does not match before a final newline; the walker's must not either."""
    doc = copy.deepcopy(RICH_CUSTOM)
    doc["metadata"]["name"] = name
    assert pydantic_result(doc) is None
    assert fastvalid.validate_spec(doc) is None


def test_snapshot_is_current():
    """compiler/spec_schema.json is what the models make now (SPECC_UPDATE_GOLDEN=1 rewrites it)."""
    r = subprocess.run([sys.executable, "-m", "compiler.snapshot", "--print"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    if os.environ.get("SPECC_UPDATE_GOLDEN") == "1":
        if os.environ.get("CI"):
            pytest.fail("SPECC_UPDATE_GOLDEN is refused in CI")
        snapshot.SNAPSHOT.write_text(text, encoding="utf-8")
    assert snapshot.SNAPSHOT.read_text(encoding="utf-8") == text, (
        "compiler/spec_schema.json is stale: run python -m compiler.snapshot")
    assert json.loads(text)["sources"] == fastvalid.source_digest()


@pytest.mark.parametrize("damage", ["stale", "garbage", "missing", "unknown-type", "malformed"])
def test_damaged_snapshot_is_ignored(tmp_path, monkeypatch, damage):
    doc = json.loads(snapshot.SNAPSHOT.read_text(encoding="utf-8"))
    target = tmp_path / "spec_schema.json"
    if damage == "stale":
        doc["sources"] = "0" * 64
        target.write_text(json.dumps(doc))
    elif damage == "garbage":
        target.write_text("{not json")
    elif damage == "unknown-type":
        doc["roots"]["TrainingJob"]["schema"]["type"] = "some-new-schema-type"
        target.write_text(json.dumps(doc))
    elif damage == "malformed":  # a model without its class: the walker fails inside, pydantic decides
        del doc["roots"]["TrainingJob"]["schema"]["cls"]
        target.write_text(json.dumps(doc))
    monkeypatch.setattr(fastvalid, "SNAPSHOT", target)
    monkeypatch.setattr(fastvalid, "_validator", False)
    good = load_file(REPO / "specs" / "mnist.yaml")
    assert fastvalid.validate_spec(good.data) is None
    job = validate(good, fast=True)  # pydantic still validates
    assert isinstance(job, TrainingJob)


def test_snapshot_refuses_heavy_validator_functions(monkeypatch):
    """A validator defined next to the models (importing pydantic) cannot go into the snapshot."""
    from runtime import config

    def heavy(v):
        return v

    with pytest.raises(snapshot.SnapshotError, match="top-level function"):
        snapshot._plain({"type": "function-after", "function": {"type": "no-info", "function": heavy}})
    assert config.rules.check_uri is not None


def test_cold_render_imports_no_pydantic(tmp_path):
    code = ("import sys, io, contextlib\nfrom compiler import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    rc = cli.main(['render', 'specs/'])\n"
            "assert rc == 0, rc\nheavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pydantic', 'pydantic_core', 'typing', 'dataclasses', 'argparse', 'hashlib', 'kubernetes', 'tensorflow', 'torch'))\n"
            "print(heavy)\n")
    env = {**os.environ, "SPECC_NO_CACHE": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


def test_invalid_spec_still_gets_pydantic_diagnostics(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "specs" / "mnist.yaml").read_text().replace("framework: tensorflow", "framework: tensorflw"))
    with pytest.raises(SpecError) as info:
        validate(load_file(bad), fast=True)
    assert any(d.field == "spec.framework" and d.line > 1 for d in info.value.diagnostics)


def test_record_dump_matches_pydantic_exclude_none():
    fast = fastvalid.validate_spec(copy.deepcopy(RICH_PT))
    slow = TrainingJob.model_validate(copy.deepcopy(RICH_PT))
    assert fast.spec.elasticPolicy.model_dump(exclude_none=True) == slow.spec.elasticPolicy.model_dump(exclude_none=True)
    assert fast.spec == fast.spec and fast.spec != fast.metadata
    assert "Spec(" in repr(fast.spec)


def test_text_round_trip_through_loader():
    """Documents read from YAML text (ints, floats, bools as the loader makes them) agree too."""
    for base in BASES:
        doc = load_text(json.dumps(base), "x.yaml")
        fast = fastvalid.validate_spec(doc.data)
        assert fast is not None and fast.model_dump() == TrainingJob.model_validate(doc.data).model_dump()


def test_installed_package_carries_a_usable_snapshot(tmp_path):
    """A wheel ships spec_schema.json, and the installed files match its source digest."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(wheel_dir), str(REPO)], capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    wheel = next(wheel_dir.glob("specc-*.whl"))
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                           "--target", str(target), str(wheel)], capture_output=True, text=True, cwd=tmp_path)
    assert inst.returncode == 0, inst.stderr
    code = ("import compiler.fastvalid as f, sys; assert f.__file__.startswith(sys.argv[1]), f.__file__; "
            "print(f.validator() is not None)")
    r = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(target)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"


def test_fastpath_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("SPECC_NO_FASTPATH", "1")
    assert fastvalid.validate_spec(load_file(REPO / "specs" / "mnist.yaml").data) is None


def test_many_specs_through_pydantic_equal_few_through_the_walker(tmp_path, monkeypatch):
    """Above FAST_PATH_MAX_SPECS one render validates with pydantic; the output is the same."""
    from compiler import cli

    monkeypatch.setenv("SPECC_NO_CACHE", "1")
    monkeypatch.setattr(cli, "FAST_PATH_MAX_SPECS", 5)
    examples = sorted((REPO / "specs").glob("*.yaml"))
    n = cli.FAST_PATH_MAX_SPECS + 4
    for i in range(n):
        src = examples[i % len(examples)]
        text = src.read_text()
        name = load_file(src).data["metadata"]["name"]
        new = f"j{i}-{name}"[:22].rstrip("-")
        (tmp_path / f"{i:03d}.yaml").write_text(text.replace(f"name: {name}\n", f"name: {new}\n", 1))
    calls = []
    walk = fastvalid.validate_spec
    monkeypatch.setattr(fastvalid, "validate_spec", lambda data: calls.append(1) or walk(data))
    together, diags = cli.load_jobs([str(tmp_path)])
    assert not diags and len(together) == n
    assert calls == []
    one_by_one = []
    for p in sorted(tmp_path.glob("*.yaml")):
        jobs, diags = cli.load_jobs([str(p)])
        assert not diags
        one_by_one += jobs
    assert len(calls) == n
    assert together == one_by_one


@pytest.mark.parametrize("uri", ["s3://bucket/key\n", "/abs/path\n", "file:///x\n", "s3://bucket/../etc"])
def test_uri_rule_refuses_trailing_newline_and_dotdot(uri):
    from runtime.config import MnistConfig

    with pytest.raises(ValidationError):
        MnistConfig(data_dir=uri)
    doc = copy.deepcopy(RICH_PT)
    doc["spec"]["trainer"]["data_dir"] = uri
    assert fastvalid.validate_spec(doc) is None


@pytest.mark.parametrize("data", [b"", b"specc", bytes(range(256)) * 300])
def test_digest_is_hashlib_sha256(data):
    import hashlib

    from compiler.digest import sha256

    assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("pattern", [r"^[[:alpha:]]+$", r"^\p{L}+$", r"^(?i)abc$", r"^a$|^b$", r"^a\$", r"^abc", r"^[a-$"])
def test_patterns_the_engines_read_differently_are_left_to_pydantic(pattern):
    with pytest.raises(fastvalid.Unfit):
        fastvalid._pattern(pattern)
