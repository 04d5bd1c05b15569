"""`specc`: the command line. The only module that prints or exits.

Commands: validate, render, schema, run (and the GitOps helpers registered in COMMANDS).
Heavy modules are imported inside the command that needs them so `specc render` starts fast.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    import argparse

# Plugins of pydantic are looked up through package metadata on first use (slow, and specc
# uses none). Respect a caller's explicit setting.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

OK, DIFF, INVALID = 0, 1, 2
#: Same bound as compiler.loader.MAX_FILE_BYTES (kept here so a cache hit needs no loader).
MAX_SPEC_BYTES = 1 << 20
BUILTIN_COMMANDS = ("validate", "render", "schema", "run")
#: Up to this many specs to validate, use compiler/fastvalid.py instead of importing pydantic
#: (~250 ms to import and build; then ~45 us per spec faster than the walker: even at ~5,000).
FAST_PATH_MAX_SPECS = 5000


def _err(msg: str) -> None:
    print(f"specc: error: {msg}", file=sys.stderr)


def load_jobs(paths: list[str], *, use_cache: bool = True):
    """Discover, load, validate and compile specs. Returns (compiled jobs, diagnostics).

    Specs whose bytes (and specc's code) are unchanged since a previous run come from the
    render cache (compiler/cache.py) without importing the validation stack.
    """
    from compiler import cache
    from compiler.discover import discover

    try:
        files = discover(paths)
    except Exception as exc:  # SpecError; its module is imported only on errors
        if not hasattr(exc, "diagnostics"):
            raise
        return [], list(exc.diagnostics)
    jobs, diags, misses = [], [], []
    for path in files:
        source = str(path)
        raw = None
        if use_cache:
            try:
                with open(path, "rb") as f:
                    raw = f.read(MAX_SPEC_BYTES + 1)
            except OSError:
                raw = None
        hit = cache.get(source, raw) if raw is not None else None
        if hit is None:
            misses.append(path)
            jobs.append((path, raw, None))
        else:
            jobs.append((path, raw, hit))
    if misses:
        from compiler.compile import compile_job
        from compiler.diagnostics import SpecError
        from compiler.loader import load_bytes, load_file
        from compiler.validate import validate

        # Up to thousands of specs: the snapshot walker (no pydantic import, ~250 ms saved). More:
        # pydantic's validators, built once, are faster per spec than the pure-Python walk.
        fast = len(misses) <= FAST_PATH_MAX_SPECS
    out = []
    seen: dict[str, str] = {}
    for path, raw, cj in jobs:
        doc = None
        if cj is None:
            try:
                doc = load_file(path) if raw is None else load_bytes(raw, str(path))
                job = validate(doc, fast=fast)
            except SpecError as exc:
                diags.extend(exc.diagnostics)
                continue
            cj = compile_job(job, source=doc.path)
            if raw is not None:
                cache.put(str(path), raw, cj)
        if cj.spec_name in seen:
            diags.append(_duplicate(path, cj.spec_name, seen[cj.spec_name]))
            continue
        seen[cj.spec_name] = str(path)
        out.append(cj)
    return out, diags


def _duplicate(path, name: str, first: str):
    """A located 'job name already used' diagnostic (loads the file for the position)."""
    from compiler.diagnostics import Diagnostic
    from compiler.loader import load_file

    doc = load_file(path)
    line, col = doc.pos(("metadata", "name"))
    first_line = load_file(first).pos(("metadata", "name"))[0]
    return Diagnostic(doc.path, line, col, "metadata.name", f"job name '{name}' is already used by {first}:{first_line}")


def _print_diags(diags, fmt: str = "text") -> None:
    from compiler.diagnostics import format_json, format_text

    if fmt == "json":
        print(format_json(diags))
    else:
        print(format_text(diags), file=sys.stderr)
        n = sum(1 for d in diags if d.severity == "error")
        print(f"specc: {n} error{'s' if n != 1 else ''}", file=sys.stderr)


def cmd_validate(args) -> int:
    jobs, diags = load_jobs(args.paths, use_cache=False)
    if args.format == "json":
        _print_diags(diags, "json")
    elif diags:
        _print_diags(diags)
    else:
        print(f"ok: {len(jobs)} spec{'s' if len(jobs) != 1 else ''} valid")
    return INVALID if diags else OK


def cmd_render(args) -> int:
    from pathlib import Path

    jobs, diags = load_jobs(args.paths)
    if diags:
        _print_diags(diags)
        return INVALID
    if args.output is None:
        if args.check:
            _err("--check needs -o DIR")
            return INVALID
        from compiler.render import render_stream

        sys.stdout.write(render_stream(jobs))
        return OK
    from compiler.render import render_files
    from compiler.writer import WriteError, diff, plan, write

    out = Path(args.output)
    files = render_files(jobs)
    try:
        if args.check:
            p = plan(out, files) if out.exists() else plan(out, files)
            if p.clean:
                return OK
            sys.stdout.write(diff(out, p))
            print(f"specc: {out} is out of date ({len(p.writes)} to write, {len(p.deletes)} to delete); "
                  f"run: specc render {' '.join(args.paths)} -o {out}", file=sys.stderr)
            return DIFF
        p = write(out, files)
    except WriteError as exc:
        _err(str(exc))
        return INVALID
    if not args.quiet:
        print(f"specc: {out}: {len(p.writes)} written, {len(p.deletes)} removed, {len(p.unchanged)} unchanged", file=sys.stderr)
    return OK


def cmd_schema(args) -> int:
    import json

    from compiler.spec import TrainingJob

    schema = TrainingJob.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://specc.dev/schemas/trainingjob-v1alpha1.json"
    print(json.dumps(schema, indent=2, sort_keys=True))
    return OK


def cmd_run(args) -> int:
    from pathlib import Path

    if not args.local:
        _err("only local runs are supported: add --local (in a cluster, apply `specc render` output instead)")
        return INVALID
    jobs, diags = load_jobs([args.spec])
    if diags:
        _print_diags(diags)
        return INVALID
    if len(jobs) != 1:
        _err(f"{args.spec}: expected exactly one spec, found {len(jobs)}")
        return INVALID
    from compiler.local import LocalRunError, run_local

    try:
        return run_local(
            list(jobs[0].objects),
            volumes_dir=Path(args.volumes_dir) if args.volumes_dir else None,
            work_dir=Path(args.work_dir) if args.work_dir else None,
            env=os.environ,
            out=sys.stdout,
        )
    except LocalRunError as exc:
        _err(str(exc))
        return INVALID


def build_parser(extensions: bool = True) -> argparse.ArgumentParser:
    import argparse

    p = argparse.ArgumentParser(prog="specc", description="Compile training specs into Kubeflow manifests.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", help="check specs and report every problem with its location")
    v.add_argument("paths", nargs="+", metavar="PATH", help="spec files or folders")
    v.add_argument("--format", choices=("text", "json"), default="text")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("render", help="render specs to a YAML stream, or to DIR with -o")
    r.add_argument("paths", nargs="+", metavar="PATH", help="spec files or folders")
    r.add_argument("-o", "--output", metavar="DIR", help="write one folder per job plus DIR/kustomization.yaml")
    r.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff if DIR is out of date")
    r.add_argument("-q", "--quiet", action="store_true")
    r.set_defaults(func=cmd_render)

    s = sub.add_parser("schema", help="print the spec's JSON Schema (for yaml-language-server)")
    s.set_defaults(func=cmd_schema)

    run = sub.add_parser("run", help="run a spec's job on this machine as the operator would")
    run.add_argument("spec", metavar="SPEC")
    run.add_argument("--local", action="store_true", help="run every replica as a local process")
    run.add_argument("--volumes-dir", metavar="DIR", help="where PVC volumes live (default: WORK_DIR/volumes)")
    run.add_argument("--work-dir", metavar="DIR", help="scratch folder (default: a new temporary folder)")
    run.set_defaults(func=cmd_run)

    if extensions:
        for register in _extensions():
            register(sub)
    return p


def _extensions():
    """Optional command groups (GitOps helpers), registered if present."""
    regs = []
    for mod in ("compiler.gitops.cli",):
        try:
            m = __import__(mod, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name and mod.startswith(exc.name):
                continue
            raise
        regs.append(m.register)
    return regs


def _plain_render(argv: list[str]):
    """`render PATH...` without options: what argparse would parse, without importing it (~8 ms
    with the gettext/shutil it pulls in). Anything else goes through build_parser()."""
    if len(argv) < 2 or argv[0] != "render" or any(a.startswith("-") or not a for a in argv[1:]):
        return None
    from types import SimpleNamespace

    return SimpleNamespace(command="render", paths=list(argv[1:]), output=None, check=False, quiet=False, func=cmd_render)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _plain_render(argv)
    if args is None:
        # The GitOps command group is registered only when it may be asked for, to keep
        # `specc render` start-up lean.
        first = next((a for a in argv if not a.startswith("-")), None)
        parser = build_parser(extensions=first not in BUILTIN_COMMANDS)
        args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("specc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `specc render | head`: the reader went away; not an error of ours.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return OK


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
