"""Find and read spec files: the part of loading that a render-cache hit still needs.

Kept free of the YAML and diagnostics machinery (imported only to report a problem) so that
`specc render` of unchanged specs starts fast.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from collections.abc import Sequence

SPEC_SUFFIXES = (".yaml", ".yml")
# A spec's path is written into every file rendered from it (header comment, source annotation)
# and into diagnostics: only letters, digits, combining marks, space and these are allowed.
_SAFE_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-+@=,~/")
MAX_FILE_BYTES = 1 << 20
"""Largest spec file accepted (1 MiB); bigger files are refused before they are read."""


def _diag(path: str, line: int, col: int, message: str):
    from compiler.diagnostics import Diagnostic

    return Diagnostic(path, line, col, "", message)


def pathname(path) -> str:
    """A path as pathlib writes it (`./specs//a.yaml` -> `specs/a.yaml`), without importing
    pathlib (and the URL parsing it pulls in) on the render path."""
    text = os.fspath(path)
    parts = [p for p in text.split("/") if p not in ("", ".")]
    lead = "//" if text.startswith("//") and not text.startswith("///") else "/" if text.startswith("/") else ""
    return (lead + "/".join(parts)) or "."


def is_spec_name(rel: str) -> bool:
    """A file, named relative to a searched folder ("/" between parts), that is taken for a spec:
    a .yaml/.yml suffix and no hidden part (a name or folder starting with ".")."""
    return os.path.splitext(rel)[1] in SPEC_SUFFIXES and not any(part.startswith(".") for part in rel.split("/"))


def file_too_large(size: int, limit: int | None = MAX_FILE_BYTES) -> str:
    """The message for a file refused for its size (with the limit in MiB when one is given)."""
    return f"file too large: {size} bytes" + (f" (limit {limit >> 20} MiB)" if limit is not None else "")


def discover(paths: Sequence) -> list[str]:
    """Expand the given paths into spec files: files as given; directories -> their *.yaml/*.yml
    files, recursively (hidden files and folders skipped); sorted and deduplicated, named as
    pathlib names them.

    Missing paths and directories without specs raise SpecError (located at 1:1 of the path).
    """
    found: dict[str, None] = {}
    diags: list = []
    for p in paths:
        p = pathname(p)
        if os.path.isdir(p):
            files = sorted(_specs_under(p))
            if not files:
                diags.append(_diag(p, 1, 1, f"no .yaml/.yml specs in {p}"))
            for f, is_file in files:
                problem = unsafe_path(f) or (None if is_file else
                                             f"{_what(f)}, not a spec file: remove it or rename it without .yaml/.yml")
                if problem:
                    diags.append(_diag(f, 1, 1, problem))
                else:
                    found.setdefault(f, None)
        elif problem := unsafe_path(p):
            diags.append(_diag(p, 1, 1, problem))
        elif os.path.exists(p):
            if not os.path.isfile(p):
                diags.append(_diag(p, 1, 1, f"{_what(p)}, not a spec file: name a regular .yaml/.yml file or a folder"))
                continue
            found.setdefault(p, None)
        else:
            diags.append(_diag(p, 1, 1, "file not found"))
    if diags:
        from compiler.diagnostics import SpecError

        raise SpecError(diags)
    return sorted(found, key=lambda f: (os.path.normpath(f), f))


def _specs_under(folder: str):
    """(name, whether it is or leads to a regular file) of every spec file name below `folder`,
    hidden files and folders skipped. Folders are searched and never taken as specs; a symbolic
    link to a folder is neither followed nor taken as a spec. A folder that cannot be listed is
    skipped (as os.walk skips it). Entry types come with the listing: only links cost a stat."""
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                listed = list(entries)
        except OSError:
            continue
        for entry in listed:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if not entry.name.startswith(".") and not entry.is_symlink():
                    stack.append(entry.path)
            elif is_spec_name(entry.name):
                try:
                    is_file = entry.is_file()
                except OSError:
                    is_file = False
                yield pathname(entry.path), is_file


def unsafe_path(path: str) -> str | None:
    """Why a spec path cannot be used (a character outside the safe set), or None."""
    if all(c in _SAFE_ASCII for c in path):
        return None
    import unicodedata

    for i, c in enumerate(path):
        if c in _SAFE_ASCII or (c > "\x7f" and unicodedata.category(c)[0] in "LNM"):
            continue
        code = f"U+{ord(c):04X} {unicodedata.name(c, '')}".rstrip()
        return (f"spec file names may hold letters, digits, space and ._-+@=,~/ only; character {i + 1} of the path "
                f"is {code}: rename the file or folder")
    return None


def _what(p: str) -> str:
    try:
        mode = os.stat(p).st_mode
    except OSError:
        return "a broken symbolic link" if os.path.islink(p) else "unreadable"
    for test, name in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def read_spec(path) -> bytes:
    """The bytes of a spec file (at most MAX_FILE_BYTES). Anything but a regular file is refused
    without blocking on it (a FIFO is opened non-blocking and refused)."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _error(name, "file not found") from None
    except IsADirectoryError:
        raise _error(name, "is a directory, expected a .yaml/.yml file") from None
    except OSError as e:
        raise _error(name, f"cannot read file: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _error(name, "is a directory, expected a .yaml/.yml file")
        if not stat.S_ISREG(st.st_mode):
            raise _error(name, f"{_what(name)}, not a spec file: name a regular .yaml/.yml file or a folder")
        if st.st_size > MAX_FILE_BYTES:
            raise _error(name, file_too_large(st.st_size))
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise _error(name, f"cannot read file: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _error(path: str, message: str):
    from compiler.diagnostics import SpecError

    return SpecError([_diag(path, 1, 1, message)])
