"""Benchmark: `specc render` whole-process wall time against `kubectl kustomize`, same run.

1. `specc render specs/mnist.yaml` (cold: render cache off, validated by pydantic-core from the
   committed schema snapshot; warm: cache filled) against `kubectl kustomize rendered` (the
   reference) and a bare `python -c pass`, run round-robin.
2. One `specc render` call over 100 / 1,000 / 10,000 generated specs (cold and warm, to stdout;
   and cold with `-o DIR` into a new folder, the path CI takes), to show the cost is linear in
   the number of specs.

Prints a markdown table and writes bench/results/render.json and bench/results/render.md.
Usage: .venv/bin/python bench/render.py [--repeat N] [--max-specs 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from readme import render_tables  # bench/readme.py, beside this script: README.md formats the same tables

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SPECC = str(REPO / ".venv" / "bin" / "specc")
PY = str(REPO / ".venv" / "bin" / "python")


def wall(cmd: list[str], *, repeat: int, env: dict | None = None, cwd: Path = REPO, setup=None) -> list[float]:
    """Wall times of `repeat` runs (after one untimed warm-up run)."""
    times = []
    for i in range(repeat + 1):
        if setup:
            setup()
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.decode()[-500:]}")
        if i:
            times.append(dt)
    return times


# Writes every file of one rendered folder (argv[1]) into a new folder (argv[2]).
_COPY = """
import os, sys
src, dst = sys.argv[1], sys.argv[2]
files = {}
for root, _, names in os.walk(src):
    for name in names:
        with open(os.path.join(root, name), "rb") as f:
            files[os.path.relpath(os.path.join(root, name), src)] = f.read()
os.mkdir(dst)
for rel, data in sorted(files.items()):
    path = os.path.join(dst, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
"""


def make_specs(folder: Path, n: int) -> None:
    """n distinct specs cycling through the example specs (unique names)."""
    examples = sorted((REPO / "specs").glob("*.yaml"))
    texts = [(p.stem, p.read_text()) for p in examples]
    folder.mkdir(parents=True)
    for i in range(n):
        stem, text = texts[i % len(texts)]
        import re

        name = re.search(r"^  name: (\S+)$", text, re.M).group(1)
        new = f"j{i}-{name}"[:30].rstrip("-")
        (folder / f"{i:05d}-{stem}.yaml").write_text(text.replace(f"  name: {name}\n", f"  name: {new}\n", 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--max-specs", type=int, default=10_000)
    a = ap.parse_args()
    if not shutil.which("kubectl"):
        raise SystemExit("kubectl is needed for the reference")
    # Bytecode as scripts/setup.sh leaves it: a module edited since setup (or a shell with
    # PYTHONDONTWRITEBYTECODE=1) would otherwise be compiled from source in every timed run.
    subprocess.run([PY, "-m", "compileall", "-q", "compiler", "runtime"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    tmp = Path(tempfile.mkdtemp(prefix="specc-bench-"))
    base_env = {**os.environ, "SPECC_CACHE_DIR": str(tmp / "cache")}
    cold_env = {**base_env, "SPECC_NO_CACHE": "1"}
    res: dict = {"machine": f"{os.cpu_count()} cores", "repeat": a.repeat}

    commands = {
        "python -c pass": ([PY, "-c", "pass"], None),
        "kubectl kustomize rendered (reference)": (["kubectl", "kustomize", "rendered"], None),
        "specc render specs/mnist.yaml, cold (no cache)": ([SPECC, "render", "specs/mnist.yaml"], cold_env),
        "specc render specs/mnist.yaml, warm (cache hit)": ([SPECC, "render", "specs/mnist.yaml"], base_env),
    }
    # Round-robin, so load from elsewhere on the machine falls on every command alike.
    one: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(a.repeat):
        for k, (cmd, env) in commands.items():
            one[k] += wall(cmd, repeat=1, env=env)
    ref = statistics.median(one["kubectl kustomize rendered (reference)"])
    res["single"] = {k: {"median_ms": round(statistics.median(v) * 1000, 1), "min_ms": round(min(v) * 1000, 1),
                         "vs_kustomize": round(statistics.median(v) / ref, 2)} for k, v in one.items()}

    many = {}
    for n in (100, 1_000, 10_000):
        if n > a.max_specs:
            continue
        folder = tmp / f"specs{n}"
        make_specs(folder, n)
        reps = 3 if n < 10_000 else 1
        env_n = {**base_env, "SPECC_CACHE_DIR": str(tmp / f"cache{n}")}
        cold = wall([SPECC, "render", str(folder)], repeat=reps, env={**env_n, "SPECC_NO_CACHE": "1"})
        warm = wall([SPECC, "render", str(folder)], repeat=reps, env=env_n)
        out_dir = tmp / f"out{n}"
        written = wall([SPECC, "render", str(folder), "-o", str(out_dir), "-q"], repeat=reps,
                       env={**env_n, "SPECC_NO_CACHE": "1"}, setup=lambda d=out_dir: shutil.rmtree(d, ignore_errors=True))
        # The floor of writing a folder on this machine's file system: the same files written by
        # a bare Python loop (no specc, no temporary files, no flushing).
        floor = wall([PY, "-c", _COPY, str(out_dir), str(tmp / f"floor{n}")], repeat=reps,
                     setup=lambda d=tmp / f"floor{n}": shutil.rmtree(d, ignore_errors=True))
        many[n] = {"cold_s": round(statistics.median(cold), 3), "warm_s": round(statistics.median(warm), 3),
                   "cold_to_dir_s": round(statistics.median(written), 3),
                   "write_floor_s": round(statistics.median(floor), 3),
                   "cold_ms_per_spec": round(statistics.median(cold) / n * 1000, 3),
                   "warm_ms_per_spec": round(statistics.median(warm) / n * 1000, 3)}
    res["many"] = many
    shutil.rmtree(tmp, ignore_errors=True)

    md = render_tables(res, min_ms=True) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "render.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / "render.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
