"""Run the PyTorch MNIST trainer's training step on CUDA (CPU when none) and print JSON.

    python bench/gpu_check.py /path/to/mnist-folder [--steps 1000] [--batch-size 150] [--lr 0.01]

For a GPU machine that has torch and numpy but no TensorFlow, no pydantic and no network: it
imports only torch, numpy, runtime.mnist_data and runtime.trainers.mnist_torch (whose module level
is standard library + numpy), reads t10k-images/labels idx files from the folder given, trains the
same network with the same step as the trainer, and prints device name, steps/s, samples/s and
held-out accuracy as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from runtime import mnist_data as md  # noqa: E402
from runtime.trainers import mnist_torch as mt  # noqa: E402

WARMUP = 20


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", help="folder holding t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=150)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--keep", type=float, default=0.9, help="dropout keep probability")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    device = mt.pick_device(torch)
    x, y = md.read_mnist_dir(args.data_dir)
    d = md.split(x, y, 8000, 2000, args.seed)
    xt, yt = torch.from_numpy(d.x_train).to(device), torch.from_numpy(d.y_train).to(device)
    xe, ye = torch.from_numpy(d.x_test).to(device), torch.from_numpy(d.y_test).to(device)
    model = mt.build_model(args.keep, args.seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = md.BatchSchedule(len(d.x_train), args.batch_size, 0, 1, args.seed)
    # All batch indices up front, on the device: the timed loop measures the step, not numpy.
    idx = torch.from_numpy(np.stack([sched.indices(s) for s in range(args.steps)])).to(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for s in range(min(WARMUP, args.steps)):
        mt.train_step(model, opt, xt[idx[s]], yt[idx[s]])
    sync()
    start = time.perf_counter()
    for s in range(min(WARMUP, args.steps), args.steps):
        loss, _ = mt.train_step(model, opt, xt[idx[s]], yt[idx[s]])
    sync()
    seconds = time.perf_counter() - start
    timed = max(args.steps - WARMUP, 0)
    test_loss, test_acc = mt.evaluate(model, xe, ye)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cuda": device.type == "cuda",
        "torch": torch.__version__,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "steps_per_s": round(timed / seconds, 1) if timed else None,
        "samples_per_s": round(timed * args.batch_size / seconds, 1) if timed else None,
        "test_accuracy": round(test_acc, 4),
        "test_loss": round(test_loss, 4),
        "weights_checksum": md.weights_checksum(p.detach().cpu().numpy() for p in model.parameters()),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
