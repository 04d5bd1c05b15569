"""Constants and plain-Python rules of the spec language, importable without pydantic.

compiler/spec.py builds its models from these; the builders and the snapshot validator
(compiler/fastvalid.py) use them without importing the models.
"""

from __future__ import annotations

API_VERSION = "specc.dev/v1alpha1"
KIND = "TrainingJob"

#: Default runtime image: built from this repository's Dockerfile, tag = package version.
DEFAULT_IMAGE = "ghcr.io/specc-dev/specc-runtime:0.1.0"

TF_REPLICA_TYPES = ("Chief", "Master", "PS", "Worker", "Evaluator")
PYTORCH_REPLICA_TYPES = ("Master", "Worker")
JOB_REPLICA_TYPES = ("Worker",)


def count_shorthand(v: object) -> object:
    """Allow `Worker: 2` as shorthand for `Worker: {count: 2}`."""
    if isinstance(v, int) and not isinstance(v, bool):
        return {"count": v}
    return v
