"""Compiler hardening (issue 7): no credentials in output, concurrent renders, hostile paths."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from conftest import REPO

CREDENTIAL = re.compile(
    r"(AKIA|ASIA)[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|minio123|hunter2"
    r"|(?i:(password|secret|token)\s*[:=]\s*['\"]?[A-Za-z0-9/+]{6,})"
)


def specc(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=cwd, capture_output=True, text=True)


def test_no_rendered_file_contains_a_credential():
    """Scan every committed rendered file and every golden output."""
    files = [*(REPO / "rendered").rglob("*.yaml"), *(REPO / "tests" / "golden").rglob("expected.yaml")]
    assert len(files) > 20
    for f in files:
        text = f.read_text()
        m = CREDENTIAL.search(text)
        assert m is None, f"{f}: {m.group()}"
        for doc in yaml.safe_load_all(text):
            for c in _containers(doc):
                for e in c.get("env", []):
                    if e["name"] in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                        assert "value" not in e and "secretKeyRef" in e["valueFrom"], f
    # The scanner itself finds what it is meant to find.
    assert CREDENTIAL.search("password: hunter2x") and CREDENTIAL.search("AKIAIOSFODNN7EXAMPLE")


def _containers(doc):
    spec = (doc or {}).get("spec", {})
    for key in ("tfReplicaSpecs", "pytorchReplicaSpecs"):
        for rs in spec.get(key, {}).values():
            yield from rs["template"]["spec"]["containers"]
    if "template" in spec:
        tspec = spec["template"]["spec"]
        for rj in tspec.get("replicatedJobs", []):  # a TrainingRuntime's JobSet
            yield from rj["template"]["spec"]["template"]["spec"]["containers"]
        yield from tspec.get("containers", [])
    if "trainer" in spec:  # a TrainJob's trainer carries env like a container
        yield spec["trainer"]


def test_literal_credentials_anywhere_are_refused(tmp_path):
    base = (REPO / "specs" / "recommender.yaml").read_text()
    cases = {
        "storage": base.replace("    credentials:\n      secretName: minio-credentials\n",
                                "    accessKey: minio\n    secretKey: minio123\n"),
        "env": base.replace("  storage:", "  env:\n    MINIO_PASSWORD: minio123\n  storage:"),
        "annotation": base.replace("  namespace: kubeflow\n", "  namespace: kubeflow\n  annotations:\n    key: AKIAIOSFODNN7EXAMPLE\n"),
    }
    for name, text in cases.items():
        f = tmp_path / f"{name}.yaml"
        f.write_text(text)
        r = specc("render", str(f), "-o", str(tmp_path / "out"))
        assert r.returncode == 2, (name, r.stderr)
        assert "literal credential" in r.stderr, (name, r.stderr)
        assert "minio123" not in r.stdout and not (tmp_path / "out").exists()


def test_two_concurrent_renders_into_one_dir(tmp_path):
    """Two renders of different spec sets into the same DIR: the result is exactly one of them."""
    out = tmp_path / "out"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for n in ("mnist.yaml", "income.yaml"):
        (a / n).write_text((REPO / "specs" / n).read_text())
    for n in ("recommender.yaml", "pytorch-dist.yaml"):
        (b / n).write_text((REPO / "specs" / n).read_text())
    for _ in range(3):
        procs = [subprocess.Popen([sys.executable, "-m", "compiler", "render", str(d), "-o", str(out), "-q"], cwd=REPO,
                                  stderr=subprocess.PIPE) for d in (a, b)]
        assert all(p.wait(60) == 0 for p in procs)
        folders = sorted(p.name for p in out.iterdir() if p.is_dir())
        assert folders in (["income", "mnist"], ["pytorch-dist", "recommenderjob"]), folders
        kust = yaml.safe_load((out / "kustomization.yaml").read_text())
        assert kust["resources"] == folders
        assert not list(out.rglob(".*specc-tmp*"))
        assert specc("render", str(a if folders[0] == "income" else b), "-o", str(out), "--check").returncode == 0


def test_output_cannot_escape_dir_through_a_symlink(tmp_path):
    out = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.mkdir()
    out.mkdir()
    (out / "mnist").symlink_to(outside, target_is_directory=True)
    r = specc("render", "specs/mnist.yaml", "-o", str(out))
    assert r.returncode == 2 and "symbolic link" in r.stderr, r.stderr
    assert list(outside.iterdir()) == []


def test_resource_bombs_rejected_quickly(tmp_path):
    """Alias expansion, deep nesting, huge files and long strings: each refused with a location."""
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    cases = {
        "bomb.yaml": laughs,
        "deep.yaml": "a: " + "[" * 200 + "]" * 200 + "\n",
        "huge.yaml": "a: b\n" + "# pad\n" * 400_000,
        "long.yaml": "apiVersion: " + "x" * 100_000 + "\n",
    }
    for name, text in cases.items():
        f = tmp_path / name
        f.write_text(text)
        r = specc("validate", str(f))
        assert r.returncode == 2, name
        assert r.stderr.startswith(f"{f}:"), (name, r.stderr)
        assert "Traceback" not in r.stderr


def test_names_cannot_escape_the_output_folder(tmp_path):
    """Path-like names are refused by validation before anything is written."""
    base = (REPO / "specs" / "mnist.yaml").read_text()
    for bad in ("../../etc", "/etc/passwd", "a/b", "..", "mnist/../../x"):
        f = tmp_path / "spec.yaml"
        f.write_text(base.replace("  name: mnist\n", f"  name: {bad!r}\n"))
        r = specc("render", str(f), "-o", str(tmp_path / "out"))
        assert r.returncode == 2 and "metadata.name: must be a DNS-1035 label" in r.stderr, (bad, r.stderr)
        assert not (tmp_path / "out").exists() and not (tmp_path / "etc").exists()
