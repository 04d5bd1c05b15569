"""`specc`: the command line. The only module that prints or exits.

Commands: validate, render, schema, run, lint, plan, argocd health|app. Each runs the stages through
compiler/pipeline.py; heavy modules are imported inside the command that needs them so that
`specc render` starts fast.
"""

from __future__ import annotations

import os
import sys

from compiler.diagnostics import ExitCode

# pydantic looks its plugins up through package metadata on first use; specc uses none (and
# imports pydantic only for `specc schema` or a model edited since the schema snapshot).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    import argparse


def _err(msg: str) -> None:
    print(f"specc: error: {msg}", file=sys.stderr)


def _print_diags(diags, fmt: str = "text") -> None:
    from compiler.diagnostics import format_json, format_text

    if fmt == "json":
        print(format_json(diags))
    else:
        print(format_text(diags), file=sys.stderr)
        n = sum(1 for d in diags if d.severity == "error")
        print(f"specc: {n} error{'s' if n != 1 else ''}", file=sys.stderr)


def cmd_validate(args) -> int:
    from compiler import pipeline

    units, diags = pipeline.run(args.paths, cache=False)
    if args.format == "json":
        _print_diags(diags, "json")
    elif diags:
        _print_diags(diags)
    else:
        print(f"ok: {len(units)} spec{'s' if len(units) != 1 else ''} valid")
    return ExitCode.INVALID if diags else ExitCode.OK


def cmd_render(args) -> int:
    from compiler import pipeline

    units, diags = pipeline.run(args.paths)
    if diags:
        _print_diags(diags)
        return ExitCode.INVALID
    jobs = [u.compiled for u in units]
    if args.output is None:
        if args.check:
            _err("--check needs -o DIR")
            return ExitCode.INVALID
        from compiler.render import render_stream

        sys.stdout.write(render_stream(jobs))
        return ExitCode.OK
    from pathlib import Path

    from compiler.render import render_files
    from compiler.writer import WriteError, diff, plan, write

    out = Path(args.output)
    files = render_files(jobs)
    try:
        if args.check:
            p = plan(out, files)
            if p.clean:
                return ExitCode.OK
            sys.stdout.write(diff(out, p))
            print(f"specc: {out} is out of date ({len(p.writes)} to write, {len(p.deletes)} to delete); "
                  f"run: specc render {' '.join(args.paths)} -o {out}", file=sys.stderr)
            return ExitCode.DIFF
        p = write(out, files)
    except WriteError as exc:
        _err(str(exc))
        return ExitCode.INVALID
    if not args.quiet:
        print(f"specc: {out}: {len(p.writes)} written, {len(p.deletes)} removed, {len(p.unchanged)} unchanged", file=sys.stderr)
    return ExitCode.OK


def cmd_schema(args) -> int:
    import json

    from compiler.schema import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return ExitCode.OK


def cmd_run(args) -> int:
    from pathlib import Path

    from compiler import pipeline

    if not args.local:
        _err("only local runs are supported: add --local (in a cluster, apply `specc render` output instead)")
        return ExitCode.INVALID
    units, diags = pipeline.run([args.spec])
    if diags:
        _print_diags(diags)
        return ExitCode.INVALID
    if len(units) != 1:
        _err(f"{args.spec}: expected exactly one spec, found {len(units)}")
        return ExitCode.INVALID
    from localrun import LocalRunError, run_local

    try:
        return run_local(
            list(units[0].compiled.objects),
            volumes_dir=Path(args.volumes_dir) if args.volumes_dir else None,
            work_dir=Path(args.work_dir) if args.work_dir else None,
            env=os.environ,
            out=sys.stdout,
        )
    except LocalRunError as exc:
        _err(str(exc))
        return ExitCode.INVALID


def cmd_lint(args) -> int:
    from compiler.diagnostics import did_you_mean, format_json
    from compiler.lint import RULES, VALIDATION_RULES, explain, format_line, lint_paths, listing

    if args.list_rules:
        sys.stdout.write(listing())
        return ExitCode.OK
    if args.explain:
        if args.explain not in RULES:
            hint = did_you_mean(args.explain, RULES)
            _err(f"unknown rule {args.explain!r}{'; ' + hint if hint else ''} (see specc lint --list-rules)")
            return ExitCode.INVALID
        sys.stdout.write(explain(args.explain))
        return ExitCode.OK
    if not args.paths:
        _err("name spec files or folders to lint (or --list-rules / --explain RULE)")
        return ExitCode.INVALID
    unknown = [r for r in args.disable if r not in RULES]
    if unknown:
        _err(f"unknown rule(s) for --disable: {', '.join(unknown)} (see specc lint --list-rules)")
        return ExitCode.INVALID
    enforced = [r for r in args.disable if r in VALIDATION_RULES]
    if enforced:
        _err(f"{', '.join(enforced)} is enforced by validation and cannot be disabled; accept a false positive "
             "in its spec with spec.lint.allow: [{rule: ..., at: <field>}]")
        return ExitCode.INVALID
    diags = lint_paths(args.paths, disabled=frozenset(args.disable))
    errors = sum(1 for d in diags if d.severity == "error")
    warnings = len(diags) - errors
    if args.format == "json":
        print(format_json(diags))
    else:
        for d in diags:
            print(format_line(d))
        print(f"specc lint: {errors} error{'s' if errors != 1 else ''}, "
              f"{warnings} warning{'s' if warnings != 1 else ''}", file=sys.stderr)
    if errors or (args.strict and warnings):
        return ExitCode.INVALID
    return ExitCode.OK


def cmd_plan(args) -> int:
    from compiler.plan import compare, sides

    try:
        head = sides.working_tree(args.paths)
        if args.base_dir is not None:
            base = sides.checkout(args.base_dir, args.paths, args.rendered)
        else:
            base = sides.commit(args.base, args.paths, args.rendered)
    except sides.PlanError as exc:
        _err(str(exc))
        return ExitCode.INVALID
    plan, diags = compare.make(base, head, args.paths)
    if plan is None:
        _print_diags(diags)
        return ExitCode.INVALID
    if args.format == "markdown":
        from compiler.plan.markdown import render
    else:
        from compiler.plan.output import json_text, text

        render = json_text if args.format == "json" else text
    sys.stdout.write(render(plan))
    gated = [f"{plan.count(a)} to {a}" for a in args.fail_on if plan.count(a)]
    if gated:
        print(f"specc plan: {', '.join(gated)} (--fail-on {','.join(args.fail_on)})", file=sys.stderr)
        return ExitCode.DIFF
    return ExitCode.OK


def _plan_actions(value: str) -> tuple[str, ...]:
    """`rerun,delete` -> ("rerun", "delete"); the actions a plan can gate on."""
    import argparse

    from compiler.plan.compare import ACTIONS

    gating = ACTIONS[:-1]
    actions = tuple(dict.fromkeys(a.strip() for a in value.split(",") if a.strip()))
    unknown = [a for a in actions if a not in gating]
    if unknown or not actions:
        raise argparse.ArgumentTypeError(f"{value!r}: name actions from {', '.join(gating)}, comma-separated")
    return actions


def cmd_health(args) -> int:
    from compiler.emit import dump
    from compiler.gitops.health import argocd_cm_patch, scripts

    if args.lua:
        lua = scripts()
        if args.kind not in lua:
            _err(f"no health check for kind {args.kind!r}; kinds: {', '.join(lua)}")
            return ExitCode.INVALID
        sys.stdout.write(lua[args.kind])
        return ExitCode.OK
    sys.stdout.write(
        "# Generated by specc: Argo CD health checks for Kubeflow training jobs.\n"
        "# Merge into the live argocd-cm:  specc argocd health > health.yaml &&\n"
        "#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file health.yaml\n"
        + dump(argocd_cm_patch(args.namespace))
    )
    return ExitCode.OK


def cmd_app(args) -> int:
    from compiler.emit import dump
    from compiler.gitops.application import IN_CLUSTER, application, gitops_warnings
    from compiler.lint import format_line

    if args.specs:
        from compiler import pipeline

        units, diags = pipeline.run(args.specs, stage=pipeline.VALIDATE)
        if args.auto_sync:
            diags += gitops_warnings(units)
        for d in diags:
            print(format_line(d), file=sys.stderr)
        if any(d.severity == "error" for d in diags):
            return ExitCode.INVALID
    obj = application(
        args.repo, path=args.path or ("." if args.plugin else "rendered"), revision=args.revision,
        namespace=args.namespace, name=args.name, project=args.project,
        argocd_namespace=args.argocd_namespace, server=args.server or IN_CLUSTER,
        auto_sync=args.auto_sync, plugin=args.plugin,
    )
    head = "# Generated by specc argocd app.\n"
    if not args.auto_sync:
        head += f"# Manual sync; prune stale jobs with: argocd app sync {args.name} --prune\n"
    sys.stdout.write(head + dump(obj))
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
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

    lint = sub.add_parser("lint", help="check specs against named rules (credentials, images, GPUs, requests, TTL, names)")
    lint.add_argument("paths", nargs="*", metavar="PATH", help="spec files or folders")
    lint.add_argument("--format", choices=("text", "json"), default="text")
    lint.add_argument("--strict", action="store_true", help="exit 2 on warnings too")
    lint.add_argument("--disable", action="append", default=[], metavar="RULE", help="skip a rule for every spec")
    lint.add_argument("--explain", metavar="RULE", help="explain one rule and how to silence it")
    lint.add_argument("--list-rules", action="store_true", help="list the rules")
    lint.set_defaults(func=cmd_lint)

    pl = sub.add_parser("plan", help="what a merge does to the cluster: jobs created, re-run, updated or pruned, "
                                     "changed fields, resources requested (offline)")
    pl.add_argument("paths", nargs="*", default=["specs"], metavar="PATH", help="spec files or folders (default: specs)")
    base = pl.add_mutually_exclusive_group()
    base.add_argument("--base", metavar="REF",
                      help="git commit, branch or tag to compare with (default: the merge base with origin/main, else main)")
    base.add_argument("--base-dir", metavar="DIR", help="compare with another checkout instead of a git ref")
    pl.add_argument("--rendered", default="rendered", metavar="DIR",
                    help="the base's committed rendered folder, what Argo CD applied (default: rendered)")
    pl.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    pl.add_argument("--fail-on", type=_plan_actions, default=(), metavar="ACTIONS",
                    help="exit 1 when a job would be one of these actions (comma-separated: create,rerun,update,delete)")
    pl.set_defaults(func=cmd_plan)

    a = sub.add_parser("argocd", help="Argo CD: health checks for the workload kinds, an Application for rendered/")
    asub = a.add_subparsers(dest="argocd_command", required=True, metavar="WHAT")
    h = asub.add_parser("health", help="print the argocd-cm health checks of the workload kinds")
    h.add_argument("--namespace", default="argocd", help="namespace of Argo CD (default: argocd)")
    h.add_argument("--lua", action="store_true", help="print only the Lua script of one kind")
    h.add_argument("--kind", default="TFJob", help="the kind whose script --lua prints (default: TFJob)")
    h.set_defaults(func=cmd_health)

    app = asub.add_parser("app", help="print an Argo CD Application that syncs the rendered folder")
    app.add_argument("--repo", required=True, metavar="URL", help="git repository URL")
    app.add_argument("--path", default=None, help="folder in the repo (default: rendered; with --plugin: .)")
    app.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    app.add_argument("--namespace", default="kubeflow", help="namespace the jobs run in (default: kubeflow)")
    app.add_argument("--name", default="specc-jobs", help="Application name (default: specc-jobs)")
    app.add_argument("--project", default="default", help="Argo CD project (default: default)")
    app.add_argument("--argocd-namespace", default="argocd", help="namespace of Argo CD (default: argocd)")
    app.add_argument("--server", default=None, help="destination API server (default: the in-cluster one)")
    app.add_argument("--auto-sync", action="store_true", help="automated sync with prune and selfHeal")
    app.add_argument("--plugin", nargs="?", const="specc", default=None, metavar="NAME",
                     help="render the specs with the specc CMP (plugin.yaml) instead of reading rendered/")
    app.add_argument("--specs", action="append", default=[], metavar="DIR",
                     help="check these specs for settings that misbehave under auto-sync (warnings on stderr)")
    app.set_defaults(func=cmd_app)
    return p


def _plain_render(argv: list[str]):
    """`render PATH...` without options: what argparse would parse, without importing it."""
    if len(argv) < 2 or argv[0] != "render" or any(a.startswith("-") or not a for a in argv[1:]):
        return None
    from types import SimpleNamespace

    return SimpleNamespace(command="render", paths=list(argv[1:]), output=None, check=False, quiet=False, func=cmd_render)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _plain_render(argv) or build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("specc: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `specc render | head`: the reader went away; not an error of ours.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return ExitCode.OK


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
