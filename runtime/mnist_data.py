"""MNIST idx files, the seeded train/test split and the per-replica batch schedule (numpy only).

Shared by the TensorFlow and PyTorch MNIST trainers and by bench/gpu_check.py, so this module
imports nothing but the standard library, numpy and runtime.errors (no pydantic, no frameworks).
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from runtime.errors import ConfigError, DataError, RuntimeFailure, Terminated

IMAGES_FILE = "t10k-images-idx3-ubyte.gz"
LABELS_FILE = "t10k-labels-idx1-ubyte.gz"
#: Test accuracy the bench and the metrics' "time to target" refer to.
TARGET_ACCURACY = 0.95

# idx type byte -> big-endian numpy dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, source: str) -> np.ndarray:
    """Parse the bytes of an idx file (gzip-compressed or raw); DataError names `source`."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(source, f"corrupt or truncated gzip data ({exc})") from None
    if len(data) < 4:
        raise DataError(source, f"too short for an idx header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(source, f"not an idx file (magic {data[:4].hex()})")
    kind, ndim = data[2], data[3]
    if kind not in _IDX_TYPES:
        raise DataError(source, f"unknown idx element type 0x{kind:02x}")
    if ndim == 0:
        raise DataError(source, "idx header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(source, f"truncated idx header: {ndim} dimensions need {header} bytes, file has {len(data)}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[kind])
    want = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(data) - header
    if have < want:
        raise DataError(source, f"truncated: dimensions {'x'.join(map(str, dims))} need {want} data bytes, file has {have}")
    if have > want:
        raise DataError(source, f"{have - want} unexpected bytes after the {want} data bytes")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | Path, source: str | None = None) -> np.ndarray:
    """Read one idx file from a local path; errors name `source` (default: the path)."""
    source = source or str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(source, f"cannot read: {exc.strerror or exc}") from None
    return parse_idx(data, source)


def load_mnist(images: np.ndarray, labels: np.ndarray, images_source: str, labels_source: str) -> tuple[np.ndarray, np.ndarray]:
    """Check parsed idx arrays and return (x float32 [N, 784] in [0, 1], y int64 [N])."""
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(images_source, f"expected unsigned-byte images of N x 28 x 28, got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(labels_source, f"expected unsigned-byte labels of N, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DataError(labels_source, f"{len(labels)} labels for {len(images)} images in {images_source}")
    if len(labels) and labels.max() > 9:
        raise DataError(labels_source, f"label {int(labels.max())} is not a digit 0-9")
    x = images.reshape(len(images), 784).astype(np.float32) / np.float32(255.0)
    return x, labels.astype(np.int64)


def read_mnist_dir(directory: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the MNIST test images and labels from a local folder."""
    d = Path(directory)
    img, lab = d / IMAGES_FILE, d / LABELS_FILE
    return load_mnist(read_idx(img), read_idx(lab), str(img), str(lab))


@dataclass(frozen=True)
class Split:
    """The seeded train/test split of the 10,000 MNIST images."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def split(x: np.ndarray, y: np.ndarray, train_rows: int, test_rows: int, seed: int) -> Split:
    """Permute all rows with `seed`; the first train_rows train, the next test_rows test."""
    n = len(x)
    if train_rows + test_rows > n:
        raise ConfigError(f"train_rows {train_rows} + test_rows {test_rows} exceed the {n} images available")
    perm = np.random.default_rng(seed).permutation(n)
    tr, te = perm[:train_rows], perm[train_rows:train_rows + test_rows]
    return Split(x[tr], y[tr], x[te], y[te])


class BatchSchedule:
    """Which training rows each replica uses at each step.

    Every replica holds the same per-epoch permutation (seeded by seed and epoch); at step s
    replica r takes the r-th of `world` consecutive slices of `batch_size` rows, so the replicas
    of one step see disjoint rows and together one global batch of batch_size * world rows.
    """

    def __init__(self, n: int, batch_size: int, rank: int, world: int, seed: int):
        self.n, self.batch_size, self.rank, self.world, self.seed = n, batch_size, rank, world, seed
        self.steps_per_epoch = n // (batch_size * world)
        if self.steps_per_epoch < 1:
            raise ConfigError(f"batch_size {batch_size} x {world} replica(s) exceeds the {n} training rows")
        self._epoch = -1
        self._perm: np.ndarray | None = None

    def indices(self, step: int) -> np.ndarray:
        """Row indices of this replica's batch at `step` (0-based)."""
        epoch, k = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self._epoch = epoch
        start = (k * self.world + self.rank) * self.batch_size
        return self._perm[start:start + self.batch_size]


def weights_checksum(arrays: Iterable[np.ndarray]) -> str:
    """sha256 (first 16 hex digits) of the weights as float32 bytes, in order: equal iff bitwise equal."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a, dtype="<f4"))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def join_uri(directory: str, name: str) -> str:
    """`directory` (s3://, file:// or a path, with or without a final /) joined with a file name."""
    return directory.rstrip("/") + "/" + name


class TargetClock:
    """Remembers the first step and elapsed seconds at which test accuracy reached the target."""

    def __init__(self, target: float = TARGET_ACCURACY):
        self.target = target
        self.step: int | None = None
        self.seconds: float | None = None

    def observe(self, step: int, accuracy: float, seconds: float) -> None:
        if self.step is None and accuracy >= self.target:
            self.step, self.seconds = step, round(seconds, 3)


def cpu_limit(root: str | Path = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: the cgroup CPU quota (a pod's cpu limit) rounded up, capped by
    the CPU affinity. Frameworks default to one thread per host core, which a quota throttles."""
    import math
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    root = Path(root)
    quota = period = None
    try:
        q, p = (root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000" or "150000 100000"
        quota, period = (None if q == "max" else int(q)), int(p)
    except (OSError, ValueError):
        try:  # cgroup v1
            quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
            period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            pass
    if quota and quota > 0 and period:
        cpus = min(cpus, max(1, math.ceil(quota / period)))
    return max(1, cpus)


def load_split(storage, data_dir: str, train_rows: int, test_rows: int, seed: int) -> Split:
    """Read the idx files under `data_dir` through a runtime.storage.Storage and split them."""
    img_uri, lab_uri = join_uri(data_dir, IMAGES_FILE), join_uri(data_dir, LABELS_FILE)
    images = read_idx(storage.local_file(img_uri), img_uri)
    labels = read_idx(storage.local_file(lab_uri), lab_uri)
    x, y = load_mnist(images, labels, img_uri, lab_uri)
    return split(x, y, train_rows, test_rows, seed)


def final_metrics(*, framework: str, device: str, world: int, cfg, first: int, global_batch: int,
                  test_acc: float, test_loss: float, loss: float, total_seconds: float,
                  step_seconds: float, clock: "TargetClock", checksum: str) -> dict:
    """metrics.json content shared by the TensorFlow and PyTorch trainers."""
    return {
        "framework": framework,
        "device": device,
        "world_size": world,
        "steps": cfg.max_steps,
        "resumed_from_step": first,
        "batch_size": cfg.batch_size,
        "global_batch_size": global_batch,
        "learning_rate": cfg.learning_rate,
        "test_accuracy": round(test_acc, 6),
        "test_loss": round(test_loss, 6),
        "final_loss": round(loss, 6) if loss == loss else None,  # NaN: nothing left to train after a resume
        "train_seconds": round(total_seconds, 3),
        "samples_per_s": round((cfg.max_steps - first) * global_batch / step_seconds, 1) if step_seconds else None,
        "target_accuracy": clock.target,
        "step_to_target": clock.step,
        "seconds_to_target": clock.seconds,
        "weights_checksum": checksum,
        "train_rows": cfg.train_rows,
        "test_rows": cfg.test_rows,
    }


def metrics_doc(**fields) -> bytes:
    """metrics.json bytes: sorted keys, indented, final newline."""
    import json

    return (json.dumps(fields, indent=2, sort_keys=True) + "\n").encode()


class StepCheckpoints:
    """The step schedule shared by the MNIST trainers' checkpoints (a no-op without checkpoint_uri):
    where the newest checkpoint is, when one is due, and the check of a restored step."""

    def __init__(self, ctx, cfg, log):
        self.ctx, self.every, self.max_steps, self.log = ctx, cfg.checkpoint_every, cfg.max_steps, log
        self.store = None
        if cfg.checkpoint_uri:
            from runtime.checkpoint import CheckpointStore

            self.store = CheckpointStore(cfg.checkpoint_uri, ctx.storage, work_dir=ctx.work_dir)

    def latest_folder(self):
        """The newest checkpoint's local folder, or None for a fresh start."""
        if self.store is None:
            return None
        folder = self.store.latest()
        if folder is None:
            self.log.info("no checkpoint under %s: starting at step 0", self.store.uri)
        return folder

    def resumed(self, step: int) -> int:
        """Check and log a restored step; return it."""
        if step > self.max_steps:
            raise ConfigError(f"checkpoint {self.store.uri} is at step {step}, beyond max_steps {self.max_steps}")
        self.log.info("resumed from checkpoint %s at step %d", self.store.uri_for(step), step)
        return step

    def due(self, step: int) -> bool:
        return self.store is not None and (step % self.every == 0 or step == self.max_steps)

    def write(self, step: int, write_local, *, publish: bool, quiet: bool) -> None:
        """write_local(folder) fills a scratch folder; with `publish` it goes to the store; the
        folder is removed. A save storage refuses is logged and training goes on when `quiet` (the
        previous checkpoint stays the one to resume from); Terminated always propagates."""
        local = Path(tempfile.mkdtemp(prefix="ckpt-", dir=self.ctx.work_dir))
        try:
            write_local(local)
            if publish:
                self.log.info("checkpoint at step %d: %s", step, self.store.save(local, step))
        except RuntimeFailure as exc:
            if not quiet or isinstance(exc, Terminated):
                raise
            self.log.warning("checkpoint at step %d not saved (training goes on): %s", step, exc)
        finally:
            shutil.rmtree(local, ignore_errors=True)
