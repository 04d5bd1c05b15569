"""Plain-Python rules of the runtime-config models, and the constants the compiler needs.

Importing this module imports no pydantic: the compiler's snapshot validator
(compiler/fastvalid.py) calls these same functions, so they are the one definition of each rule.
"""

from __future__ import annotations

import re

RUNTIME_API_VERSION = "specc.dev/runtime/v1"

#: Where the ConfigMap holding the runtime config is mounted in every container.
CONFIG_MOUNT_DIR = "/etc/specc"
CONFIG_FILE_NAME = "config.json"
CONFIG_PATH = f"{CONFIG_MOUNT_DIR}/{CONFIG_FILE_NAME}"
#: Environment variable that points the runtime at its config file (set in every container).
CONFIG_ENV = "SPECC_CONFIG"

#: Which frameworks each built-in trainer runs under.
TRAINER_FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "recommender": ("tensorflow",),
    "income": ("sklearn",),
    "mnist": ("tensorflow", "pytorch"),
}

_URI_RE = re.compile(r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^\x00-\x1f\x7f]*)?|file://[^\x00-\x1f\x7f]+|/[^\x00-\x1f\x7f]*)\Z")


def check_uri(value: str) -> str:
    """An s3://bucket/key URI, a file:// URI or an absolute path, without '..' segments."""
    if not _URI_RE.match(value):
        raise ValueError("must be an s3://bucket/key URI, a file:// URI or an absolute path")
    if any(part == ".." for part in value.split("/")):
        raise ValueError("must not contain '..' path segments")
    return value


def optional_uri(value: str | None) -> str | None:
    """check_uri, letting None through."""
    return value if value is None else check_uri(value)


def nonzero_jobs(value: int) -> int:
    """n_jobs: -1 (all cores) or a positive number."""
    if value == 0:
        raise ValueError("must be -1 (all cores) or a positive number")
    return value


def directory_source(cfg):
    """A recommender config names its export directory or where to read it from."""
    if cfg.export_directory is None and cfg.directory_uri is None:
        raise ValueError("set export_directory or directory_uri")
    return cfg


def dump_runtime_config(cfg) -> str:
    """Serialize a runtime config as stable, sorted, indented JSON with a final newline."""
    import json

    return json.dumps(cfg.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
