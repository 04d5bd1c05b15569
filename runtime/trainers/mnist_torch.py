"""Book section 5: the same MNIST network under PyTorch DistributedDataParallel (PyTorchJob).

Reads MASTER_ADDR / MASTER_PORT / WORLD_SIZE / RANK as the training operator sets them
(init_method env://); gloo on CPU, nccl when CUDA is available (SPECC_TORCH_BACKEND overrides,
e.g. gloo for several ranks sharing one GPU). Each rank trains on its slice of every global batch
(runtime.mnist_data.BatchSchedule); DDP averages the gradients, so all ranks hold the same weights.
Rank 0 exports model.pt (state_dict) plus metrics.json; every rank logs its weights checksum.
No TensorBoard summaries (the tensorboard package is not part of the torch extra): evaluation
on the held-out rows runs every 10 steps on rank 0 and is logged every 100.

torch is imported inside functions: it is the optional `torch` extra. Module-level imports are
only the standard library, numpy and runtime.mnist_data / runtime.errors, so bench/gpu_check.py
can reuse the network and step on a machine without pydantic or TensorFlow.
"""

from __future__ import annotations

import datetime
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from runtime import mnist_data as md
from runtime.errors import ConfigError, RuntimeFailure

if TYPE_CHECKING:
    from runtime.__main__ import Context
    from runtime.config import RuntimeConfig

log = logging.getLogger("specc.mnist_torch")

EVAL_EVERY = 10
#: How long a rank waits for the others to join the process group.
JOIN_TIMEOUT_S = 600


def build_model(keep: float, seed: int):
    """784 -> 500 ReLU -> dropout(1 - keep) -> 10 logits; truncated-normal(0.1) weights, 0.1 biases."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 500), nn.ReLU(), nn.Dropout(1.0 - keep), nn.Linear(500, 10))
    with torch.no_grad():
        for layer in (model[0], model[3]):
            nn.init.trunc_normal_(layer.weight, std=0.1, a=-0.2, b=0.2)
            layer.bias.fill_(0.1)
    return model


def train_step(model, opt, x, y):
    """One Adam step on a batch; returns (mean loss, accuracy) as 0-d tensors (no host sync)."""
    import torch.nn.functional as F

    model.train()
    opt.zero_grad(set_to_none=True)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    opt.step()
    return loss.detach(), (logits.argmax(1) == y).float().mean()


def evaluate(model, x, y) -> tuple[float, float]:
    """(mean loss, accuracy) of `model` on (x, y) without dropout."""
    import torch
    import torch.nn.functional as F

    model.eval()
    with torch.no_grad():
        logits = model(x)
        out = torch.stack([F.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()]).cpu()
    return float(out[0]), float(out[1])


def pick_device(torch, rank: int = 0):
    """cuda (one GPU per rank, round-robin over the visible ones) when available, else cpu."""
    if torch.cuda.is_available():
        dev = torch.device("cuda", rank % torch.cuda.device_count())
        log.info("using GPU: %s", torch.cuda.get_device_name(dev))
        return dev
    log.info("no GPU visible: running on CPU")
    return torch.device("cpu")


def run(cfg: "RuntimeConfig", ctx: "Context") -> dict:
    """Train (DDP when WORLD_SIZE > 1), evaluate, export on rank 0; return the final metrics."""
    t = cfg.trainer
    task = ctx.task
    distributed = task.source == "torch" and task.world_size > 1
    world, rank = (task.world_size, task.rank) if distributed else (1, 0)
    data = md.load_split(ctx.storage, t.data_dir, t.train_rows, t.test_rows, t.seed)
    sched = md.BatchSchedule(len(data.x_train), t.batch_size, rank, world, t.seed)

    import torch
    import torch.distributed as dist

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(md.cpu_limit())
    if t.checkpoint_uri:
        log.warning("checkpoint_uri is not used by the mnist trainer: a restarted replica trains from step 0")
    device = pick_device(torch, rank)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if distributed:
        _join(dist, device, rank, world)
    try:
        return _train(torch, dist if distributed else None, t, ctx, data, sched, device, device_name, rank, world)
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()


def _join(dist, device, rank: int, world: int) -> None:
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise ConfigError(f"WORLD_SIZE is {world} but {' and '.join(missing)} is not set")
    backend = os.environ.get("SPECC_TORCH_BACKEND") or ("nccl" if device.type == "cuda" else "gloo")
    where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    log.info("joining process group at %s as rank %d of %d (%s)", where, rank, world, backend)
    try:
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=JOIN_TIMEOUT_S))
    except (RuntimeError, ValueError) as exc:
        raise RuntimeFailure(f"cannot join the process group at {where}: {str(exc).splitlines()[0]}") from None


def _train(torch, dist, t, ctx, data: md.Split, sched: md.BatchSchedule, device, device_name: str,
           rank: int, world: int) -> dict:
    x_train, y_train = torch.from_numpy(data.x_train).to(device), torch.from_numpy(data.y_train).to(device)
    x_test, y_test = torch.from_numpy(data.x_test).to(device), torch.from_numpy(data.y_test).to(device)

    model = build_model(t.dropout, t.seed).to(device)
    net = model
    if dist is not None:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.Adam(net.parameters(), lr=t.learning_rate)
    writes = rank == 0
    global_batch = t.batch_size * world

    clock = md.TargetClock()
    step_seconds = 0.0
    loss = float("nan")
    start = time.perf_counter()
    for step in range(1, t.max_steps + 1):
        ctx.check_stop()
        idx = torch.from_numpy(sched.indices(step - 1)).to(device)
        s = time.perf_counter()
        loss_t, _ = train_step(net, opt, x_train[idx], y_train[idx])
        if dist is not None:
            dist.all_reduce(loss_t)  # the global batch's mean loss, as the TF trainer reports
            loss_t /= world
        loss = float(loss_t)
        step_seconds += time.perf_counter() - s
        if writes and (step % EVAL_EVERY == 0 or step == t.max_steps):
            _, test_acc = evaluate(model, x_test, y_test)
            clock.observe(step, test_acc, time.perf_counter() - start)
            if step % (EVAL_EVERY * 10) == 0 or step == t.max_steps:
                log.info("step %d: train loss %.4f, test accuracy %.4f", step, loss, test_acc)
    total_seconds = time.perf_counter() - start

    weights = [p.detach().cpu().numpy() for p in model.parameters()]
    checksum = md.weights_checksum(weights)
    test_loss, test_acc = evaluate(model, x_test, y_test)
    log.info("replica %s final: test accuracy %.4f, weights checksum %s", ctx.task.name, test_acc, checksum)
    metrics = {
        "framework": "pytorch",
        "device": device_name,
        "world_size": world,
        "steps": t.max_steps,
        "batch_size": t.batch_size,
        "global_batch_size": global_batch,
        "learning_rate": t.learning_rate,
        "test_accuracy": round(test_acc, 6),
        "test_loss": round(test_loss, 6),
        "final_loss": round(loss, 6),
        "train_seconds": round(total_seconds, 3),
        "samples_per_s": round(t.max_steps * global_batch / step_seconds, 1),
        "target_accuracy": clock.target,
        "step_to_target": clock.step,
        "seconds_to_target": clock.seconds,
        "weights_checksum": checksum,
        "train_rows": t.train_rows,
        "test_rows": t.test_rows,
    }
    if writes and t.export_uri:
        out = Path(tempfile.mkdtemp(prefix="export-", dir=ctx.work_dir))
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, out / "model.pt")
        (out / "metrics.json").write_bytes(md.metrics_doc(**metrics))
        ctx.storage.publish_dir(out, t.export_uri, overwrite=True)  # a rerun replaces its own export
        log.info("exported model.pt (state_dict) and metrics.json to %s", t.export_uri)
    return metrics
