"""Numbered training checkpoints in one durable folder (a PVC path or an s3:// prefix).

Layout under the store's URI:

    <uri>/ckpt-<step>/...   one folder per checkpoint, written whole by `Storage.publish_dir`
    <uri>/latest            text `ckpt-<step>`, written only after that folder is complete

The `latest` pointer is the only source of truth: a writer killed while saving leaves the
previous pointer (and its folder) intact, so readers always resume from a complete checkpoint.
After each save only the newest `keep` (default 2) folders are kept; leftovers of interrupted
saves (`.staging-` folders/prefixes) are removed too. What a checkpoint folder holds is the
trainer's business (weights, optimizer state, a JSON of epoch/history/RNG state...).

Usage (one writer: the chief; every replica may read):

    store = CheckpointStore(cfg.checkpoint_uri, ctx.storage)
    found = store.latest()            # local folder of the newest checkpoint, or None
    ...
    store.save(local_dir, step)       # atomic for readers; returns the checkpoint URI

Local paths go through `runtime.storage.local_path`, so `SPECC_PATH_MAP` applies (`/train/ckpt`
lands in the local runner's volume folder). Importing this module imports no ML framework.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from pathlib import Path

from runtime.storage import is_s3, local_path, split_s3_uri

log = logging.getLogger("specc.checkpoint")

POINTER = "latest"
_NAME_RE = re.compile(r"^ckpt-(\d{1,18})$")
_STAGING_RE = re.compile(r"^\.?ckpt-\d{1,18}\.(staging|old)-[0-9a-f]+$")


class CheckpointStore:
    """Numbered checkpoint folders plus a `latest` pointer under one PVC path or s3:// prefix."""

    def __init__(self, uri: str, storage, *, keep: int = 2, work_dir: str | Path | None = None):
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.uri = uri.rstrip("/")
        self.storage = storage
        self.keep = keep
        self._work_dir = Path(work_dir) if work_dir else None
        self._downloads: list[Path] = []

    # ------------------------------------------------------------------ reading

    @property
    def is_local(self) -> bool:
        """True when the store is a filesystem folder (PVC path or file:// URI)."""
        return not is_s3(self.uri)

    @property
    def local_path(self) -> Path | None:
        """The store's folder on this machine (after SPECC_PATH_MAP); None for s3://."""
        return None if is_s3(self.uri) else local_path(self.uri)

    def uri_for(self, step: int) -> str:
        """The URI of checkpoint `step`'s folder (with a trailing slash)."""
        return f"{self.uri}/ckpt-{int(step)}/"

    def latest_step(self) -> int | None:
        """The step the `latest` pointer names, or None when there is no (readable) pointer."""
        pointer = f"{self.uri}/{POINTER}"
        if not self.storage.exists(pointer):
            return None
        text = self.storage.read_bytes(pointer).decode("utf-8", "replace").strip()
        m = _NAME_RE.match(text)
        if not m:
            log.warning("ignoring checkpoint pointer %s: unexpected content %r", pointer, text[:60])
            return None
        return int(m.group(1))

    def latest(self) -> Path | None:
        """A local folder holding the newest complete checkpoint, or None when there is none.

        Local stores return the checkpoint folder itself (treat it as read-only); s3:// stores
        download it into a fresh temporary folder (under work_dir when given).
        """
        step = self.latest_step()
        if step is None:
            return None
        if self.is_local:
            path = local_path(self.uri_for(step))
            if not path.is_dir():
                log.warning("checkpoint pointer %s/%s names ckpt-%d, which is missing", self.uri, POINTER, step)
                return None
            return path
        dest = Path(tempfile.mkdtemp(prefix=f"ckpt-{step}-", dir=self._work_dir))
        self._downloads.append(dest)
        self.storage.download_dir(self.uri_for(step), dest)
        return dest

    # ------------------------------------------------------------------ writing

    def save(self, local_dir: str | Path, step: int) -> str:
        """Publish `local_dir` as checkpoint `step`, then point `latest` at it, then prune.

        Readers never see a partial checkpoint: the folder is published whole (local: copy to a
        hidden sibling + rename; s3: staged, verified, copied) before the pointer is written.
        A checkpoint with the same step is replaced. Returns the checkpoint's URI.
        """
        target = self.uri_for(step)
        self.storage.publish_dir(local_dir, target, overwrite=True)
        self.storage.write_bytes(f"{self.uri}/{POINTER}", f"ckpt-{int(step)}\n".encode())
        self._prune(int(step))
        return target

    def _prune(self, newest: int) -> None:
        """Delete all but the newest `keep` checkpoints (never `newest`) and staging leftovers."""
        try:
            if self.is_local:
                self._prune_local(newest)
            else:
                self._prune_s3(newest)
        except Exception as exc:  # pruning is housekeeping: never fail a save over it
            log.warning("could not prune old checkpoints under %s: %s", self.uri, exc)

    def _doomed(self, names: set[str], newest: int) -> set[str]:
        """Folder names to delete: checkpoints other than `newest` and the keep-1 steps below it
        (steps above `newest` are stale leftovers of an abandoned timeline), and staging leftovers."""
        below = sorted((int(m.group(1)) for n in names if (m := _NAME_RE.match(n)) and int(m.group(1)) < newest),
                       reverse=True)
        keep = {newest, *below[: self.keep - 1]}
        return {n for n in names if ((m := _NAME_RE.match(n)) and int(m.group(1)) not in keep) or _STAGING_RE.match(n)}

    def _prune_local(self, newest: int) -> None:
        root = local_path(self.uri)
        for name in self._doomed({p.name for p in root.iterdir() if p.is_dir()}, newest):
            shutil.rmtree(root / name, ignore_errors=True)

    def _prune_s3(self, newest: int) -> None:
        from minio.deleteobjects import DeleteObject

        bucket, key = split_s3_uri(self.uri + "/")
        by_top: dict[str, list[str]] = {}
        for uri in self.storage.list(self.uri + "/"):
            rel = uri[len(self.uri) + 1:]
            if "/" in rel:
                by_top.setdefault(rel.split("/", 1)[0], []).append(split_s3_uri(uri)[1])
        # s3 staging prefixes are siblings of the target (`ckpt-N.staging-x/`) inside the store.
        doomed = [k for name in self._doomed(set(by_top), newest) for k in by_top[name]]
        if doomed:
            errors = list(self.storage.client.remove_objects(bucket, [DeleteObject(k) for k in doomed]))
            if errors:
                log.warning("could not delete %d old checkpoint objects under %s", len(errors), self.uri)

    def cleanup(self) -> None:
        """Remove the temporary folders `latest()` downloaded (s3 stores)."""
        for d in self._downloads:
            shutil.rmtree(d, ignore_errors=True)
        self._downloads.clear()
