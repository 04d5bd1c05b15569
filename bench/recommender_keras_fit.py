"""Benchmark: Keras `fit` with jit_compile=True as the recommender's engine, against the reference.

Issue #12 asks to measure Keras fit with jit_compile=True before keeping a hand-written engine.
Each variant runs in a fresh process on the book's data with the trainer's preprocessing, seeded
shuffled split, initial weights (keras_initial_weights) and per-epoch orders, batch size 64,
3 epochs, Adam 0.001, MSLE, validation after every epoch:
- Keras 3 and tf-keras (Keras 2, the one that runs under MultiWorkerMirroredStrategy in TF 2.21):
  the book's model, `compile(jit_compile=True, steps_per_execution=S)`, one `fit` per epoch on a
  tf.data pipeline; whole-process wall time without an export (a lower bound for a trainer);
- tf-keras the same way under MultiWorkerMirroredStrategy, 2 workers on loopback: whether it runs;
- the reference (ref_recommender.py --shuffle) and specc's trainer (`python -m runtime`, with
  its export), for the ratios.

Writes bench/results/recommender_keras_fit.json and prints a markdown table.
Usage: .venv/bin/python bench/recommender_keras_fit.py [--data DIR] [--epochs 3] [--steps-per-execution 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from recommender import REPO, RESULTS, SHARED, run_ours, run_reference, timed

PY = sys.executable

#: One Keras variant: argv = data dir, epochs, steps per execution, legacy (1: tf-keras, 0: Keras 3).
KERAS_FIT = r"""
import json, os, sys, time
data_dir, epochs, spe, legacy = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
os.environ["TF_USE_LEGACY_KERAS"] = "1" if legacy else "0"
import numpy as np, tensorflow as tf
if legacy:
    import tf_keras as keras
else:
    import keras
strategy = tf.distribute.MultiWorkerMirroredStrategy() if os.environ.get("TF_CONFIG") else tf.distribute.get_strategy()
sys.path.insert(0, os.getcwd())
from runtime.trainers import recommender as rec
data = rec.preprocess(open(f"{data_dir}/trx_data.csv", "rb").read(), "trx_data.csv")
tr, va = rec.split_indices(len(data), 0.25, "shuffle", 0)
u, p, y = data.customer_index, data.product_index, data.ratings
nf = 50
with strategy.scope():
    x1, x2 = keras.Input(shape=(1,), dtype="int32"), keras.Input(shape=(1,), dtype="int32")
    P = keras.layers.Reshape((nf,))(keras.layers.Embedding(len(data.customers), nf)(x1))
    Q = keras.layers.Reshape((nf,))(keras.layers.Embedding(len(data.products), nf)(x2))
    x = keras.layers.Dropout(0.2)(keras.layers.Concatenate(axis=1)([P, Q]))
    x = keras.layers.Dropout(0.2)(keras.layers.Activation("relu")(keras.layers.Dense(nf)(x)))
    model = keras.Model([x1, x2], keras.layers.Dense(1)(x))
    model.set_weights(rec.keras_initial_weights(tf, 0, data.customers, data.products, nf))
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss=keras.losses.MeanSquaredLogarithmicError(),
                  jit_compile=True, steps_per_execution=spe)
val = tf.data.Dataset.from_tensor_slices(((u[va][:, None], p[va][:, None]), y[va][:, None])).batch(65536).cache()
epoch_s, loss, val_loss = [], [], []
for e in range(epochs):
    t = tr[rec.epoch_order(len(tr), 0, e)]
    ds = tf.data.Dataset.from_tensor_slices(((u[t][:, None], p[t][:, None]), y[t][:, None])).batch(64).prefetch(2)
    start = time.perf_counter()
    h = model.fit(ds, validation_data=val, initial_epoch=e, epochs=e + 1, verbose=0)
    epoch_s.append(time.perf_counter() - start)
    loss.append(float(h.history["loss"][-1]))
    val_loss.append(float(h.history["val_loss"][-1]))
print(json.dumps({"epoch_s": epoch_s, "loss": loss, "val_loss": val_loss, "train": len(tr)}))
"""


def keras_fit(data: Path, epochs: int, spe: int, legacy: bool, env: dict[str, str]) -> dict:
    """One Keras variant alone: whole-process wall and CPU time, epoch times, losses."""
    p, wall, cpu = timed([PY, "-c", KERAS_FIT, str(data), str(epochs), str(spe), "1" if legacy else "0"], env)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "cpu_s": cpu, "samples_per_s": out["train"] / statistics.median(out["epoch_s"]), **out}


def keras_fit_two_workers(data: Path, epochs: int, spe: int, env: dict[str, str]) -> dict:
    """tf-keras fit with jit_compile=True under MultiWorkerMirroredStrategy, 2 workers on loopback:
    exit codes and, when they fail, the informative line of worker 0's error."""
    sys.path.insert(0, str(REPO))
    from localrun.supervisor import loopback_ports  # both ports held open while chosen, so they differ

    names = ["worker-0", "worker-1"]
    ports = loopback_ports(names)
    cluster = {"worker": [f"127.0.0.1:{ports[n]}" for n in names]}
    procs = [subprocess.Popen([PY, "-c", KERAS_FIT, str(data), str(epochs), str(spe), "1"], cwd=REPO, text=True,
                              env={**env, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    outs = [p.communicate(timeout=1800) for p in procs]
    codes = [p.returncode for p in procs]
    lines = outs[0][1].splitlines()
    error = next((ln.strip() for ln in lines if "Detected unsupported operations" in ln), lines[-1].strip() if lines else "")
    result = {"exit_codes": codes, "runs": codes == [0, 0]}
    if codes == [0, 0]:
        result.update(json.loads(outs[0][0].strip().splitlines()[-1]))
    else:
        result["error"] = error[:400]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "recommender")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps-per-execution", type=int, default=64)
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPECC_", "TF_CONFIG", "TF_USE_LEGACY"))}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")

    runs = {}
    for name, run in (("reference", lambda: run_reference(a.data, a.epochs, env)),
                      ("keras 3 fit, jit_compile", lambda: keras_fit(a.data, a.epochs, a.steps_per_execution, False, env)),
                      ("tf-keras fit, jit_compile", lambda: keras_fit(a.data, a.epochs, a.steps_per_execution, True, env)),
                      ("specc engine", lambda: run_ours(a.data, a.epochs, env))):
        print(f"{name} ...", file=sys.stderr, flush=True)
        runs[name] = run()
    print("tf-keras fit, jit_compile, 2 workers ...", file=sys.stderr, flush=True)
    two = keras_fit_two_workers(a.data, a.epochs, a.steps_per_execution, env)
    ref = runs["reference"]["wall_s"]
    result = {"machine": {"cpus": os.cpu_count(), "note": "shared machine: other processes may load the CPU"},
              "data": str(a.data), "epochs": a.epochs, "batch_size": 64, "steps_per_execution": a.steps_per_execution,
              "runs": {name: {**r, "wall_vs_reference": r["wall_s"] / ref} for name, r in runs.items()},
              "tf_keras_fit_jit_two_workers": two}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recommender_keras_fit.json").write_text(json.dumps(result, indent=2) + "\n")

    from readme import recommender_keras_fit_section  # bench/readme.py formats it for the README

    print(recommender_keras_fit_section(result))


if __name__ == "__main__":
    main()
