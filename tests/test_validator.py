"""The one validator: pydantic-core over the models' committed schema snapshot.

- the committed snapshot is the models' schema today; a stale one is replaced by the models';
- a validated spec is a read-only Record tree equal to what pydantic's own models hold;
- a cold render imports no pydantic, typing, dataclasses, argparse, hashlib or pathlib;
- a wheel ships the snapshot and validates with it.
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import validator
from compiler.loader import load_file
from conftest import REPO

SPECS = sorted((REPO / "specs").glob("*.yaml")) + sorted((REPO / "tests" / "golden").glob("*/spec.yaml"))


def test_snapshot_is_current():
    """compiler/spec_schema.json is what `python -m compiler.snapshot` writes today (a fresh process)."""
    r = subprocess.run([sys.executable, "-m", "compiler.snapshot", "--check"], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr + "\nrun: python -m compiler.snapshot"


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_records_hold_what_the_models_hold(path):
    """The validated Record tree dumps to exactly what pydantic's TrainingJob dumps."""
    from compiler.spec import TrainingJob

    data = load_file(path).data
    record = validator.validate(data)
    assert record.model_dump() == TrainingJob.model_validate(data).model_dump()
    assert record.model_dump(exclude_none=True) == TrainingJob.model_validate(data).model_dump(exclude_none=True)
    assert record.model_fields_set == TrainingJob.model_validate(data).model_fields_set


def test_records_are_read_only():
    job = validator.validate(load_file(REPO / "specs" / "mnist.yaml").data)
    with pytest.raises(AttributeError):
        job.spec = None
    assert type(job).__name__ == "TrainingJob" and type(job.spec.trainer).__name__ == "MnistConfig"


def test_stale_snapshot_is_replaced_by_the_models(tmp_path, monkeypatch):
    """A snapshot whose recorded sources do not match is not used: the models' schema is."""
    import json

    doc = json.loads(Path(validator.SNAPSHOT).read_text())
    doc["sources"] = "0" * 64
    doc["roots"]["TrainingJob"] = {"type": "any"}  # would accept anything
    stale = tmp_path / "spec_schema.json"
    stale.write_text(json.dumps(doc))
    monkeypatch.setattr(validator, "SNAPSHOT", stale)
    monkeypatch.setattr(validator, "_SCHEMA", None)
    with pytest.raises(validator.validation_error()):
        validator.validate({"apiVersion": "nope"})
    assert validator.validate(load_file(REPO / "specs" / "mnist.yaml").data).metadata.name == "mnist"


@settings(max_examples=40, deadline=None)
@given(st.integers(-5, 2000) | st.text(max_size=3) | st.none() | st.booleans())
def test_union_members_agree_with_pydantic(count):
    """`Worker: N` shorthand and the mapping form: accepted exactly when pydantic accepts them."""
    from pydantic import ValidationError

    from compiler.spec import TrainingJob

    data = {"apiVersion": "specc.dev/v1alpha1", "kind": "TrainingJob", "metadata": {"name": "x"},
            "spec": {"framework": "tensorflow", "container": {"image": "busybox:1"}, "replicas": {"Worker": count}}}
    try:
        want = TrainingJob.model_validate(data).model_dump()
    except ValidationError:
        want = None
    try:
        got = validator.validate(data).model_dump()
    except validator.validation_error():
        got = None
    assert got == want


def test_cold_render_imports_no_pydantic():
    code = ("import sys, io, contextlib\nfrom compiler import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    rc = cli.main(['render', 'specs/'])\n"
            "assert rc == 0, rc\nheavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pydantic', 'typing', 'typing_extensions', 'dataclasses', 'argparse', 'hashlib', 'kubernetes', "
            "'tensorflow', 'torch', 'jsonschema', 'jinja2', 'decimal', 'fractions', 'pathlib', 'urllib') or m == 'pydantic_core')\n"
            "print(heavy)\n")
    env = {**os.environ, "SPECC_NO_CACHE": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


def test_installed_package_carries_a_usable_snapshot(tmp_path):
    """A wheel ships spec_schema.json, and the installed files match its source digest."""
    import shutil

    wheel_dir, target, src = tmp_path / "wheel", tmp_path / "site", tmp_path / "src"
    # Build from a copy of the tracked files: setuptools writes build/ into the source tree.
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode()
    for rel in filter(None, tracked.split("\0")):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(wheel_dir), str(src)], capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    wheel = next(wheel_dir.glob("specc-*.whl"))
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                           "--target", str(target), str(wheel)], capture_output=True, text=True, cwd=tmp_path)
    assert inst.returncode == 0, inst.stderr
    code = ("import json, sys, compiler.validator as v; assert v.__file__.startswith(sys.argv[1]), v.__file__; "
            "import compiler.podtemplate as p; assert p.SCHEMA_FILE.is_file(); "
            "print(json.loads(open(v.SNAPSHOT).read())['sources'] == v.source_digest())")
    r = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(target)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"


@pytest.mark.parametrize("data", [b"", b"specc", bytes(range(256)) * 300])
def test_digest_is_hashlib_sha256(data):
    import hashlib

    from compiler.digest import sha256

    assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
