"""Render cache: compiled jobs keyed by the spec's bytes and the compiler's own code.

A cache hit skips loading, validation and compilation (and so never imports pydantic): the
stored objects are exactly what compiling the same bytes with the same specc produced. The key
covers the spec's path (it is named in the output), its bytes, and a fingerprint of every
compiler module and data file and the runtime modules a compile imports (path, size, mtime), so editing specc or the
spec invalidates the entry. Entries are written atomically; an unreadable or corrupt entry
is treated as a miss. Set SPECC_NO_CACHE=1 to disable, SPECC_CACHE_DIR to move it.
"""

from __future__ import annotations

import json
import os

from compiler.compiled import CompiledJob
from compiler.digest import sha256

_FORMAT = "specc-render-cache-1"
_fingerprint: str | None = None


def enabled() -> bool:
    return os.environ.get("SPECC_NO_CACHE", "") in ("", "0")


def cache_dir() -> str:
    explicit = os.environ.get("SPECC_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "specc")


def sources() -> list[str]:
    """Every module and data file a compile reads: the compiler's own, and the runtime modules
    it imports (config models, contract, credential rules, exit codes)."""
    # os.path rather than pathlib: this runs on every render, and pathlib is a slow import.
    here = os.path.dirname(os.path.realpath(__file__))
    kinds = os.path.join(here, "kinds")
    files = [os.path.join(d, n) for d in (here, kinds) for n in sorted(os.listdir(d)) if n.endswith((".py", ".json"))]
    return files + [os.path.join(os.path.dirname(here), "runtime", n)
                    for n in ("__init__.py", "config.py", "contract.py", "credentials.py", "errors.py")]


def fingerprint() -> str:
    """Identity of the compiler code that produced an entry."""
    global _fingerprint
    if _fingerprint is None:
        h = sha256(_FORMAT.encode())
        for p in sources():
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        _fingerprint = h.hexdigest()
    return _fingerprint


def key(source: str, data: bytes) -> str:
    """The entry of a spec's path and bytes (with its defaults file's) under this compiler."""
    return sha256(fingerprint().encode() + b"\0" + source.encode() + b"\0" + data).hexdigest()


def get(k: str) -> CompiledJob | None:
    """The cached compiled job of entry `k`, or None."""
    if not enabled():
        return None
    try:
        with open(os.path.join(cache_dir(), k[:2], k), "rb") as f:
            doc = json.loads(f.read())
        return CompiledJob.from_json(doc)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def put(k: str, job: CompiledJob) -> None:
    """Store a compiled job as entry `k`; failures (read-only home, full disk) are ignored."""
    if not enabled():
        return
    folder = os.path.join(cache_dir(), k[:2])
    tmp = os.path.join(folder, f".{k}.{os.getpid()}.tmp")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(job.to_json(), separators=(",", ":")))
        os.replace(tmp, os.path.join(folder, k))
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
