"""What rendered objects ask the cluster for: the replicas, GPUs, CPU and memory requested by
the pods of any workload kind, summed exactly (compiler/quantity.py reads the quantities)."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from compiler.quantity import parse_quantity

#: Resources counted as GPUs: `nvidia.com/gpu`, `amd.com/gpu`, any `<vendor>/gpu`.
GPU_SUFFIX = "/gpu"

@dataclass
class Requests:
    """Replicas and the resources they request, summed (Kubernetes takes a limit as the request
    when only the limit is set)."""

    replicas: int = 0
    cpu: Fraction = Fraction(0)
    memory: Fraction = Fraction(0)
    gpus: dict[str, Fraction] = field(default_factory=dict)
    #: Quantities that could not be read ("TFJob spec...cpu: 'abc'"), left out of the sums.
    unreadable: list[str] = field(default_factory=list)

    def __add__(self, other: "Requests") -> "Requests":
        gpus = dict(self.gpus)
        for name, n in other.gpus.items():
            gpus[name] = gpus.get(name, Fraction(0)) + n
        return Requests(self.replicas + other.replicas, self.cpu + other.cpu, self.memory + other.memory,
                        dict(sorted(gpus.items())), self.unreadable + other.unreadable)

    @property
    def gpu_count(self) -> Fraction:
        return sum(self.gpus.values(), Fraction(0))

    def scaled(self, n: int) -> "Requests":
        return Requests(self.replicas * n, self.cpu * n, self.memory * n,
                        {k: v * n for k, v in self.gpus.items()}, list(self.unreadable))


def _container(c: dict, where: str) -> Requests:
    res = c.get("resources") if isinstance(c, dict) else None
    return _resources(res if isinstance(res, dict) else {}, where)


def _resources(res: dict, where: str) -> Requests:
    """The requests of one resources block ({requests, limits})."""
    requests = res.get("requests") if isinstance(res.get("requests"), dict) else {}
    limits = res.get("limits") if isinstance(res.get("limits"), dict) else {}
    out = Requests()
    for name in sorted({*requests, *limits}):
        raw = requests.get(name, limits.get(name))
        if name not in ("cpu", "memory") and not name.endswith(GPU_SUFFIX):
            continue
        try:
            value = parse_quantity(raw)
        except ValueError:
            out.unreadable.append(f"{where}.{name}: {raw!r}")
            continue
        if name == "cpu":
            out.cpu += value
        elif name == "memory":
            out.memory += value
        else:
            out.gpus[name] = value
    return out


def _max(a: Requests, b: Requests) -> Requests:
    names = sorted({*a.gpus, *b.gpus})
    return Requests(0, max(a.cpu, b.cpu), max(a.memory, b.memory),
                    {n: max(a.gpus.get(n, Fraction(0)), b.gpus.get(n, Fraction(0))) for n in names})


def pod(spec: dict, where: str) -> Requests:
    """One pod's requests: its containers summed, or its largest init container if that is more
    (restartable init containers, i.e. sidecars, run alongside and add up)."""
    unreadable: list[str] = []
    running = Requests()
    for i, c in enumerate(spec.get("containers") or []):
        r = _container(c, f"{where}.containers[{i}]")
        unreadable += r.unreadable
        running = running + r
    sidecars = Requests()
    peak = running
    for i, c in enumerate(spec.get("initContainers") or []):
        r = _container(c, f"{where}.initContainers[{i}]")
        unreadable += r.unreadable
        if isinstance(c, dict) and c.get("restartPolicy") == "Always":
            sidecars = sidecars + r
        else:
            peak = _max(peak, sidecars + r)
    out = _max(peak, running + sidecars)
    out.replicas, out.unreadable = 1, unreadable
    return out


def _count(value, default: int = 1) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def workload(obj: dict) -> Requests:
    """What a rendered workload object starts, for any kind:

    - a TrainJob: `spec.trainer.numNodes` (default 1) nodes of `resourcesPerNode`;
    - otherwise every pod template found under `spec` (a mapping with `template.spec.containers`),
      `replicas` times (training-operator v1 replica specs) or `parallelism` times (batch/v1 Job).
    """
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    kind = obj.get("kind", "?")
    if kind == "TrainJob":
        trainer = spec.get("trainer") if isinstance(spec.get("trainer"), dict) else {}
        res = trainer.get("resourcesPerNode") if isinstance(trainer.get("resourcesPerNode"), dict) else {}
        node = _resources(res, f"{kind} spec.trainer.resourcesPerNode")
        node.replicas = 1
        return node.scaled(_count(trainer.get("numNodes")))
    total = Requests()
    for where, owner in _templates(spec, f"{kind} spec"):
        n = _count(owner.get("replicas", owner.get("parallelism")))
        total = total + pod(owner["template"]["spec"], f"{where}.template.spec").scaled(n)
    return total


def _templates(node, where: str):
    """(location, mapping holding a pod template) under a workload spec, in document order."""
    if isinstance(node, dict):
        t = node.get("template")
        if isinstance(t, dict) and isinstance(t.get("spec"), dict) and isinstance(t["spec"].get("containers"), list):
            yield where, node
            return
        for k, v in node.items():
            yield from _templates(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _templates(v, f"{where}[{i}]")
