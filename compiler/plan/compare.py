"""The plan: what merging the working tree does to the cluster, job by job.

A job is identified by (namespace, metadata.name) on both sides. What runs now is the base's
committed rendered/ folder where it has one (that is what Argo CD applied, whichever specc
version made it), else what this specc renders from the base's specs. What will run is what
this specc renders from the working tree's specs. Comparing the objects gives each job one
action; comparing the validated specs gives the fields that changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

from compiler.diagnostics import Diagnostic
from compiler.naming import SOURCE_ANNOTATION
from compiler.plan import changes, requests
from compiler.plan.changes import same
from compiler.plan.sides import Side

#: Every action, in the order a plan lists them.
ACTIONS = ("create", "rerun", "update", "delete", "unchanged")
#: The actions that start pods.
STARTING = ("create", "rerun")
_CONFIGMAP = "ConfigMap"


@dataclass
class Entry:
    """One job's action, why, the spec fields that changed and what its new run requests."""

    job: str
    namespace: str
    action: str
    old_name: str | None
    new_name: str | None
    old_source: str | None
    new_source: str | None
    reason: str
    changes: list[changes.Change] = field(default_factory=list)
    starts: requests.Requests | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.job}"


@dataclass
class Plan:
    """Every job's entry (in ACTIONS order, then by namespace and name) and plan-wide notes."""

    base: Side
    head: str
    base_rendered: bool
    entries: list[Entry]
    notes: list[str] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for e in self.entries if e.action == action)

    @property
    def totals(self) -> requests.Requests:
        """What the create and rerun actions start, summed."""
        total = requests.Requests()
        for e in self.entries:
            if e.starts is not None:
                total = total + e.starts
        return total

    @property
    def starting(self) -> int:
        return sum(1 for e in self.entries if e.starts is not None)

    def summary(self) -> str:
        """`1 to create, 2 to rerun, 0 to update, 0 to delete, 4 unchanged`."""
        parts = [f"{self.count(a)} to {a}" for a in ACTIONS[:-1]]
        return ", ".join(parts) + f", {self.count('unchanged')} unchanged"


class _Job:
    """One side's objects of a job, by kind, and what the plan reads off them."""

    def __init__(self, objects: list[dict]):
        self.objects = {o["kind"]: o for o in objects}
        self.workload = _workload(objects)
        md = self.workload.get("metadata") or {}
        self.name = md.get("name")
        self.source = (md.get("annotations") or {}).get(SOURCE_ANNOTATION)

    @cached_property
    def stripped(self) -> dict:
        """The objects without the source annotation (which file a spec lives in); built once,
        only read."""
        out = {}
        for kind, obj in self.objects.items():
            md = dict(obj.get("metadata") or {})
            ann = {k: v for k, v in (md.get("annotations") or {}).items() if k != SOURCE_ANNOTATION}
            md.pop("annotations", None)
            if ann:
                md["annotations"] = ann
            out[kind] = {**obj, "metadata": md}
        return out


def _workload(objects: list[dict]) -> dict:
    from compiler import kinds

    others = [o for o in objects if o.get("kind") != _CONFIGMAP] or list(objects)
    known = [o for o in others if kinds.by_kind(o.get("kind")) is not None]
    return (known or others)[-1]


_MISSING = object()


def _get(obj: dict, path: str):
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


def _committed(base: Side, paths: list[str], with_spec: set[tuple[str, str]]) -> tuple[dict, list[Diagnostic]]:
    """The jobs in the base's rendered/ folder made from specs under `paths`: key -> _Job."""
    import yaml

    from compiler.render import GENERATED_MARK

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    folders: dict[str, list[dict]] = {}
    diags: list[Diagnostic] = []
    for rel, data in sorted((base.rendered or {}).items()):
        folder, file = rel.split("/")
        if file in ("kustomization.yaml", "kustomization.yml"):
            continue
        where = base.locate(f"{base.rendered_dir}/{rel}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            diags.append(Diagnostic(where, 1, 1, "", "not UTF-8 text"))
            continue
        if not text.startswith(GENERATED_MARK):
            continue  # hand-written, not one of specc's objects
        try:
            obj = yaml.load(text, Loader=loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            diags.append(Diagnostic(where, line, col, "", f"invalid YAML: {getattr(exc, 'problem', None) or exc}"))
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str) or not isinstance(obj.get("metadata"), dict):
            diags.append(Diagnostic(where, 1, 1, "", "not a Kubernetes object (kind and metadata)"))
            continue
        folders.setdefault(folder, []).append(obj)
    wanted = [base.tree_path(p) for p in paths]
    jobs: dict[tuple[str, str], _Job] = {}
    for folder, objects in folders.items():
        job = _Job(objects)
        md = job.workload["metadata"]
        key = (md.get("namespace") or "default", (md.get("labels") or {}).get("specc.dev/job") or folder)
        src = job.source
        if src is not None:
            norm = os.path.normpath(src)
            if not any(w == "." or norm == w or norm.startswith(w + os.sep) for w in wanted):
                continue  # made from a spec outside the named paths
        elif key not in with_spec:
            continue
        jobs.setdefault(key, job)
    return jobs, diags


def make(base: Side, head: Side, paths: list[str]) -> tuple[Plan | None, list[Diagnostic]]:
    """The plan from `base` to `head` for the specs under `paths`, or every problem found on
    either side (then no plan)."""
    from compiler import pipeline

    head_units, head_diags = pipeline.process(head.specs, cache=False, defaults=head.defaults)
    base_units, base_diags = pipeline.process(base.specs, cache=False, defaults=base.defaults)
    diags = [*head.diags, *head_diags, *base.diags, *(_relocate(d, base) for d in base_diags)]
    for p in paths:
        if p in head.missing and p in base.missing:
            diags.append(Diagnostic(p, 1, 1, "", f"not found in the {head.label} nor at {base.label}"))
    new = {(u.compiled.namespace, u.compiled.spec_name): u for u in head_units}
    old_specs = {(u.compiled.namespace, u.compiled.spec_name): u for u in base_units}
    committed = None
    if base.rendered is not None:
        committed, more = _committed(base, paths, set(old_specs))
        diags += more
    if any(d.severity == "error" for d in diags):
        return None, diags

    label = f"the base's {base.rendered_dir.rstrip('/')}/"
    entries, drifted = [], 0
    for key in sorted({*new, *old_specs, *(committed or {})}):
        n, b = new.get(key), old_specs.get(key)
        nj = _Job(list(n.compiled.objects)) if n else None
        bj = _Job(list(b.compiled.objects)) if b else None
        oj = committed.get(key) if committed is not None else bj
        if committed is not None and bj is not None and (oj is None or not same(oj.stripped, bj.stripped)):
            drifted += 1
        entry = Entry(job=key[1], namespace=key[0], action="", old_name=oj.name if oj else None,
                      new_name=nj.name if nj else None, old_source=oj.source if oj else None,
                      new_source=nj.source if nj else None, reason="")
        if n is not None and b is not None:
            entry.changes = changes.diff(b.job.model_dump(exclude_none=True), n.job.model_dump(exclude_none=True))
        if nj is None and oj is None:
            continue  # a spec at the base whose job rendered/ does not have, removed: nothing runs
        _decide(entry, oj, nj, bj, n, label)
        if entry.action in STARTING:
            entry.starts = requests.workload(nj.workload)
            entry.warnings += [f"cannot read {u}: left out of the totals" for u in entry.starts.unreadable]
        entries.append(entry)
    entries.sort(key=lambda e: (ACTIONS.index(e.action), e.namespace, e.job))
    plan = Plan(base=base, head=head.label, base_rendered=committed is not None, entries=entries)
    if drifted:
        plan.notes.append(
            f"{drifted} job{'s' if drifted != 1 else ''} at the base {'render' if drifted != 1 else 'renders'} "
            f"differently with this specc than in {label} (made by another specc version, or stale); "
            f"the plan compares with {label}, which is what Argo CD applied")
    return plan, diags


def _decide(e: Entry, old: _Job | None, new: _Job | None, base: _Job | None, unit, label: str) -> None:
    """Set the entry's action, reason and warnings."""
    from compiler import kinds

    if old is None:
        e.action = "create"
        e.reason = "new spec" if base is None else f"its spec is at the base, but {label} has no job for it"
        return
    if new is None:
        e.action = "delete"
        e.reason = "spec removed" if base is not None else f"in {label}, without a spec at the base"
        e.warnings.append(f"prunes {old.name} even if it is still running: a training run in progress stops")
        return
    spec_changed = base is not None and not same(base.stripped, new.stripped)
    only_source = same(old.stripped, new.stripped)
    moved = old.source != new.source
    reasons = []
    if spec_changed:
        reasons.append("spec changed")
    elif base is None:
        reasons.append(f"{label} has this job, but the base has no spec for it")
    if base is not None and not spec_changed and not only_source:
        reasons.append(f"same spec, but this specc renders it differently from {label}")
    if moved:
        reasons.append(f"moved: {old.source} -> {new.source}")
    if old.name != new.name:
        e.action = "rerun"
        e.reason = "; ".join(reasons)
        e.warnings.append(f"prunes {old.name} even if it is still running: a training run in progress stops")
        return
    if same(old.objects, new.objects):
        e.action, e.reason = "unchanged", "; ".join(reasons) or "nothing changes"
        return
    e.action = "update"
    if moved and only_source:
        reasons.append(f"only the {SOURCE_ANNOTATION} annotation changes: the job keeps its name and is not re-run")
    e.reason = "; ".join(reasons)
    fixed = unit.job.spec.naming == "fixed"
    if fixed and not only_source:
        e.warnings.append(
            f"naming: fixed keeps the name {new.name}: if it has finished, this change never runs (the "
            f"operator does not re-run a finished job), and running pods keep their old settings")
    for kind, obj in new.objects.items():
        before = old.objects.get(kind)
        if before is None:
            continue
        # fields Kubernetes refuses to change on an existing object, as the kind's module declares them
        immutable = [f for f in kinds.immutable_fields(kind) if not same(_get(before, f), _get(obj, f))]
        if immutable:
            e.warnings.append(
                f"changes {', '.join(immutable)} of {kind} {new.name}, which Kubernetes does not allow to "
                f"change: the sync fails (field is immutable); use naming: hashed, or delete the job first")


def _relocate(d: Diagnostic, side: Side) -> Diagnostic:
    return Diagnostic(side.locate(d.path), d.line, d.col, d.field, d.message, d.severity, d.rule)
