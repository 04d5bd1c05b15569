"""Repository-wide defaults for specs: `.specc.yaml` in a spec's folder or a folder above it, up
to the root of its git repository; the nearest file wins.

    # specs/.specc.yaml
    target: trainjob

`target` (v1 or trainjob) is the target of every spec that does not set spec.target itself and
whose job a TrainJob can run (framework tensorflow or pytorch, or a spec naming spec.runtime).
A spec's own spec.target always wins, so a repository moves to Kubeflow Trainer v2 spec by spec
either way (`target: trainjob` in the specs that are ready, or the default plus `target: v1` in
those that are not). The file is part of the specs: render, validate, lint, run and plan read it
beside each spec (plan at both commits), and the render cache keys on its bytes. It is hidden, so
spec discovery never takes it for a spec.
"""

from __future__ import annotations

import os

FILE_NAME = ".specc.yaml"
#: Setting -> the values it takes.
SETTINGS = {"target": ("v1", "trainjob")}

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from compiler.loader import Loaded

def lookup(spec: str, memo: dict | None = None) -> tuple[str, bytes] | None:
    """The defaults file that applies to the spec file `spec` on this file system, and its bytes.
    `memo` remembers the answer for each folder (one render: every spec of a folder shares it)."""
    return lookup_under(None, spec, memo)


def lookup_under(root: str | None, spec: str, memo: dict | None = None) -> tuple[str, bytes] | None:
    """As `lookup`, for a spec named as in the working tree but read from the checkout at `root`."""
    # os.path rather than pathlib: this runs on every render, and pathlib is a slow import.
    path = spec if root is None else os.path.join(os.fspath(root), os.path.relpath(os.path.abspath(spec)))
    found = _nearest(os.path.dirname(os.path.abspath(path)), {} if memo is None else memo)
    if found is None:
        return None
    f, data = found
    # Named as spec files are: relative to the working directory (or, in another checkout, to its root).
    if root is not None:
        name = os.path.relpath(f, os.path.abspath(root))
    else:
        name = f if os.path.isabs(spec) else os.path.relpath(f)
    return name, data


def _nearest(folder: str, memo: dict) -> tuple[str, bytes] | None:
    """The defaults file nearest to a folder (itself or above, not past a git root) and its bytes."""
    if folder in memo:
        return memo[folder]
    found = None
    f = os.path.join(folder, FILE_NAME)
    if os.path.isfile(f):
        try:
            with open(f, "rb") as stream:
                found = f, stream.read()
        except OSError as exc:
            found = f, f"\0cannot read: {exc.strerror or exc}".encode()
    elif not os.path.exists(os.path.join(folder, ".git")) and os.path.dirname(folder) != folder:
        found = _nearest(os.path.dirname(folder), memo)
    memo[folder] = found
    return found


def parse(name: str, data: bytes) -> dict[str, str]:
    """The settings of a defaults file; SpecError with every located problem."""
    from compiler.diagnostics import Diagnostic, SpecError, did_you_mean

    if data.startswith(b"\0cannot read: "):
        raise SpecError([Diagnostic(name, 1, 1, "", data[1:].decode())])
    from compiler.loader import load_bytes

    doc: Loaded = load_bytes(data, name)
    diags = []
    for key, value in doc.data.items():
        if key not in SETTINGS:
            hint = did_you_mean(str(key), SETTINGS)
            line, col = doc.pos((key,), key=True)
            diags.append(Diagnostic(name, line, col, str(key), f"unknown setting {key!r}{'; ' + hint if hint else ''} "
                                    f"({FILE_NAME} takes {', '.join(SETTINGS)})"))
        elif value not in SETTINGS[key]:
            line, col = doc.pos((key,))
            diags.append(Diagnostic(name, line, col, str(key),
                                    f"must be one of {', '.join(SETTINGS[key])}, got {value!r}"))
    if diags:
        raise SpecError(diags)
    return dict(doc.data)


def apply(data, defaults: dict[str, str]) -> None:
    """Set spec.target of a loaded spec document from `defaults` where the spec leaves it out and
    a TrainJob can run its job."""
    from compiler.kinds.trainjob import DEFAULT_RUNTIMES, FRAMEWORKS

    spec = data.get("spec") if isinstance(data, dict) else None
    if "target" not in defaults or not isinstance(spec, dict) or "target" in spec:
        return
    if spec.get("framework") in FRAMEWORKS or spec.get("framework") in DEFAULT_RUNTIMES or "runtime" in spec:
        spec["target"] = defaults["target"]
