"""The text and JSON forms of a plan (Markdown: compiler/plan/markdown.py). Byte-stable: the
entries come sorted, JSON keys sorted, no timestamps."""

from __future__ import annotations

import json
from fractions import Fraction

from compiler import quantity
from compiler.plan import changes, requests
from compiler.plan.compare import Entry, Plan


def names(e: Entry) -> str:
    """The job's object name(s): `old -> new` for a rerun, else the one name it has."""
    if e.action == "rerun":
        return f"{e.old_name} -> {e.new_name}"
    return (e.new_name if e.new_name is not None else e.old_name) or ""


def _count(n: Fraction) -> int | str:
    return int(n) if n.denominator == 1 else quantity.decimal(n)


def gpus(r: requests.Requests) -> str:
    """`0`, `2 (nvidia.com/gpu)`, `3 (amd.com/gpu 1, nvidia.com/gpu 2)`."""
    n = r.gpu_count
    if not n:
        return "0"
    kinds = ", ".join(f"{name} {_count(k)}" for name, k in r.gpus.items()) if len(r.gpus) > 1 else next(iter(r.gpus))
    return f"{_count(n)} ({kinds})"


def resources(r: requests.Requests) -> str:
    """`5 replicas, 2 GPUs (nvidia.com/gpu), 3.5 CPU, 12Gi memory`."""
    parts = [f"{r.replicas} replica{'s' if r.replicas != 1 else ''}"]
    if r.gpu_count:
        count, _, kinds = gpus(r).partition(" ")
        parts.append(f"{count} GPU{'s' if r.gpu_count != 1 else ''} {kinds}")
    parts.append(f"{quantity.format_cpu(r.cpu)} CPU")
    parts.append(f"{quantity.approx_memory(r.memory)} memory")
    return ", ".join(parts)


def header(plan: Plan) -> str:
    """What is compared with what."""
    out = f"{plan.head} against {plan.base.label}"
    if not plan.base_rendered:
        out += f" (no {plan.base.rendered_dir.rstrip('/')}/ there: compared with what its specs render to)"
    return out


def starts(plan: Plan) -> str:
    """`Starts 2 jobs: 5 replicas, ...` or `Starts nothing`."""
    n = plan.starting
    if not n:
        return "Starts nothing."
    return f"Starts {n} job{'s' if n != 1 else ''}: {resources(plan.totals)} requested."


def warnings(plan: Plan) -> list[tuple[Entry | None, str]]:
    """(entry, message) of every warning; plan-wide notes have no entry."""
    return [(e, w) for e in plan.entries for w in e.warnings] + [(None, n) for n in plan.notes]


def text(plan: Plan) -> str:
    """The plan for a terminal."""
    t = changes.text
    lines = [f"specc plan: {t(header(plan))}", ""]
    listed = [e for e in plan.entries if e.action != "unchanged"]
    width = max((len(e.action) for e in listed), default=0)
    keys = max((len(t(e.key)) for e in listed), default=0)
    for e in listed:
        lines.append(f"{e.action:<{width}}  {t(e.key):<{keys}}  {t(names(e))}")
        if e.reason:
            lines.append(f"{'':<{width}}    {t(e.reason)}")
        if e.action in ("rerun", "update"):
            for c in e.changes:
                lines.append(f"{'':<{width}}    {t(c.path)}: {changes.value(c.old)} -> {changes.value(c.new)}")
    unchanged = plan.count("unchanged")
    if unchanged:
        lines.append(f"{unchanged} unchanged")
    if not plan.entries:
        lines.append("No jobs.")
    lines += ["", starts(plan)]
    ws = warnings(plan)
    if ws:
        lines += ["", "Warnings:"]
        lines += [f"  {t(e.key) + ' (' + e.action + ')' if e else 'plan'}: {t(message)}" for e, message in ws]
    lines += ["", f"Plan: {plan.summary()}."]
    return "\n".join(lines) + "\n"


def _requests_json(r: requests.Requests) -> dict:
    return {
        "replicas": r.replicas,
        "gpus": _count(r.gpu_count),
        "gpu_resources": {k: _count(v) for k, v in r.gpus.items()},
        "cpu": quantity.format_cpu(r.cpu),
        "memory": quantity.format_memory(r.memory),
    }


def to_json(plan: Plan) -> dict:
    """The plan as plain data: `jobs` (every job, unchanged ones too), `totals`, `counts`,
    `warnings`. A change's `old` / `new` is null where the field is not set; credentials are `***`."""
    jobs = [{
        "job": e.job, "namespace": e.namespace, "action": e.action,
        "old_name": e.old_name, "new_name": e.new_name,
        "old_source": e.old_source, "new_source": e.new_source,
        "reason": e.reason,
        "changes": [c.to_json() for c in e.changes],
        "requests": _requests_json(e.starts) if e.starts is not None else None,
        "warnings": list(e.warnings),
    } for e in plan.entries]
    b = plan.base
    return {
        "base": {"label": b.label, "ref": b.ref, "commit": b.commit, "dir": b.dir, "rendered": plan.base_rendered},
        "head": plan.head,
        "jobs": jobs,
        "counts": {a: plan.count(a) for a in ("create", "rerun", "update", "delete", "unchanged")},
        "totals": {"jobs": plan.starting, **_requests_json(plan.totals)},
        "warnings": [{"job": e.job if e else None, "namespace": e.namespace if e else None, "message": message}
                     for e, message in warnings(plan)],
    }


def json_text(plan: Plan) -> str:
    """`to_json` as stable, ASCII-only JSON."""
    return json.dumps(to_json(plan), indent=2, sort_keys=True, ensure_ascii=True) + "\n"
