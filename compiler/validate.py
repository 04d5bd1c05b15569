"""Validate a loaded document against the spec models and the cross-field checks.

Every problem becomes a `Diagnostic` placed at its source line and column; all of them are
reported at once.
"""

from __future__ import annotations

import re
import types
from compiler.checks import check
from compiler.diagnostics import Diagnostic, SpecError, did_you_mean
from compiler.loader import Loaded

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Any

    from compiler.spec import TrainingJob

_CREDENTIAL_KEY = re.compile(r"(?i)(secret|password|passwd|token|access_?key|api_?key|credential)")
_STR_TAGS = {"str", "constrained-str"}
_UNION_TAGS = _STR_TAGS | {"EnvFrom", "int"}


def validate(doc: Loaded, *, fast: bool = False):
    """Return the validated TrainingJob of a loaded document, or raise SpecError.

    With fast=True a document the pydantic-core snapshot validator accepts (compiler/fastvalid.py)
    is returned as its plain records without importing pydantic; anything else, every invalid
    document included, goes through the pydantic models, which report the problems.
    """
    if fast:
        from compiler import fastvalid

        job = fastvalid.validate_spec(doc.data)
        if job is not None:
            _raise_checks(doc, job)
            return job
    from pydantic import ValidationError

    from compiler.spec import TrainingJob

    try:
        job = TrainingJob.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError(_dedupe(_from_pydantic(doc, exc))) from None
    _raise_checks(doc, job)
    return job


def _raise_checks(doc: Loaded, job) -> None:
    """Raise SpecError with the cross-field problems of a validated job, if any."""
    diags = []
    for loc, message, *where in check(job):
        line, col = doc.pos(loc, key=True) if where == ["key"] else _check_pos(doc, loc)
        diags.append(Diagnostic(doc.path, line, col, _dotted(loc), message))
    if diags:
        raise SpecError(_dedupe(diags))


def validated(paths) -> tuple[list[tuple[Loaded, TrainingJob]], list[Diagnostic]]:
    """Discover, load and validate spec files/folders: the valid ones, and every problem found."""
    from compiler.discover import discover
    from compiler.loader import load_file

    try:
        files = discover(paths)
    except SpecError as exc:
        return [], list(exc.diagnostics)
    good, diags = [], []
    for f in files:
        try:
            doc = load_file(f)
            good.append((doc, validate(doc)))
        except SpecError as exc:
            diags.extend(exc.diagnostics)
    return good, diags


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


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clean_loc(doc: Loaded, loc: tuple) -> tuple:
    """Drop pydantic's union-member and discriminator tags so loc matches the document."""
    out: list[Any] = []
    node: Any = doc.data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and out and out[-1] == "trainer" and part == node.get("name"):
            continue  # discriminator tag
        elif isinstance(part, str) and (part in _UNION_TAGS or part.startswith("function-")):
            continue
        else:
            out.append(part)
            node = None
    return tuple(out)


def _from_pydantic(doc: Loaded, exc) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    union_seen: set[tuple] = set()
    for err in exc.errors(include_url=False):
        raw_loc = tuple(err["loc"])
        loc = _clean_loc(doc, raw_loc)
        kind = err["type"]
        message = err["msg"]
        key = False
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
                hint = did_you_mean(name, _known_fields(loc[:-1], doc.data))
                if hint:
                    message += f"; {hint}"
        elif "env" in loc and any(isinstance(p, str) and p in _UNION_TAGS for p in raw_loc):
            # An env value is a string or a reference mapping: report the branch that fits.
            is_str_branch = any(isinstance(p, str) and p in _STR_TAGS for p in raw_loc)
            value = _node(doc.data, loc[: loc.index("env") + 2])
            if isinstance(value, dict):
                if is_str_branch:
                    continue
                if kind == "missing":
                    line, col = doc.pos(loc[:-1], key=True)
                    diags.append(Diagnostic(doc.path, line, col, _dotted(loc), f"missing required field '{loc[-1]}'"))
                    continue
            elif isinstance(value, str):
                if not is_str_branch:
                    continue
            else:
                if loc in union_seen:
                    continue
                union_seen.add(loc)
                message = "must be a string, or a mapping with one of secretKeyRef, configMapKeyRef, fieldRef"
        elif kind == "missing":
            message = f"missing required field '{loc[-1]}'"
            line, col = doc.pos(loc[:-1], key=True)
            diags.append(Diagnostic(doc.path, line, col, _dotted(loc), message))
            continue
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
            tag = ctx.get("tag")
            loc = (*loc, "name")
            if kind == "union_tag_not_found":
                message = f"missing required field 'name' (one of {', '.join(options)})"
                line, col = doc.pos(loc[:-1], key=True)
                diags.append(Diagnostic(doc.path, line, col, _dotted(loc), message))
                continue
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
        diags.append(Diagnostic(doc.path, line, col, _dotted(loc), message))
    return diags


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
    "mountPath": "must be an absolute path without ':'",
}


def _pattern_message(loc: tuple, err: dict) -> str:
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    hint = _PATTERN_HINTS.get(last)
    if hint is None and last in ("cpuLimit", "memoryLimit", "sizeLimit"):
        hint = _PATTERN_HINTS["memory"]
    value = err.get("input")
    if isinstance(value, str) and re.search(r"[\x00-\x08\x0b-\x1f\x7f]", value):
        return "must not contain control characters"
    return f"{hint or err['msg']}, got {value!r}"


def _is_model(t: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(t, type) and issubclass(t, BaseModel)


def _known_fields(loc: tuple, data: Any) -> list[str]:
    """Field names accepted at a document location (for "did you mean")."""
    from compiler.spec import TrainingJob

    model: Any = TrainingJob
    node: Any = data
    for part in loc:
        child = node.get(part) if isinstance(node, dict) else (node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
        model = _step(model, part, node)
        node = child
        if model is None:
            return []
    model = _pick_model(model, node)
    return list(model.model_fields) if _is_model(model) else []


def _unwrap(tp: Any) -> list[Any]:
    import typing

    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        out = []
        for a in typing.get_args(tp):
            out += _unwrap(a)
        return out
    return [tp]


def _pick_model(tp: Any, node: Any) -> Any:
    import typing

    cands = [t for t in _unwrap(tp) if _is_model(t)]
    if len(cands) > 1 and isinstance(node, dict) and "name" in node:
        for c in cands:
            f = c.model_fields.get("name")
            if f is not None and typing.get_args(f.annotation) == (node["name"],):
                return c
    return cands[0] if cands else tp


def _step(tp: Any, part: Any, node: Any) -> Any:
    import typing

    for t in _unwrap(tp):
        if _is_model(t):
            if isinstance(part, str) and part in t.model_fields:
                return t.model_fields[part].annotation
            continue
        origin = typing.get_origin(t)
        if origin is dict and isinstance(part, str):
            return typing.get_args(t)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(t)[0]
    # A discriminated union member chosen by the node's name.
    model = _pick_model(tp, node)
    if _is_model(model) and isinstance(part, str) and part in model.model_fields:
        return model.model_fields[part].annotation
    return None
