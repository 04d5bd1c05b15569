"""`specc lint`: named rules for valid specs that will still hurt in a cluster or under GitOps.

Validation (compiler/validate.py) refuses what cannot work, literal credentials included (its
findings carry the rule name literal-credential, and lint shows them); lint flags what works but
is risky: mutable images, GPUs requested by half, pods without requests, TTLs that fight Argo
CD, names at the edge of their budget. Every finding is a located `Diagnostic` with `rule` set;
a spec silences a lint rule entirely, or accepts one finding at one field:

    spec:
      lint:
        ignore: [resource-requests, name-length]
        allow:
          - {rule: image-tag, at: spec.container.image, reason: "the team's mirror pins by date"}

`spec.lint` is never rendered, so it does not change the manifests or the job's hashed name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from compiler import credentials
from compiler.diagnostics import Diagnostic
from compiler.validate import dotted


@dataclass(frozen=True)
class Rule:
    """A lint rule: its name, severity ("error" or "warning"), one-line summary and explanation."""

    name: str
    severity: str
    summary: str
    explanation: str


RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("literal-credential", "error", "a string in the spec looks like a password, token or key",
         "Specs live in git and their values end up in rendered manifests and ConfigMaps, readable by "
         "anyone with the repository. Validation (render, validate) refuses them; lint shows the same "
         "findings. It looks at every string: URLs with user:password@, well-known token formats "
         "(AWS, GitHub, GitLab, Slack, Hugging Face, OpenAI, Google, Stripe, JWTs, private keys), "
         "'Bearer ...', 'password=...', any literal value of an env variable or annotation named like a "
         "credential (*PASSWORD*, *_PASS, *_TOKEN, *_SECRET, *_API_KEY...), random-looking values under "
         "names such as *_KEY, and '--password VALUE' arguments. Fix: store the value in a Kubernetes "
         "Secret and reference it ({secretKeyRef: {name: ..., key: ...}} in env, $(VAR) in args; "
         "storage.credentials.secretName for S3). A false positive is accepted one place at a time "
         "with spec.lint.allow: [{rule: literal-credential, at: <the field the finding names>}]."),
    Rule("image-tag", "error", "image without a tag or digest, or tagged :latest",
         "An image without a tag means :latest, which moves. The job's name hash covers the spec, "
         "not the image content: the same rendered manifest then runs different code on each pod "
         "(pods pull at different times) and a re-run cannot reproduce a result. Fix: pin a "
         "version tag, or better a digest (name:tag@sha256:...)."),
    Rule("gpu-limits", "error", "GPU scheduling or GPU processes without a GPU limit",
         "A GPU is only given to a container through the nvidia.com/gpu limit (resources.gpus). "
         "Selecting GPU nodes (nodeSelector / tolerations on a GPU key), asking torchrun for "
         "nprocPerNode: gpu, or passing --num_gpus=N while gpus is 0 puts a pod on an expensive "
         "node without a GPU, or makes it fail at start. Fix: set resources.gpus on the replicas "
         "that use GPUs (or drop the GPU scheduling)."),
    Rule("resource-requests", "warning", "a replica has no cpu or memory request",
         "Without requests the scheduler packs training pods onto full nodes; they get throttled, "
         "or OOM-killed and evicted first (BestEffort). Quotas in many namespaces also reject "
         "them. Fix: set resources.cpu and resources.memory (for the spec or per replica)."),
    Rule("ttl-after-finished", "warning", "runPolicy.ttlSecondsAfterFinished is set",
         "The TTL deletes a finished job. Under Argo CD auto-sync (or any reconciler of the rendered "
         "folder) the job is then missing from the cluster, is re-created, and training runs again, "
         "forever (argo-cd issues 8586, 13851). With hashed names old jobs are pruned when the spec "
         "changes, so a TTL is not needed. Fix: remove it, or ignore this rule if nothing syncs "
         "the rendered output automatically."),
    Rule("name-length", "warning", "the job name is close to its length budget",
         "Pod names are <job>-<replica type>-<index> (63 characters at most), and hashed naming adds "
         "9 characters. A name near the budget stops fitting when the replica count gains a digit "
         "or a longer replica type is added, and validation then fails. Fix: a shorter "
         "metadata.name."),
    Rule("kueue-v1", "warning", "scheduling.queue on a training-operator v1 kind, which Kueue no longer manages by default",
         "Kueue v0.19 and later turn their integrations for the Kubeflow training-operator v1 kinds "
         "(TFJob, PyTorchJob, XGBoostJob, JAXJob, PaddleJob) off by default: unless the cluster's Kueue "
         "configuration lists the kind under integrations.frameworks, the queue-name label is ignored and "
         "the job starts at once, outside any quota. Kubeflow Trainer v2's TrainJob is the kind Kueue "
         "manages going forward; specc will render it with spec.target: trainjob. Fix: check that your "
         "Kueue enables this kind's integration, or ignore this rule where it does. batch/v1 Jobs "
         "(sklearn, python) are not affected."),
    Rule("target-trainjob", "warning", "the spec renders a Kubeflow Trainer v2 TrainJob",
         "With spec.target: trainjob (or a .specc.yaml default) a spec renders a TrainJob for Kubeflow "
         "Trainer v2.3 (trainer.kubeflow.org/v1alpha1) instead of a TFJob or PyTorchJob. The job gets a new "
         "name: moving a spec from v1 makes Argo CD create the TrainJob, so training runs again, and prune the "
         "v1 job, stopping it if it still runs. The cluster needs Trainer v2.3 (runtimePatches exist from "
         "v2.2) and, for the Argo CD health and sync settings, `specc argocd health` and `specc argocd app`. "
         "Fix: nothing, once the move is intended; silence the rule in the spec after it has moved."),
    Rule("trainjob-ttl", "warning", "ttlSecondsAfterFinished on a TrainJob deletes its pods, not the TrainJob",
         "Trainer v2.3 has no TTL for a TrainJob. specc puts ttlSecondsAfterFinished on the JobSet of its "
         "TrainingRuntime: the JobSet and its pods go that long after the job finishes, and the finished "
         "TrainJob stays (Trainer does not run it again) until its spec changes or is removed. Fix: nothing, if "
         "that is what you want; remove the TTL to keep the pods and their logs."),
    Rule("unknown-rule", "warning", "spec.lint.ignore or allow names a rule that does not exist",
         "A misspelt rule in spec.lint.ignore silences nothing. Fix: use a name from "
         "`specc lint --list-rules`."),
    Rule("unused-allow", "warning", "a spec.lint.allow entry matches no finding",
         "An allow entry accepts one finding at one field. When the field changed or the finding "
         "went away, the entry silences nothing and would hide a future finding there. Fix: remove "
         "the entry, or correct its 'at' to the field the finding names."),
)}

#: A name within this many characters of its budget gets a name-length warning.
NAME_MARGIN = 4

# ---------------------------------------------------------------------------- GPU hints

_GPU_KEY = re.compile(r"(?i)(nvidia\.com/gpu|amd\.com/gpu|gpu|accelerator)")
_NUM_GPUS_ARG = re.compile(r"(?i)^--?num[_-]?gpus(?:=(\d+))?$")


# ---------------------------------------------------------------------------- the rules


def _image_tag(doc, job) -> Iterator[tuple[tuple, str]]:
    images = []
    if job.spec.image is not None:
        images.append((("spec", "image"), job.spec.image))
    if job.spec.container is not None:
        images.append((("spec", "container", "image"), job.spec.container.image))
    for loc, image in images:
        name, _, digest = image.partition("@")
        last = name.rsplit("/", 1)[-1]
        tag = last.partition(":")[2] if ":" in last else ""
        if tag == "latest":
            yield loc, f"image {image!r} uses :latest, which moves; pin a version tag or a digest"
        elif not tag and not digest:
            yield loc, f"image {image!r} has no tag or digest (means :latest); pin a version tag or a digest"


def _replicas(job):
    from compiler.kinds import replicas

    return replicas(job)


def _gpus(job, rep) -> int:
    """GPUs of a replica: nvidia.com/gpu and any extended `<vendor>/gpu`, merged resources."""
    from compiler.kinds.pod import merged_resources

    res = merged_resources(job, rep)
    return (res.get("gpus") or 0) + sum(n for name, n in (res.get("extended") or {}).items() if name.endswith("/gpu"))


def _gpu_limits(doc, job) -> Iterator[tuple[tuple, str]]:
    spec = job.spec
    reps = _replicas(job)
    any_gpu = any(_gpus(job, r) for r in reps.values())
    if not any_gpu:
        for key in spec.scheduling.nodeSelector:
            if _GPU_KEY.search(key):
                yield ("spec", "scheduling", "nodeSelector", key), (
                    f"nodeSelector {key} picks GPU nodes but no replica sets resources.gpus: pods get no GPU")
        for i, tol in enumerate(spec.scheduling.tolerations):
            if tol.key and _GPU_KEY.search(tol.key):
                yield ("spec", "scheduling", "tolerations", i), (
                    f"toleration for {tol.key} lets pods onto GPU nodes but no replica sets resources.gpus: pods get no GPU")
    if spec.nprocPerNode == "gpu":
        without = [rtype for rtype, rep in reps.items() if not _gpus(job, rep)]
        if without:
            yield ("spec", "nprocPerNode"), (
                f"nprocPerNode: gpu starts one process per GPU, but {', '.join(without)} "
                f"{'has' if len(without) == 1 else 'have'} no resources.gpus")
    # `--num_gpus=N` / `--num-gpus N` in the command of a replica without GPUs.
    found: dict[tuple, tuple[str, list[str]]] = {}
    for rtype, rep in reps.items():
        if _gpus(job, rep):
            continue
        lists = []
        if spec.container is not None:
            lists += [(("spec", "container", "command"), spec.container.command),
                      (("spec", "container", "args"), spec.container.args)]
        lists.append((("spec", "replicas", rtype, "args"), rep.args))
        for base, args in lists:
            for i, arg in enumerate(args):
                m = _NUM_GPUS_ARG.match(arg)
                if not m:
                    continue
                n = m.group(1) or (args[i + 1] if i + 1 < len(args) else "")
                if n.isdigit() and int(n) > 0:
                    found.setdefault((*base, i), (arg, []))[1].append(rtype)
    for loc, (arg, who) in found.items():
        yield loc, f"{arg} asks for GPUs but {', '.join(who)} {'has' if len(who) == 1 else 'have'} no resources.gpus"


def _resource_requests(doc, job) -> Iterator[tuple[tuple, str]]:
    from compiler.kinds.pod import merged_resources

    for rtype, rep in _replicas(job).items():
        res = merged_resources(job, rep)
        missing = [k for k in ("cpu", "memory") if res.get(k) is None]
        if not missing:
            continue
        if rep.resources is not None:
            loc = ("spec", "replicas", rtype, "resources")
        elif job.spec.resources is not None:
            loc = ("spec", "resources")
        elif job.spec.replicas and rtype in job.spec.replicas and not isinstance(job.spec.replicas[rtype], int):
            loc = ("spec", "replicas", rtype)
        else:
            loc = ("spec",)
        yield loc, f"{rtype} pods have no {' or '.join(missing)} request: set resources.{missing[0]}"


def ttl_reruns(job) -> bool:
    """Whether the spec's TTL deletes its finished job (which Argo CD then re-creates): a v1 or
    batch job's does; a TrainJob's deletes only its JobSet, and the finished TrainJob stays."""
    return job.spec.runPolicy.ttlSecondsAfterFinished is not None and job.spec.target != "trainjob"


def _ttl(doc, job) -> Iterator[tuple[tuple, str]]:
    if ttl_reruns(job):
        yield ("spec", "runPolicy", "ttlSecondsAfterFinished"), (
            "the TTL deletes the finished job; with Argo CD auto-sync it is re-created and training runs again")


def _target_trainjob(doc, job) -> Iterator[tuple[tuple, str]]:
    if job.spec.target == "trainjob":
        written = doc.pos(("spec", "target"), key=True) != doc.pos(("spec",), key=True)  # else set by .specc.yaml
        where = "spec.target" if written else "the .specc.yaml default"
        yield ("spec", "target"), (
            f"renders a Kubeflow Trainer v2.3 TrainJob ({where}): a spec moved from v1 gets a new name, so its "
            "training runs again and Argo CD prunes the v1 job")


def _trainjob_ttl(doc, job) -> Iterator[tuple[tuple, str]]:
    if job.spec.target == "trainjob" and job.spec.runPolicy.ttlSecondsAfterFinished is not None:
        yield ("spec", "runPolicy", "ttlSecondsAfterFinished"), (
            "Trainer v2 has no TTL on the TrainJob itself: this deletes the JobSet and its pods after the job "
            "finishes, and the TrainJob stays")


def _name_length(doc, job) -> Iterator[tuple[tuple, str]]:
    from compiler.kinds import workload

    budget = workload(job).name_budget(job)
    n = len(job.metadata.name)
    if budget - NAME_MARGIN < n <= budget:
        yield ("metadata", "name"), (
            f"name is {n} characters and at most {budget} fit its pod names; more replicas "
            f"(another index digit) or a longer replica type would not fit")


def _kueue_v1(doc, job) -> Iterator[tuple[tuple, str]]:
    from compiler.kinds import v1, workload

    kind = workload(job)
    if job.spec.scheduling.queue is not None and kind.API_VERSION == v1.API_VERSION:
        yield ("spec", "scheduling", "queue"), (
            f"Kueue v0.19+ does not manage {kind.KIND} unless its integration is enabled: the job may start "
            "outside the queue; Trainer v2's TrainJob (spec.target: trainjob) is the kind Kueue manages")


_CHECKS = {
    "image-tag": _image_tag,
    "gpu-limits": _gpu_limits,
    "resource-requests": _resource_requests,
    "ttl-after-finished": _ttl,
    "name-length": _name_length,
    "kueue-v1": _kueue_v1,
    "target-trainjob": _target_trainjob,
    "trainjob-ttl": _trainjob_ttl,
}


#: Rules that validation enforces: they cannot be ignored or disabled, only allowed one place at a time.
VALIDATION_RULES = frozenset({credentials.RULE})


def lint(doc, job, *, disabled: frozenset[str] = frozenset()) -> list[Diagnostic]:
    """Findings of every rule for one loaded, validated spec, minus those it ignores or allows."""
    from compiler.diagnostics import did_you_mean

    ignored = set(job.spec.lint.ignore) | set(disabled)
    out: list[Diagnostic] = []

    def warn(loc: tuple, message: str, rule: str) -> None:
        if rule not in ignored:
            line, col = doc.pos(loc)
            out.append(Diagnostic(doc.path, line, col, dotted(loc), message, severity="warning", rule=rule))

    for i, name in enumerate(job.spec.lint.ignore):
        if name in VALIDATION_RULES:
            warn(("spec", "lint", "ignore", i), f"{name} cannot be ignored for a whole spec; accept one finding "
                 f"at a time with spec.lint.allow: [{{rule: {name}, at: <field>}}]", "unknown-rule")
        elif name not in RULES:
            hint = did_you_mean(name, RULES)
            warn(("spec", "lint", "ignore", i), f"unknown lint rule {name!r}{'; ' + hint if hint else ''}", "unknown-rule")
    allowed = {(a.rule, a.at): i for i, a in enumerate(job.spec.lint.allow)}
    # An allowed credential finding is used when validation still finds it (only then scanned).
    used = set()
    if any(a.rule == credentials.RULE for a in job.spec.lint.allow):
        used = {(credentials.RULE, dotted(loc)) for loc, _ in credentials.findings(doc.data)}
    for name, fn in _CHECKS.items():
        if name in ignored:
            continue
        rule = RULES[name]
        for loc, message in fn(doc, job):
            field = dotted(loc)
            if (name, field) in allowed:
                used.add((name, field))
                continue
            line, col = doc.pos(loc)
            out.append(Diagnostic(doc.path, line, col, field, message, severity=rule.severity, rule=name))
    for (name, at), i in allowed.items():
        loc = ("spec", "lint", "allow", i)
        if name not in RULES:
            hint = did_you_mean(name, RULES)
            warn((*loc, "rule"), f"unknown lint rule {name!r}{'; ' + hint if hint else ''}", "unknown-rule")
        elif (name, at) not in used and name not in ignored:
            warn((*loc, "at"), f"no {name} finding at {at}: nothing to allow", "unused-allow")
    return sorted(set(out), key=Diagnostic.sort_key)


def lint_paths(paths: list[str], *, disabled: frozenset[str] = frozenset()) -> list[Diagnostic]:
    """Load, validate and lint spec files/folders; invalid specs yield their validation errors."""
    from compiler import pipeline

    units, out = pipeline.run(paths, stage=pipeline.VALIDATE)
    for u in units:
        out.extend(lint(u.doc, u.job, disabled=disabled))
    return out


def format_line(d: Diagnostic) -> str:
    """`file:line:col: field: message [rule]`; warnings say so before the message."""
    text = f"{d.path}:{d.line}:{d.col}: "
    if d.field:
        text += f"{d.field}: "
    if d.severity == "warning":
        text += "warning: "
    text += d.message
    if d.rule:
        text += f" [{d.rule}]"
    return text


def explain(name: str) -> str:
    """The long explanation of one rule, and how to silence it."""
    r = RULES[name]
    import textwrap

    body = textwrap.fill(r.explanation, width=88)
    allow = f"    lint:\n      allow:\n        - {{rule: {r.name}, at: <the field the finding names>, reason: ...}}\n"
    if name in VALIDATION_RULES:
        how = f"Accept one finding (validation enforces this rule) with:\n  spec:\n{allow}"
    else:
        how = (f"Silence it for one spec with:\n  spec:\n    lint:\n      ignore: [{r.name}]\n"
               f"or accept one finding with:\n  spec:\n{allow}")
    return f"{r.name} ({r.severity}): {r.summary}\n\n{body}\n\n{how}"


def listing() -> str:
    """One line per rule: name, severity, summary."""
    width = max(len(n) for n in RULES)
    return "\n".join(f"{r.name:<{width}}  {r.severity:<7}  {r.summary}" for r in RULES.values()) + "\n"
