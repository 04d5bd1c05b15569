"""The render cache: hits give the same bytes, any change misses, corruption is ignored."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def render(tmp_path, *args, env_extra=None):
    env = {**os.environ, "SPECC_CACHE_DIR": str(tmp_path / "cache"), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "compiler", "render", *args], cwd=REPO,
                          capture_output=True, text=True, env=env)


def test_hit_gives_identical_bytes_without_validation_stack(tmp_path):
    cold = render(tmp_path, "specs")
    assert cold.returncode == 0
    entries = list((tmp_path / "cache").rglob("*"))
    assert sum(p.is_file() for p in entries) == 7
    # A hit must not import pydantic or the YAML loader.
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from compiler.cli import main; main(['render', 'specs']); "
         "print('pydantic' in sys.modules, 'compiler.loader' in sys.modules, file=sys.stderr)"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "SPECC_CACHE_DIR": str(tmp_path / "cache")})
    assert probe.stdout == cold.stdout
    assert probe.stderr.strip() == "False False"
    nocache = render(tmp_path, "specs", env_extra={"SPECC_NO_CACHE": "1"})
    assert nocache.stdout == cold.stdout


def test_changed_spec_misses(tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text((REPO / "specs" / "mnist.yaml").read_text())
    first = render(tmp_path, str(spec))
    spec.write_text(spec.read_text().replace("count: 2", "count: 3"))
    second = render(tmp_path, str(spec))
    assert first.stdout != second.stdout and "replicas: 3" in second.stdout
    spec.write_text(spec.read_text().replace("count: 3", "count: 0"))
    bad = render(tmp_path, str(spec))
    assert bad.returncode == 2 and "greater than or equal to 1" in bad.stderr


def test_corrupt_entry_is_a_miss(tmp_path):
    first = render(tmp_path, "specs/mnist.yaml")
    for p in (tmp_path / "cache").rglob("*"):
        if p.is_file():
            p.write_text("{not json")
    again = render(tmp_path, "specs/mnist.yaml")
    assert again.returncode == 0 and again.stdout == first.stdout


def test_unwritable_cache_is_harmless(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    r = render(tmp_path, "specs/mnist.yaml")
    assert r.returncode == 0 and "kind: TFJob" in r.stdout


def test_the_key_covers_every_file_a_compile_reads(tmp_path):
    """Each module of compiler/ and runtime/ a render imports, and each data file it opens, is in
    the fingerprint: editing any of them misses the cache."""
    code = (
        "import glob, io, os, sys, contextlib\n"
        "opened = set()\n"
        "sys.addaudithook(lambda ev, args: opened.add(os.path.realpath(args[0])) "
        "if ev == 'open' and isinstance(args[0], str) else None)\n"
        "from compiler import cache, cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert cli.main(['render', 'specs', *glob.glob('tests/golden/*/spec.yaml')]) == 0\n"
        "read = {os.path.realpath(m.__file__) for m in list(sys.modules.values()) if getattr(m, '__file__', None)}\n"
        "read |= {p for p in opened if p.endswith('.json')}\n"
        "mine = {p for p in read if p.startswith(os.path.realpath('compiler') + os.sep) or "
        "p.startswith(os.path.realpath('runtime') + os.sep)}\n"
        "missing = sorted(mine - set(cache.sources()) - {os.path.realpath(p) for p in ("
        "'compiler/__init__.py', 'compiler/cli.py')})\n"
        "print(missing)\n")
    env = {**os.environ, "SPECC_NO_CACHE": "1", "SPECC_CACHE_DIR": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
