"""Benchmark: the built-in recommender against the book-faithful reference, same data, same run.

Runs ../shared/reference/ref_recommender.py --shuffle (Keras 3, the notebook's pandas pipeline,
model.fit on numpy arrays) and `python -m runtime --config cfg.json` (our trainer, local paths,
export to a temporary model root) one after the other, each in a fresh process, on the same data
with the same hyper-parameters (batch size 64, 3 epochs, 50 factors, dropout 0.2, adam 0.001) and
the same seeded shuffled split (numpy default_rng(0) permutation, last 25 % validates).

Measured: whole-process wall time and CPU time (read, preprocess, train, and for ours the
SavedModel export; process start and imports included), training throughput (train samples /
median epoch time), validation MSLE per epoch and of the training-mean predictor.
Other processes may share the CPU: the CPU-time ratio is the steadier number then; each run
records the load average.

Prints a markdown table and writes bench/results/recommender.json.
Usage: .venv/bin/python bench/recommender.py [--data DIR] [--epochs 3] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPECC_SHARED", REPO.parent / "shared")).resolve()
RESULTS = REPO / "bench" / "results"
PY = sys.executable


def timed(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run cmd; return the process, its wall seconds and its CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{cmd[1]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_reference(data: Path, epochs: int, env: dict[str, str]) -> dict:
    ref = SHARED / "reference" / "ref_recommender.py"
    load = os.getloadavg()[0]
    p, wall, cpu = timed([PY, str(ref), str(data), "--epochs", str(epochs), "--shuffle"], env)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "cpu_s": cpu, "load_before": load, "samples_per_s": out["samples_per_s"],
            "epoch_s": out["epoch_s"], "loss": out["loss"], "val_loss": out["val_loss"],
            "val_msle_mean_predictor": out["val_msle_mean_predictor"], "train": out["train"], "rows": out["samples"]}


def run_ours(data: Path, epochs: int, env: dict[str, str]) -> dict:
    sys.path.insert(0, str(REPO))
    from runtime.config import JobInfo, RecommenderConfig, RuntimeConfig, dump_runtime_config

    with tempfile.TemporaryDirectory(prefix="bench-recommender-") as tmp:
        root = Path(tmp) / "models"
        cfg = RuntimeConfig(job=JobInfo(name="bench", framework="tensorflow"), trainer=RecommenderConfig(
            users_uri=str(data / "recommend_1.csv"), transactions_uri=str(data / "trx_data.csv"),
            export_directory="recommender", model_root=str(root), epochs=epochs, split="shuffle", seed=0))
        path = Path(tmp) / "cfg.json"
        path.write_text(dump_runtime_config(cfg))
        load = os.getloadavg()[0]
        p, wall, cpu = timed([PY, "-m", "runtime", "--config", str(path), "--work-dir", str(Path(tmp) / "work")], env)
        m = json.loads((root / "recommender" / "1" / "metrics.json").read_text())
        exported = sorted(f.name for f in (root / "recommender" / "1").iterdir())
    return {"wall_s": wall, "cpu_s": cpu, "load_before": load, "samples_per_s": m["samples_per_s"],
            "epoch_s": m["timings_s"]["epochs"], "loss": m["loss"], "val_loss": m["val_loss"],
            "val_msle_mean_predictor": m["val_msle_mean_predictor"], "train": m["split"]["train"], "rows": m["rows"],
            "timings_s": m["timings_s"], "phases_s": phases(wall, m["timings_s"]), "exported": exported}


def phases(wall: float, t: dict) -> dict:
    """Where our wall time goes: the trainer's own timings plus what lies outside them (process
    start and runtime import before the trainer starts; publish and process exit after the save).
    Tracing and XLA-compiling the chunk function is the trainer's `compile` timing (it compiles
    before the first epoch); older results had it inside the first epoch (first - median of the rest)."""
    epochs = t["epochs"]
    if "compile" in t:
        compile_s, run_s = t["compile"], sum(epochs)
    else:
        rest = statistics.median(epochs[1:]) if len(epochs) > 1 else 0.0
        compile_s = epochs[0] - rest if epochs else 0.0
        run_s = sum(epochs) - compile_s
    return {"tensorflow_import": t["import"], "read": t["read"], "preprocess": t["preprocess"], "build": t["build"],
            "trace_and_compile": compile_s, "epochs_run": run_s,
            "train_other": t["train"] - sum(epochs), "save": t["save"],
            "outside_trainer": wall - t["total_before_publish"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "recommender")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=1, help="alternate reference / ours this many times")
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPECC_", "TF_CONFIG"))}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")

    refs, ours = [], []
    for i in range(a.repeat):
        print(f"run {i + 1}/{a.repeat}: reference ...", file=sys.stderr, flush=True)
        refs.append(run_reference(a.data, a.epochs, env))
        print(f"run {i + 1}/{a.repeat}: specc recommender ...", file=sys.stderr, flush=True)
        ours.append(run_ours(a.data, a.epochs, env))

    def med(runs, key):
        return statistics.median(r[key] for r in runs)

    ref, us = refs[-1], ours[-1]
    rows = [
        ("end to end wall (s)", med(refs, "wall_s"), med(ours, "wall_s"), med(refs, "wall_s") / med(ours, "wall_s")),
        ("end to end CPU (s)", med(refs, "cpu_s"), med(ours, "cpu_s"), med(refs, "cpu_s") / med(ours, "cpu_s")),
        ("train samples/s, batch 64", med(refs, "samples_per_s"), med(ours, "samples_per_s"),
         med(ours, "samples_per_s") / med(refs, "samples_per_s")),
        ("best val MSLE", min(ref["val_loss"]), min(us["val_loss"]), None),
        ("final val MSLE", ref["val_loss"][-1], us["val_loss"][-1], None),
        ("val MSLE of the training mean", ref["val_msle_mean_predictor"], us["val_msle_mean_predictor"], None),
    ]
    result = {
        "machine": {"cpus": os.cpu_count(), "note": "shared machine: other processes may load the CPU"},
        "data": str(a.data), "epochs": a.epochs, "batch_size": 64, "split": "shuffle, seed 0, last 25 % validates",
        "reference": refs, "ours": ours,
        "speedup": {"end_to_end_wall": rows[0][3], "end_to_end_cpu": rows[1][3], "train_throughput": rows[2][3]},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recommender.json").write_text(json.dumps(result, indent=2) + "\n")

    def fmt(v):
        return "" if v is None else (f"{v:.5f}" if v < 0.1 else f"{v:,.1f}")

    print(f"| recommender ({us['rows']:,} rows, {us['train']:,} train, {a.epochs} epochs, "
          f"{a.repeat} run(s), median) | reference | specc | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, r, o, ratio in rows:
        print(f"| {name} | {fmt(r)} | {fmt(o)} | {'' if ratio is None else f'{ratio:.1f}x'} |")
    print("\n| specc phase (s) | " + " | ".join(f"run {i + 1}" for i in range(len(ours))) + " |")
    print("| --- |" + " ---: |" * len(ours))
    for key in ours[0]["phases_s"]:
        print(f"| {key} | " + " | ".join(f"{r['phases_s'][key]:.2f}" for r in ours) + " |")
    print("| wall | " + " | ".join(f"{r['wall_s']:.2f}" for r in ours) + " |")
    print("| load average before | " + " | ".join(f"{r['load_before']:.2f}" for r in ours) + " |")


if __name__ == "__main__":
    main()
