"""Validate stage: a loaded document -> a validated TrainingJob, or every problem, located.

The models' schema (compiler/validator.py) checks types and ranges, compiler/checks.py the rules
that span fields; each problem becomes a `Diagnostic` at its source line and column.
"""

from __future__ import annotations

import re

from compiler import validator
from compiler.checks import check
from compiler.diagnostics import Diagnostic, SpecError, did_you_mean
from compiler.loader import Loaded

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Any

    from compiler.spec import TrainingJob

_CREDENTIAL_KEY = re.compile(r"(?i)(secret|password|passwd|token|access_?key|api_?key|credential)")


def validate(doc: Loaded) -> TrainingJob:
    """The validated TrainingJob of a loaded document; raises SpecError with every problem."""
    try:
        job = validator.validate(doc.data)
    except validator.validation_error() as exc:
        raise SpecError(_dedupe(_from_errors(doc, exc.errors(include_url=False)))) from None
    diags = []
    for loc, message, *where in check(job):
        line, col = doc.pos(loc, key=True) if where == ["key"] else _check_pos(doc, loc)
        diags.append(Diagnostic(doc.path, line, col, dotted(loc), message))
    if diags:
        raise SpecError(_dedupe(diags))
    return job


def _node(data: Any, loc: tuple) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _check_pos(doc: Loaded, loc: tuple) -> tuple[int, int]:
    """Scalars are reported at their value; mappings, lists and absent fields at their key."""
    node = _node(doc.data, loc)
    scalar = node is not None and not isinstance(node, (dict, list))
    return doc.pos(loc, key=not scalar)


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen, out = set(), []
    for d in diags:
        k = (d.path, d.line, d.col, d.field, d.message)
        if k not in seen:
            seen.add(k)
            out.append(d)
    return sorted(out, key=lambda d: (d.path, d.line, d.col, d.field))


def dotted(loc: tuple) -> str:
    """A document location as `spec.replicas.Worker.args[0]`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# Which Python values each branch of a union takes (strict mode: no coercion).
_BRANCH_TYPES = {
    "model": (dict,), "str": (str,), "int": (int,), "float": (float, int), "bool": (bool,),
    "list": (list,), "dict": (dict,),
}
_BRANCH_WORDS = {"model": "a mapping", "str": "a string", "int": "an integer", "float": "a number",
                 "bool": "true or false", "list": "a list", "dict": "a mapping"}


def _fits(branch: dict, value: Any) -> bool:
    t = branch.get("type")
    if t == "literal":
        return any(type(value) is type(e) for e in branch.get("expected", []))
    types = _BRANCH_TYPES.get(t, ())
    if isinstance(value, bool) and t != "bool":
        return False
    return isinstance(value, types)


def _branch_words(branch: dict) -> str:
    t = branch.get("type")
    if t == "literal":
        return " or ".join(repr(e) for e in branch.get("expected", []))
    if t == "model":
        return f"a mapping ({', '.join(branch['schema']['fields'])})"
    return _BRANCH_WORDS.get(t, str(t))


def _from_errors(doc: Loaded, errors: list[dict]) -> list[Diagnostic]:
    """Diagnostics for pydantic-core's errors; of a union, only the member that fits the value."""
    diags: list[Diagnostic] = []
    unions: dict[tuple, list[tuple[validator.Located, dict]]] = {}
    for err in errors:
        where = validator.Located(tuple(err["loc"]))
        if where.union is not None:
            unions.setdefault(where.union, []).append((where, err))
        else:
            diags.append(_diagnostic(doc, where, err))
    for uloc, items in unions.items():
        value = _node(doc.data, uloc)
        fitting = [(w, e) for w, e in items if _fits(w.branch, value)]
        if len({id(w.branch) for w, _ in fitting}) == 1:
            diags += [_diagnostic(doc, w, e) for w, e in fitting]
            continue
        options = []
        for w, _ in items:
            words = _branch_words(w.branch)
            if words not in options:
                options.append(words)
        if fitting:  # several members take this type: say what each wanted
            wants = []
            for _, e in fitting:
                want = e["msg"].removeprefix("Input should be ").removeprefix("Value error, ")
                if want not in wants:
                    wants.append(want)
            message = f"must be {' or '.join(wants)}, got {value!r}"
        else:
            message = f"must be {' or '.join(options)}, got {_type_name(value)}"
        line, col = doc.pos(uloc)
        diags.append(Diagnostic(doc.path, line, col, dotted(uloc), message))
    return diags


def _diagnostic(doc: Loaded, where: validator.Located, err: dict) -> Diagnostic:
    loc = where.loc
    kind = err["type"]
    message = err["msg"]
    key = where.key
    if kind == "extra_forbidden":
        name = str(loc[-1])
        key = True
        value = err.get("input")
        if _CREDENTIAL_KEY.search(name) and not isinstance(value, (dict, list)):
            message = (
                f"literal credentials are not allowed ('{name}'): reference a Kubernetes Secret "
                "(spec.storage.credentials.secretName, or env valueFrom secretKeyRef)"
            )
        else:
            message = f"unknown field '{name}'"
            hint = did_you_mean(name, validator.fields_at(loc[:-1], doc.data))
            if hint:
                message += f"; {hint}"
    elif kind == "missing":
        line, col = doc.pos(loc[:-1], key=True)
        return Diagnostic(doc.path, line, col, dotted(loc), f"missing required field '{loc[-1]}'")
    elif kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = re.findall(r"'([^']*)'", expected)
        message = f"must be one of {expected}, got {err.get('input')!r}"
        hint = did_you_mean(str(err.get("input")), options) if isinstance(err.get("input"), str) else None
        if hint:
            message += f"; {hint}"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = err.get("ctx", {})
        options = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        loc = (*loc, "name")
        if kind == "union_tag_not_found":
            line, col = doc.pos(loc[:-1], key=True)
            return Diagnostic(doc.path, line, col, dotted(loc), f"missing required field 'name' (one of {', '.join(options)})")
        tag = ctx.get("tag")
        message = f"unknown trainer {tag!r}; built-in trainers are {', '.join(options)}"
        hint = did_you_mean(str(tag), options)
        if hint:
            message += f"; {hint}"
    elif kind == "string_pattern_mismatch":
        message = _pattern_message(loc, err)
    elif kind.endswith("_type"):
        message = f"{message}, got {_type_name(err.get('input'))}"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    line, col = doc.pos(loc, key=key)
    return Diagnostic(doc.path, line, col, dotted(loc), message)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "mapping", list: "list"}.get(
        type(value), type(value).__name__
    )


_PATTERN_HINTS = {
    "name": "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter, ending with a letter or digit",
    "namespace": "must be a DNS-1123 label: lower-case letters, digits and '-'",
    "image": "must be an image reference like registry/path/name:tag or name@sha256:<64 hex>",
    "cpu": "must be a Kubernetes quantity like 500m, 2 or 1.5",
    "memory": "must be a Kubernetes quantity like 512Mi or 4Gi",
    "endpoint": "must be an http:// or https:// URL with host and optional port, e.g. http://minio-service.kubeflow:9000",
}


def _pattern_message(loc: tuple, err: dict) -> str:
    from runtime.contract import PATTERN_RULES

    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    hint = PATTERN_RULES.get(err.get("ctx", {}).get("pattern")) or _PATTERN_HINTS.get(last)
    if hint is None and last in ("cpuLimit", "memoryLimit", "sizeLimit"):
        hint = _PATTERN_HINTS["memory"]
    value = err.get("input")
    if isinstance(value, str) and re.search(r"[\x00-\x08\x0b-\x1f\x7f]", value):
        return "must not contain control characters"
    return f"{hint or err['msg']}, got {value!r}"
