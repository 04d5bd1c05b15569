"""Find spec files: the one part of loading that a render-cache hit still needs.

Kept free of the YAML and diagnostics machinery (imported only to report a problem) so that
`specc render` of unchanged specs starts fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Sequence

SPEC_SUFFIXES = (".yaml", ".yml")


def _diag(path: str, line: int, col: int, message: str):
    from compiler.diagnostics import Diagnostic

    return Diagnostic(path, line, col, "", message)


def discover(paths: Sequence[str | Path]) -> list[Path]:
    """Expand the given paths into spec files: files as given; directories -> their *.yaml/*.yml
    files, recursively (hidden files and folders skipped); sorted and deduplicated.

    Missing paths and directories without specs raise SpecError (located at 1:1 of the path).
    """
    found: dict[Path, None] = {}
    diags: list = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files = sorted(
                f for f in p.rglob("*")
                if f.suffix in SPEC_SUFFIXES and f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not files:
                diags.append(_diag(str(p), 1, 1, f"no .yaml/.yml specs in {p}"))
            for f in files:
                found.setdefault(f, None)
        elif p.exists():
            found.setdefault(p, None)
        else:
            diags.append(_diag(str(p), 1, 1, "file not found"))
    if diags:
        from compiler.diagnostics import SpecError

        raise SpecError(diags)
    return sorted(found, key=lambda f: (os.path.normpath(f), str(f)))
