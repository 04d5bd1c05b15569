"""Object names of a compiled job, and the content hash that makes a changed spec re-run.

The training operator never re-runs a finished job and never rolls a changed spec out to running
pods, so under GitOps a changed spec must become a new object: with `naming: hashed` (the
default) a job is named `<metadata.name>-<8 hex digits>`.

Hash stability policy:
- The hash covers every compiled object of the job (the workload, and the ConfigMap of a built-in
  trainer) as compiled under the spec's own name, in canonical JSON, prefixed by FORMAT_VERSION.
  It leaves out the `specc.dev/source` annotation (which file a spec lives in), so moving or
  renaming a spec file keeps its job. Anything that changes what runs changes the name.
- specc must render every unchanged spec to the same names in every release: a new name makes
  Argo CD create the job again (training runs again) and prune the old one. A change to the
  compiled output of existing specs is therefore a breaking change; new fields must render
  nothing when they are not set. tests/test_naming.py pins the names of the example specs.
- FORMAT_VERSION changes only when a release must re-run every job (a fix that makes the old
  output wrong); the release notes must say so, because every user's jobs re-run on their next
  sync. It has never changed.
"""

from __future__ import annotations

from compiler.digest import sha256
from compiler.emit import dump_json_compatible

#: Part of every hash: changing it renames (and so re-runs) every hashed job. See the policy above.
FORMAT_VERSION = "1"
#: Length of the suffix hashed naming appends: "-" and 8 hex digits.
HASH_SUFFIX_LEN = 9
#: Annotation naming the spec file an object came from (left out of the hash).
SOURCE_ANNOTATION = "specc.dev/source"


class Names:
    """The object names of one compiled job: `job` (the workload) and `config` (the ConfigMap
    holding the runtime config)."""

    __slots__ = ("job", "config")

    def __init__(self, job: str, config: str):
        self.job, self.config = job, config

    def __eq__(self, other: object) -> bool:
        return type(other) is Names and (other.job, other.config) == (self.job, self.config)

    def __hash__(self) -> int:
        return hash((self.job, self.config))

    def __repr__(self) -> str:
        return f"Names(job={self.job!r}, config={self.config!r})"

    @classmethod
    def for_job(cls, job_name: str) -> "Names":
        return cls(job=job_name, config=f"{job_name}-config")


def content_hash(objects: list[dict]) -> str:
    """8 hex digits of SHA-256 over the objects of a job compiled under the spec's own name and
    without a source annotation."""
    return sha256((FORMAT_VERSION + dump_json_compatible(objects)).encode()).hexdigest()[:8]
