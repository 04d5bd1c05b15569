"""`specc lint`: named rules for valid specs that will still hurt in a cluster or under GitOps.

Validation (compiler/validate.py) refuses what cannot work; lint flags what works but is
risky: leaked credentials, mutable images, GPUs requested by half, pods without requests,
TTLs that fight Argo CD, names at the edge of their budget. Every finding is a located
`Diagnostic` with `rule` set; a spec silences rules with

    spec:
      lint:
        ignore: [resource-requests, name-length]

which is never rendered, so it does not change the manifests or the job's hashed name.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator

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
         "anyone with the repository. Validation already refuses literal values for credential-named "
         "env variables; this rule looks at every string: URLs with user:password@, well-known token "
         "formats (GitHub, GitLab, Slack, Hugging Face, OpenAI, Google, AWS, JWTs, private keys), "
         "'Bearer ...', '--password VALUE' arguments, and random-looking env values under names such "
         "as *_KEY / *_AUTH. Fix: store the value in a Kubernetes Secret and reference it "
         "({secretKeyRef: {name: ..., key: ...}} in env; storage.credentials.secretName for S3)."),
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
    Rule("unknown-rule", "warning", "spec.lint.ignore names a rule that does not exist",
         "A misspelt rule in spec.lint.ignore silences nothing. Fix: use a name from "
         "`specc lint --list-rules`."),
)}

#: A name within this many characters of its budget gets a name-length warning.
NAME_MARGIN = 4

# ---------------------------------------------------------------------------- credential patterns

# scheme://user:password@host (a password made only of $(VAR) / ${VAR} expansions is fine).
_URL_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/\s:@]+):([^/\s@]+)@")
_TOKENS = (
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("an OpenAI-style API key", re.compile(r"\bsk-(proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("a bearer token", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*")),
    ("a password/token assignment", re.compile(
        r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)(?:\s*=\s*|:)(?![$<{])[^\s,;&]{4,}")),
)
_SECRET_FLAG = re.compile(r"(?i)^--?(password|passwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?token)$")
_KEYISH_ENV = re.compile(r"(?i)(KEY|AUTH|PASS|PWD|CRED|SESSION|SIGNATURE|SIGNING|BEARER)")
_RANDOMISH = re.compile(r"^[A-Za-z0-9+/=_.~-]{16,}$")
_EXPANSION = re.compile(r"^(\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\{[A-Za-z_][A-Za-z0-9_]*\})+$")

# ---------------------------------------------------------------------------- GPU hints

_GPU_KEY = re.compile(r"(?i)(nvidia\.com/gpu|amd\.com/gpu|gpu|accelerator)")
_NUM_GPUS_ARG = re.compile(r"(?i)^--?num[_-]?gpus(?:=(\d+))?$")


def _entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def looks_random(value: str) -> bool:
    """True for long token-like strings (mixed letters and digits, high entropy)."""
    return (
        bool(_RANDOMISH.match(value))
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and _entropy(value) >= 3.5
    )


def credential_in(value: str) -> str | None:
    """What credential a string seems to contain ("a GitHub token"...), or None."""
    m = _URL_USERINFO.search(value)
    if m and not _EXPANSION.match(m.group(2)):
        return "a URL with user:password@"
    for what, pattern in _TOKENS:
        if pattern.search(value):
            return what
    return None


def _strings(node: Any, loc: tuple) -> Iterator[tuple[tuple, str]]:
    """Every string value in loaded spec data with its location."""
    if isinstance(node, str):
        yield loc, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, (*loc, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, (*loc, i))


# ---------------------------------------------------------------------------- the rules


def _literal_credential(doc, job) -> Iterator[tuple[tuple, str]]:
    reported: set[tuple] = set()
    for loc, value in _strings(doc.data, ()):
        what = credential_in(value)
        if what:
            reported.add(loc)
            yield loc, f"looks like {what}: keep it in a Kubernetes Secret and reference it"
    # Arguments: `--password VALUE` as two list items.
    spec = job.spec
    arg_lists: list[tuple[tuple, list[str]]] = []
    if spec.container is not None:
        arg_lists += [(("spec", "container", "command"), spec.container.command),
                      (("spec", "container", "args"), spec.container.args)]
    arg_lists += [(("spec", "replicas", t, "args"), r.args) for t, r in _replicas(job).items()]
    for base, args in arg_lists:
        for i in range(len(args) - 1):
            loc = (*base, i + 1)
            nxt = args[i + 1]
            if _SECRET_FLAG.match(args[i]) and not nxt.startswith("-") and not _EXPANSION.match(nxt) and loc not in reported:
                reported.add(loc)
                yield loc, f"literal value for {args[i]}: pass it through env from a Secret ($(VAR) expands env in args)"
    # Env values under key-like names that look like tokens.
    envs = [(("spec", "env"), spec.env)] + [(("spec", "replicas", t, "env"), r.env) for t, r in _replicas(job).items()]
    for base, env in envs:
        for name, value in env.items():
            loc = (*base, name)
            if isinstance(value, str) and loc not in reported and _KEYISH_ENV.search(name) and looks_random(value):
                reported.add(loc)
                yield loc, f"{name} holds a literal token-like value: reference a Secret (secretKeyRef)"


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
    res = rep.resources or job.spec.resources
    return res.gpus if res is not None else 0


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
    for rtype, rep in _replicas(job).items():
        res = rep.resources or job.spec.resources
        missing = [k for k in ("cpu", "memory") if res is None or getattr(res, k) is None]
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


def _ttl(doc, job) -> Iterator[tuple[tuple, str]]:
    if job.spec.runPolicy.ttlSecondsAfterFinished is not None:
        yield ("spec", "runPolicy", "ttlSecondsAfterFinished"), (
            "the TTL deletes the finished job; with Argo CD auto-sync it is re-created and training runs again")


def _name_length(doc, job) -> Iterator[tuple[tuple, str]]:
    from compiler.kinds import workload

    budget = workload(job).name_budget(job)
    n = len(job.metadata.name)
    if budget - NAME_MARGIN < n <= budget:
        yield ("metadata", "name"), (
            f"name is {n} characters and at most {budget} fit its pod names; more replicas "
            f"(another index digit) or a longer replica type would not fit")


_CHECKS = {
    "literal-credential": _literal_credential,
    "image-tag": _image_tag,
    "gpu-limits": _gpu_limits,
    "resource-requests": _resource_requests,
    "ttl-after-finished": _ttl,
    "name-length": _name_length,
}


def lint(doc, job, *, disabled: frozenset[str] = frozenset()) -> list[Diagnostic]:
    """Findings of every rule for one loaded, validated spec, minus those it ignores."""
    from compiler.diagnostics import did_you_mean

    ignored = set(job.spec.lint.ignore) | set(disabled)
    out: list[Diagnostic] = []
    for i, name in enumerate(job.spec.lint.ignore):
        if name not in RULES and "unknown-rule" not in ignored:
            hint = did_you_mean(name, RULES)
            line, col = doc.pos(("spec", "lint", "ignore", i))
            out.append(Diagnostic(doc.path, line, col, f"spec.lint.ignore[{i}]",
                                  f"unknown lint rule {name!r}{'; ' + hint if hint else ''}",
                                  severity="warning", rule="unknown-rule"))
    for name, fn in _CHECKS.items():
        if name in ignored:
            continue
        rule = RULES[name]
        for loc, message in fn(doc, job):
            line, col = doc.pos(loc)
            out.append(Diagnostic(doc.path, line, col, dotted(loc), message, severity=rule.severity, rule=name))
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
    """The long explanation of one rule."""
    r = RULES[name]
    import textwrap

    body = textwrap.fill(r.explanation, width=88)
    return f"{r.name} ({r.severity}): {r.summary}\n\n{body}\n\nSilence it for one spec with:\n  spec:\n    lint:\n      ignore: [{r.name}]\n"


def listing() -> str:
    """One line per rule: name, severity, summary."""
    width = max(len(n) for n in RULES)
    return "\n".join(f"{r.name:<{width}}  {r.severity:<7}  {r.summary}" for r in RULES.values()) + "\n"
