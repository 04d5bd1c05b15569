"""Book section 5: the same MNIST network under PyTorch DistributedDataParallel (PyTorchJob).

Reads MASTER_ADDR / MASTER_PORT / WORLD_SIZE / RANK as the training operator sets them
(init_method env://); gloo on CPU, nccl when CUDA is available (SPECC_TORCH_BACKEND overrides,
e.g. gloo for several ranks sharing one GPU). Each rank trains on its slice of every global batch
(runtime.mnist_data.BatchSchedule); DDP averages the gradients, so all ranks hold the same weights.
Rank 0 exports model.pt (state_dict) plus metrics.json; every rank logs its weights checksum.
No TensorBoard summaries (the tensorboard package is not part of the torch extra): evaluation
on the held-out rows runs every 10 steps on rank 0 and is logged every 100.

Faults. With `checkpoint_uri` (PVC path or s3://, runtime.checkpoint.CheckpointStore) rank 0
saves model + optimizer state_dict + step + the torch RNG state (state.pt) every
`checkpoint_every` steps and at the last step; on start every rank loads the newest one (all
ranks read the pointer before the first all-reduce, and rank 0 cannot save before K of them,
so all load the same step) and trains on to `max_steps` in total. Every rank seeds the same
RNG, so restoring rank 0's RNG state (CPU, and CUDA when training there) on all ranks makes a
resumed run repeat the batches and dropout masks of an uninterrupted one (tested on CPU). SIGTERM: the stop flag rides on the loss all-reduce every
step already does, so all ranks stop after the same step; rank 0 saves and all exit 143. Joining
is bounded by SPECC_RENDEZVOUS_TIMEOUT seconds (default 300): a master that is not up yet, or a
worker that never comes, is a Rendezvous error (exit 140, retryable: the operator restarts the
pod), and so is a peer lost mid-training (gloo's "connection reset/closed by peer").

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
from runtime.errors import ConfigError, DataError, Rendezvous, RuntimeFailure, Terminated

if TYPE_CHECKING:
    from runtime.__main__ import Context
    from runtime.config import RuntimeConfig

log = logging.getLogger("specc.mnist_torch")

EVAL_EVERY = 10
#: How long a collective may wait for the other ranks once the group is formed.
COLLECTIVE_TIMEOUT_S = 600
#: Seconds a rank waits for the master's store and the other ranks (env SPECC_RENDEZVOUS_TIMEOUT).
RENDEZVOUS_TIMEOUT_ENV = "SPECC_RENDEZVOUS_TIMEOUT"
DEFAULT_RENDEZVOUS_TIMEOUT = 300.0


def rendezvous_timeout() -> float:
    """SPECC_RENDEZVOUS_TIMEOUT in seconds (> 0), default 300."""
    raw = os.environ.get(RENDEZVOUS_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_RENDEZVOUS_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 10_000_000:  # also refuses nan and inf
        raise ConfigError(f"{RENDEZVOUS_TIMEOUT_ENV}={raw!r} must be a positive number of seconds")
    return value


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
    """Form the process group: the master's TCPStore (bounded wait), then the backend."""
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise ConfigError(f"WORLD_SIZE is {world} but {' and '.join(missing)} is not set")
    try:
        port = int(os.environ["MASTER_PORT"])
    except ValueError:
        raise ConfigError(f"MASTER_PORT={os.environ['MASTER_PORT']!r} is not a port number") from None
    timeout = rendezvous_timeout()
    backend = os.environ.get("SPECC_TORCH_BACKEND") or ("nccl" if device.type == "cuda" else "gloo")
    host = os.environ["MASTER_ADDR"]
    where = f"{host}:{port}"
    log.info("joining process group at %s as rank %d of %d (%s), waiting at most %gs", where, rank, world, backend, timeout)
    try:
        # The master listens and waits for every worker; workers retry connecting until the timeout.
        store = dist.TCPStore(host, port, world, is_master=rank == 0, timeout=datetime.timedelta(seconds=timeout))
        dist.init_process_group(backend, store=store, rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=max(timeout, COLLECTIVE_TIMEOUT_S)))
    except (RuntimeError, ValueError, OSError) as exc:
        raise Rendezvous(f"cannot join the process group at {where} within {timeout:g}s as rank {rank} of {world}: "
                         f"{_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]


def _lost_peer(dist, exc: BaseException) -> bool:
    """True for the errors a collective raises when another rank went away."""
    text = str(exc)
    return isinstance(exc, getattr(dist, "DistError", ())) or any(
        m in text for m in ("/gloo/", "Connection reset by peer", "Connection closed by peer", "NCCL"))


class _Checkpoints(md.StepCheckpoints):
    """state.pt (model, optimizer, step, RNG) in a CheckpointStore; a no-op without checkpoint_uri."""

    def __init__(self, torch, ctx, t, rank: int):
        super().__init__(ctx, t, log)
        self.torch, self.rank = torch, rank

    def restore(self, model, opt, device) -> int:
        """Load the newest checkpoint into model and optimizer (every rank); return its step or 0."""
        folder = self.latest_folder()
        if folder is None:
            return 0
        path = folder / "state.pt"
        try:
            try:
                state = self.torch.load(path, map_location=device, weights_only=True)
            except OSError:
                raise
            except Exception:  # torch.load raises whatever its unpickler hit (KeyError, EOFError...)
                raise DataError(str(path), "cannot restore the checkpoint: not a readable torch checkpoint") from None
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            self.torch.set_rng_state(state["rng"].cpu())
            if device.type == "cuda" and "cuda_rng" in state:  # dropout on a GPU draws from its own generator
                self.torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
            step = int(state["step"])
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise DataError(str(path), f"cannot restore the checkpoint: {' '.join(str(exc).split())[:240]}") from None
        finally:
            self.store.cleanup()
        return self.resumed(step)

    def save(self, model, opt, step: int, *, quiet: bool = True) -> None:
        """Rank 0 writes state.pt into the store; a refused periodic save is logged (quiet)."""
        if self.rank != 0:
            return
        state = {"step": step, "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "rng": self.torch.get_rng_state()}
        device = next(model.parameters()).device
        if device.type == "cuda":
            state["cuda_rng"] = self.torch.cuda.get_rng_state(device)
        self.write(step, lambda local: self.torch.save(state, local / "state.pt"), publish=True, quiet=quiet)

    def stop(self, model, opt, step: int) -> None:
        """All ranks agreed to stop after `step`: rank 0 saves, then every rank raises Terminated."""
        why = "SIGTERM" if self.ctx.stop_requested else "SIGTERM to another rank"
        if self.store is None:
            raise Terminated(f"terminated by {why} at step {step} (no checkpoint_uri: progress is lost)")
        try:
            self.save(model, opt, step, quiet=False)
        except RuntimeFailure as exc:
            raise Terminated(f"terminated by {why} at step {step}; checkpoint not saved: {exc}") from None
        raise Terminated(f"terminated by {why} at step {step}" + ("; checkpoint saved" if self.rank == 0 else ""))


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
    ckpt = _Checkpoints(torch, ctx, t, rank)
    first = ckpt.restore(model, opt, device)
    ctx.check_stop()

    clock = md.TargetClock()
    step_seconds = 0.0
    loss = float("nan")
    start = time.perf_counter()
    for step in range(first + 1, t.max_steps + 1):
        idx = torch.from_numpy(sched.indices(step - 1)).to(device)
        s = time.perf_counter()
        try:
            loss_t, _ = train_step(net, opt, x_train[idx], y_train[idx])
            # [loss, stop flag]: one all-reduce gives the global batch's mean loss (as the TF
            # trainer reports) and tells every rank whether any of them got SIGTERM.
            both = torch.stack([loss_t, torch.tensor(float(ctx.stop_requested), device=loss_t.device)])
            if dist is not None:
                dist.all_reduce(both)
                both[0] /= world
            loss, stops = (float(v) for v in both.cpu())
        except RuntimeError as exc:
            if dist is None or not _lost_peer(dist, exc):
                raise
            raise Rendezvous(f"lost a peer rank at step {step}: {_first_line(exc)}") from None
        step_seconds += time.perf_counter() - s
        if stops > 0:
            ckpt.stop(model, opt, step)
        if ckpt.due(step):
            ckpt.save(model, opt, step)
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
    metrics = md.final_metrics(
        framework="pytorch", device=device_name, world=world, cfg=t, first=first, global_batch=global_batch,
        test_acc=test_acc, test_loss=test_loss, loss=loss, total_seconds=total_seconds,
        step_seconds=step_seconds, clock=clock, checksum=checksum,
    )
    if writes and t.export_uri:
        out = Path(tempfile.mkdtemp(prefix="export-", dir=ctx.work_dir))
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, out / "model.pt")
        (out / "metrics.json").write_bytes(md.metrics_doc(**metrics))
        ctx.storage.publish_dir(out, t.export_uri, overwrite=True)  # a rerun replaces its own export
        log.info("exported model.pt (state_dict) and metrics.json to %s", t.export_uri)
    return metrics
