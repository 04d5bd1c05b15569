"""The result of compiling one spec: plain Kubernetes objects, importable without pydantic.

A plain class (not a dataclass) so the render-cache path imports as little as possible.
"""

from __future__ import annotations


class CompiledJob:
    """The objects of one spec, in apply order (ConfigMap first), and where they came from."""

    __slots__ = ("source", "spec_name", "namespace", "job_name", "objects")

    def __init__(self, source: str, spec_name: str, namespace: str, job_name: str, objects: tuple):
        self.source = source
        self.spec_name = spec_name
        self.namespace = namespace
        self.job_name = job_name
        self.objects = tuple(objects)

    @property
    def workload(self) -> dict:
        return self.objects[-1]

    def to_json(self) -> dict:
        """A JSON-ready form (for the render cache)."""
        return {"source": self.source, "spec_name": self.spec_name, "namespace": self.namespace,
                "job_name": self.job_name, "objects": list(self.objects)}

    @classmethod
    def from_json(cls, d: dict) -> "CompiledJob":
        return cls(d["source"], d["spec_name"], d["namespace"], d["job_name"], tuple(d["objects"]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompiledJob) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"CompiledJob({self.source!r}, {self.job_name!r}, {len(self.objects)} objects)"
