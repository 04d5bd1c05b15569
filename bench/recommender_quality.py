"""Benchmark: the recommender's validation MSLE against the reference's over several seeds.

One run per side gives one draw of the training's randomness (initial weights, epoch orders,
dropout masks); the two sides draw them differently (Keras' seed generators against numpy's), so
a single seed says little about which trains better. This runs both, for each seed S, on the
same seeded shuffled split of the book's data (numpy default_rng(S) permutation, last 25 %
validates), with the same hyper-parameters (batch size 64, 3 epochs, 50 factors, dropout 0.2,
adam 0.001), and reports the per-seed best and final validation MSLE, their means, and the
paired differences (specc - reference) with their standard error.

The reference is ../shared/reference/ref_recommender.py: seed 0 runs it unmodified; another seed
runs a copy in a temporary folder where the only change is that seed (its two `0` seeds, the
split's permutation and keras.utils.set_random_seed, become S; each must occur exactly once).

Writes bench/results/recommender_quality.json and prints the README's markdown for it.
Usage: .venv/bin/python bench/recommender_quality.py [--seeds 8] [--epochs 3] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPECC_SHARED", REPO.parent / "shared")).resolve()
RESULTS = REPO / "bench" / "results"
PY = sys.executable
SEED_SITES = ("np.random.default_rng(0)", "keras.utils.set_random_seed(0)")


def reference_for_seed(seed: int, folder: Path) -> Path:
    """The reference script for `seed`: the original for 0, else a copy with only its seeds changed."""
    ref = SHARED / "reference" / "ref_recommender.py"
    if seed == 0:
        return ref
    text = ref.read_text()
    for site in SEED_SITES:
        if text.count(site) != 1:
            sys.exit(f"{ref}: expected exactly one {site!r}; the reference changed, update {Path(__file__).name}")
        text = text.replace(site, site.replace("(0)", f"({seed})"))
    path = folder / f"ref_recommender_seed{seed}.py"
    path.write_text(text)
    return path


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p


def run_reference(seed: int, data: Path, epochs: int, env: dict[str, str], folder: Path) -> dict:
    p = run([PY, str(reference_for_seed(seed, folder)), str(data), "--epochs", str(epochs), "--shuffle"], env)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    return {"loss": out["loss"], "val_loss": out["val_loss"], "val_msle_mean_predictor": out["val_msle_mean_predictor"],
            "train": out["train"]}


def run_ours(seed: int, data: Path, epochs: int, env: dict[str, str], folder: Path) -> dict:
    sys.path.insert(0, str(REPO))
    from runtime.config import JobInfo, RecommenderConfig, RuntimeConfig, dump_runtime_config

    root = folder / f"models-{seed}"
    cfg = RuntimeConfig(job=JobInfo(name="bench", framework="tensorflow"), trainer=RecommenderConfig(
        users_uri=str(data / "recommend_1.csv"), transactions_uri=str(data / "trx_data.csv"),
        export_directory="recommender", model_root=str(root), epochs=epochs, split="shuffle", seed=seed))
    path = folder / f"cfg-{seed}.json"
    path.write_text(dump_runtime_config(cfg))
    run([PY, "-m", "runtime", "--config", str(path), "--work-dir", str(folder / f"work-{seed}")], env)
    m = json.loads((root / "recommender" / "1" / "metrics.json").read_text())
    return {"loss": m["loss"], "val_loss": m["val_loss"], "val_msle_mean_predictor": m["val_msle_mean_predictor"],
            "train": m["split"]["train"]}


#: Does Keras 3's fit visit numpy input in the same order every epoch after set_random_seed (as the
#: reference calls it)? A one-layer model records the order it sees through a py_function.
ORDER_CHECK = """
import json, numpy as np, keras, tensorflow as tf
keras.utils.set_random_seed(0)
seen = []
record = lambda v: (seen.append(v.numpy().ravel().astype(int).tolist()), v)[1]
model = keras.Sequential([keras.Input((1,)), keras.layers.Lambda(lambda t: tf.py_function(record, [t], tf.float32)),
                          keras.layers.Dense(1)])
model.compile("adam", "mse", run_eagerly=True)
x = np.arange(32, dtype="float32").reshape(-1, 1)
model.fit(x, x, batch_size=32, epochs=3, shuffle=True, verbose=0)
print(json.dumps({"orders": seen}))
"""


def keras_epoch_orders(env: dict[str, str]) -> dict:
    """The row orders Keras 3's fit used in 3 epochs of a 32-row array, and whether they repeat."""
    orders = json.loads(run([PY, "-c", ORDER_CHECK], env).stdout.strip().splitlines()[-1])["orders"]
    return {"orders": orders, "shuffled": orders[0] != sorted(orders[0]),
            "same_every_epoch": all(o == orders[0] for o in orders)}


def paired(ours: list[float], refs: list[float]) -> dict:
    """Mean of the paired differences (ours - reference), its standard error, and the wins; ours
    rounded to 5 decimals first, as the reference prints its losses."""
    ours = [round(o, 5) for o in ours]
    d = [o - r for o, r in zip(ours, refs)]
    se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
    return {"reference_mean": statistics.fmean(refs), "specc_mean": statistics.fmean(ours),
            "mean_difference": statistics.fmean(d), "standard_error": se,
            "specc_lower": sum(x < 0 for x in d), "equal": sum(x == 0 for x in d), "reference_lower": sum(x > 0 for x in d)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "recommender")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=8, help="seeds 0 .. N-1")
    ap.add_argument("--summarize", action="store_true", help="recompute the summary of the last results, run nothing")
    a = ap.parse_args()
    if a.summarize:
        last = json.loads((RESULTS / "recommender_quality.json").read_text())
        a.data, a.epochs = last["data"], last["epochs"]
        return report(last["rows"], last["keras_fit_epoch_order"], a)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPECC_", "TF_CONFIG"))}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")

    order = keras_epoch_orders(env)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-recommender-quality-") as tmp:
        for seed in range(a.seeds):
            print(f"seed {seed}: reference ...", file=sys.stderr, flush=True)
            ref = run_reference(seed, a.data, a.epochs, env, Path(tmp))
            print(f"seed {seed}: specc ...", file=sys.stderr, flush=True)
            us = run_ours(seed, a.data, a.epochs, env, Path(tmp))
            if ref["train"] != us["train"] or abs(ref["val_msle_mean_predictor"] - us["val_msle_mean_predictor"]) > 1e-5:
                sys.exit(f"seed {seed}: the two sides did not validate on the same split ({ref} / {us})")
            rows.append({"seed": seed, "reference": ref, "specc": us})
    report(rows, order, a)


def report(rows: list[dict], order: dict, a: argparse.Namespace) -> None:
    """Write the results JSON (rows plus the paired summaries) and print the table."""
    best = paired([min(r["specc"]["val_loss"]) for r in rows], [min(r["reference"]["val_loss"]) for r in rows])
    final = paired([r["specc"]["val_loss"][-1] for r in rows], [r["reference"]["val_loss"][-1] for r in rows])
    result = {"data": str(a.data), "epochs": a.epochs, "batch_size": 64, "seeds": len(rows),
              "split": "shuffle, numpy default_rng(seed) permutation, last 25 % validates",
              "rows": rows, "best_val_msle": best, "final_val_msle": final,
              "keras_fit_epoch_order": order}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recommender_quality.json").write_text(json.dumps(result, indent=2) + "\n")

    from readme import recommender_quality_section  # bench/readme.py formats it for the README

    print(recommender_quality_section(result))


if __name__ == "__main__":
    main()
