"""Render cache: compiled jobs keyed by the spec's bytes and the compiler's own code.

A cache hit skips loading, validation and compilation (and so never imports pydantic): the
stored objects are exactly what compiling the same bytes with the same specc produced. The key
covers the spec's path (it is named in the output), its bytes, and a fingerprint of every
compiler module and the runtime-config models (path, size, mtime), so editing specc or the
spec invalidates the entry. Entries are written atomically; an unreadable or corrupt entry
is treated as a miss. Set SPECC_NO_CACHE=1 to disable, SPECC_CACHE_DIR to move it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from compiler.compiled import CompiledJob
from compiler.digest import sha256

_FORMAT = "specc-render-cache-1"
_fingerprint: str | None = None


def enabled() -> bool:
    return os.environ.get("SPECC_NO_CACHE", "") in ("", "0")


def cache_dir() -> Path:
    explicit = os.environ.get("SPECC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "specc"


def fingerprint() -> str:
    """Identity of the compiler code that produced an entry."""
    global _fingerprint
    if _fingerprint is None:
        h = sha256(_FORMAT.encode())
        here = Path(__file__).resolve().parent
        files = [p for d in (here, here / "kinds") for p in sorted(d.glob("*.py"))]
        files += [here.parent / "runtime" / n for n in ("config.py", "contract.py", "errors.py")]
        files.append(here / "spec_schema.json")
        for p in files:
            st = p.stat()
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        _fingerprint = h.hexdigest()
    return _fingerprint


def key(source: str, data: bytes) -> str:
    return sha256(fingerprint().encode() + b"\0" + source.encode() + b"\0" + data).hexdigest()


def get(source: str, data: bytes) -> CompiledJob | None:
    """The cached compiled job for these bytes, or None."""
    if not enabled():
        return None
    path = cache_dir() / key(source, data)[:2] / key(source, data)
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        return CompiledJob.from_json(doc)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def put(source: str, data: bytes, job: CompiledJob) -> None:
    """Store a compiled job; failures (read-only home, full disk) are ignored."""
    if not enabled():
        return
    k = key(source, data)
    path = cache_dir() / k[:2] / k
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{k}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(job.to_json(), separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
