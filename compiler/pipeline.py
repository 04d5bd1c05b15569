"""The stages in order: discover -> read -> load -> validate -> compile. Every command runs them
through `run` (spec files and folders) or `process` (named bytes, e.g. a git tree); only
compiler/cli.py prints.

Specs whose bytes (and specc's code, and the bytes of the `.specc.yaml` defaults that apply to
them, compiler/defaults.py) are unchanged since a previous run come from the render cache
(compiler/cache.py) without loading or validating them again.
"""

from __future__ import annotations

from compiler import cache as render_cache
from compiler.discover import discover, read_spec

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Callable, Iterable

    from compiler.compiled import CompiledJob
    from compiler.diagnostics import Diagnostic
    from compiler.loader import Loaded
    from compiler.spec import TrainingJob

#: How far `run` takes each spec.
VALIDATE, COMPILE = "validate", "compile"


class Unit:
    """One spec through the stages: its path and bytes, the loaded document and validated job
    (None on a render-cache hit), and its compiled objects (stage COMPILE)."""

    __slots__ = ("path", "data", "doc", "job", "compiled")

    def __init__(self, path: str, data: bytes):
        self.path, self.data = path, data
        self.doc: Loaded | None = None
        self.job: TrainingJob | None = None
        self.compiled: CompiledJob | None = None

    @property
    def name(self) -> str:
        """The spec's metadata.name."""
        return self.compiled.spec_name if self.compiled is not None else self.job.metadata.name


def run(paths: Iterable[str], *, stage: str = COMPILE, cache: bool = True) -> tuple[list[Unit], list[Diagnostic]]:
    """Discover and read the spec files under `paths` and take each through `stage`: the specs
    that made it, and every problem found."""
    try:
        files = discover(paths)
    except Exception as exc:  # SpecError; its module is imported only on errors
        if not hasattr(exc, "diagnostics"):
            raise
        return [], list(exc.diagnostics)
    sources, diags = [], []
    for f in files:
        try:
            sources.append((str(f), read_spec(f)))
        except Exception as exc:
            if not hasattr(exc, "diagnostics"):
                raise
            diags.extend(exc.diagnostics)
    units, more = process(sources, stage=stage, cache=cache)
    return units, diags + more


def process(sources: Iterable[tuple[str, bytes]], *, stage: str = COMPILE, cache: bool = True,
            defaults: Callable[[str], tuple[str, bytes] | None] | None = None) -> tuple[list[Unit], list[Diagnostic]]:
    """Take named spec bytes through `stage`; the render cache serves unchanged specs (COMPILE).
    `defaults` finds the `.specc.yaml` of a spec name (default: on this file system)."""
    from compiler.defaults import lookup

    use_cache = cache and stage == COMPILE
    units: list[Unit] = []
    misses: list[tuple[Unit, tuple[str, bytes] | None, str | None]] = []
    memo: dict = {}
    for path, data in sources:
        u = Unit(path, data)
        found = defaults(path) if defaults is not None else lookup(path, memo)
        entry = render_cache.key(path, data if found is None else data + b"\0" + found[1]) if use_cache else None
        if entry is not None:
            u.compiled = render_cache.get(entry)
        if u.compiled is None:
            misses.append((u, found, entry))
        units.append(u)
    diags: list[Diagnostic] = []
    if misses:
        from compiler.compile import compile_job, too_large
        from compiler.defaults import apply, parse
        from compiler.diagnostics import Diagnostic, SpecError
        from compiler.loader import load_bytes
        from compiler.validate import validate

        bad = set()
        settings: dict[tuple[str, bytes], dict | None] = {}
        for u, found, entry in misses:
            if found is not None and found not in settings:
                try:
                    settings[found] = parse(*found)
                except SpecError as exc:
                    diags.extend(exc.diagnostics)
                    settings[found] = None
            if found is not None and settings[found] is None:
                bad.add(id(u))
                continue
            try:
                u.doc = load_bytes(u.data, u.path)
                if found is not None:
                    apply(u.doc.data, settings[found])
                u.job = validate(u.doc)
            except SpecError as exc:
                diags.extend(exc.diagnostics)
                bad.add(id(u))
                continue
            if stage == COMPILE:
                u.compiled = compile_job(u.job, source=u.path)
                problems = too_large(list(u.compiled.objects))
                if problems:
                    line, col = u.doc.pos(("metadata", "name"))
                    diags += [Diagnostic(u.path, line, col, "metadata.name", p) for p in problems]
                    bad.add(id(u))
                    continue
                if entry is not None:
                    render_cache.put(entry, u.compiled)
        units = [u for u in units if id(u) not in bad]
    return _unique_names(units, diags)


def _unique_names(units: list[Unit], diags: list[Diagnostic]) -> tuple[list[Unit], list[Diagnostic]]:
    """Drop the specs whose job name an earlier spec already uses, with a located error."""
    first: dict[str, Unit] = {}
    out = []
    for u in units:
        other = first.get(u.name)
        if other is None:
            first[u.name] = u
            out.append(u)
        else:
            diags.append(_duplicate(u, other))
    return out, diags


def _duplicate(u: Unit, other: Unit) -> Diagnostic:
    from compiler.diagnostics import Diagnostic
    from compiler.loader import load_bytes

    line, col = (u.doc or load_bytes(u.data, u.path)).pos(("metadata", "name"))
    first_line = (other.doc or load_bytes(other.data, other.path)).pos(("metadata", "name"))[0]
    return Diagnostic(u.path, line, col, "metadata.name", f"job name '{u.name}' is already used by {other.path}:{first_line}")
