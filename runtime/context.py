"""The replica's place in its job, read from the environment the training operator sets.

TFJob: TF_CONFIG = {"cluster": {type: [host:port, ...]}, "task": {"type", "index"}, "environment"}.
PyTorchJob: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK. Neither: a single process.
A Kubeflow Trainer v2 node gets one of these from runtime/jobset.py before it is read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Mapping

from runtime.errors import ConfigError

#: Replica types that run the training step under MultiWorkerMirroredStrategy (chief first).
_TRAINING_TYPES = ("chief", "master", "worker")


@dataclass(frozen=True)
class Task:
    """This replica: its type, index, the whole cluster, and whether it is the exporting one."""

    type: str = "worker"
    index: int = 0
    cluster: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rank: int = 0
    world_size: int = 1
    source: str = "single"  # "tf_config" | "torch" | "single"

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_chief(self) -> bool:
        """True for the replica that writes exports and metrics (rank 0)."""
        return self.rank == 0

    @property
    def name(self) -> str:
        return f"{self.type}-{self.index}"


def task_from_env(env: Mapping[str, str] | None = None) -> Task:
    """Read this replica's Task from TF_CONFIG, the PyTorch variables, or neither."""
    env = os.environ if env is None else env
    raw = env.get("TF_CONFIG", "").strip()
    if raw:
        return _from_tf_config(raw)
    if "WORLD_SIZE" in env and "RANK" in env:
        try:
            world, rank = int(env["WORLD_SIZE"]), int(env["RANK"])
        except ValueError as exc:
            raise ConfigError(f"WORLD_SIZE/RANK must be integers: {exc}") from None
        if world < 1 or not 0 <= rank < world:
            raise ConfigError(f"RANK {rank} is outside WORLD_SIZE {world}")
        kind = "master" if rank == 0 else "worker"
        return Task(type=kind, index=0 if rank == 0 else rank - 1, rank=rank, world_size=world, source="torch")
    return Task()


def _from_tf_config(raw: str) -> Task:
    try:
        doc = json.loads(raw)
        cluster = {str(k).lower(): tuple(str(a) for a in v) for k, v in doc.get("cluster", {}).items()}
        task = doc["task"]
        kind, index = str(task["type"]).lower(), int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"TF_CONFIG is not valid: {exc}") from None
    if kind not in cluster or not 0 <= index < len(cluster[kind]):
        raise ConfigError(f"TF_CONFIG task {kind}:{index} is not in its cluster")
    # Rank among the training replicas: chief/master first, then workers.
    order = [(t, i) for t in _TRAINING_TYPES for i in range(len(cluster.get(t, ())))]
    world = len(order)
    rank = order.index((kind, index)) if (kind, index) in order else -1
    return Task(type=kind, index=index, cluster=cluster, rank=rank, world_size=max(world, 1), source="tf_config")
