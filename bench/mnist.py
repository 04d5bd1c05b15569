"""MNIST trainers: samples/s with 1 and 2 workers (TensorFlow MWMS, PyTorch DDP) and time to 95%.

    .venv/bin/python bench/mnist.py [--steps 1000] [--lr 0.01] [--batch-size 150] [--threads 1]

Each case is real `python -m runtime` processes on ../shared/data/mnist, started the way the
operator starts them (TF_CONFIG on loopback ports; MASTER_ADDR/MASTER_PORT/WORLD_SIZE/RANK), each
limited to --threads CPU threads. The reference is the 1-worker run of the same framework in the
same invocation: the table shows each run's throughput relative to it. samples/s counts global
samples over the time spent in training steps (evaluation excluded); time to 95% is from the first
step to the first evaluation (every 10 steps, on the chief) at >= 95% on the held-out 2,000 images.
Prints a markdown table and writes bench/results/mnist.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MNIST = Path(os.environ.get("SPECC_SHARED", REPO.parent / "shared")).resolve() / "data" / "mnist"
OUT = REPO / "bench" / "results" / "mnist.json"


def case(framework: str, workers: int, args, tmp: Path) -> dict:
    """Run one job to the end; return the chief's metrics.json plus the wall time of the job."""
    work = tmp / f"{framework}-{workers}"
    work.mkdir()
    cfg = work / "config.json"
    cfg.write_text(json.dumps({
        "job": {"name": "bench", "framework": framework},
        "trainer": {"name": "mnist", "data_dir": MNIST.as_uri(), "log_dir": str(work / "logs"),
                    "export_uri": str(work / "export"), "learning_rate": args.lr, "batch_size": args.batch_size,
                    "max_steps": args.steps, "seed": args.seed},
    }))
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")}
    base.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(args.threads), TF_NUM_INTRAOP_THREADS=str(args.threads),
                TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    envs = []
    if framework == "tensorflow" and workers > 1:
        from localrun.supervisor import loopback_ports  # held open together while chosen, so they differ

        hosts = [f"127.0.0.1:{p}" for p in loopback_ports([f"worker-{i}" for i in range(workers)]).values()]
        envs = [{**base, "TF_CONFIG": json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})}
                for i in range(workers)]
    elif framework == "pytorch" and workers > 1:
        from localrun.supervisor import loopback_ports

        port = str(loopback_ports(["master"])["master"])
        envs = [{**base, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": str(workers), "RANK": str(r)}
                for r in range(workers)]
    else:
        envs = [base]
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "runtime", "--config", str(cfg), "--work-dir", str(work / f"w{i}")],
                              cwd=REPO, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, e in enumerate(envs)]
    try:
        logs = [p.communicate(timeout=args.timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    wall = time.perf_counter() - start
    for p, log in zip(procs, logs):
        if p.returncode != 0:
            raise SystemExit(f"{framework} x{workers} failed ({p.returncode}):\n{log[-3000:]}")
    metrics = json.loads((work / "export" / "metrics.json").read_text())
    metrics["job_wall_s"] = round(wall, 1)
    return metrics


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.01, help="default: the book's TFJob flag")
    p.add_argument("--batch-size", type=int, default=150, help="per replica; default: the book's TFJob flag")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--frameworks", default="tensorflow,pytorch")
    args = p.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-mnist-") as tmp:
        for fw in args.frameworks.split(","):
            for workers in (1, 2):
                m = case(fw, workers, args, Path(tmp))
                rows.append({k: m.get(k) for k in (
                    "framework", "world_size", "global_batch_size", "samples_per_s", "step_to_target",
                    "seconds_to_target", "test_accuracy", "final_loss", "train_seconds", "job_wall_s", "device",
                    "weights_checksum")})
                print(f"done: {fw} x{workers}: {m['samples_per_s']} samples/s", file=sys.stderr, flush=True)
    for r in rows:
        ref = next(x for x in rows if x["framework"] == r["framework"] and x["world_size"] == 1)
        r["throughput_vs_1_worker"] = round(r["samples_per_s"] / ref["samples_per_s"], 2)

    print(f"MNIST 784-500-10, lr {args.lr}, batch {args.batch_size}/replica, {args.steps} steps, "
          f"{args.threads} thread(s)/process, {os.cpu_count()} CPU(s)\n")
    print("| framework | workers | global batch | samples/s | vs 1 worker | steps to 95% | s to 95% | test acc | train s | job wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['framework']} | {r['world_size']} | {r['global_batch_size']} | {r['samples_per_s']:.0f} | "
              f"{r['throughput_vs_1_worker']:.2f}x | {r['step_to_target'] or 'not reached'} | "
              f"{r['seconds_to_target'] if r['seconds_to_target'] is not None else '-'} | {r['test_accuracy']:.4f} | "
              f"{r['train_seconds']:.1f} | {r['job_wall_s']:.1f} |")
    result = {
        "benchmark": "mnist",
        "settings": {"steps": args.steps, "learning_rate": args.lr, "batch_size_per_replica": args.batch_size,
                     "threads_per_process": args.threads, "seed": args.seed, "cpus": os.cpu_count(),
                     "python": platform.python_version(), "load_average_at_end": list(os.getloadavg())},
        "reference": "the 1-worker run of the same framework",
        "rows": rows,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
