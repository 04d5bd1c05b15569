"""Validate stage: a loaded document -> a validated TrainingJob, or every problem, located.

The models' schema (compiler/validator.py) checks types and ranges, compiler/checks.py the rules
that span fields; each problem becomes a `Diagnostic` at its source line and column.
"""

from __future__ import annotations

import re

from compiler import validator
from compiler.checks import check
from compiler.diagnostics import Diagnostic, SpecError, did_you_mean
from compiler.loader import Loaded, copy_tree
from runtime.credentials import secret_name

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Any

    from compiler.spec import TrainingJob

def validate(doc: Loaded) -> TrainingJob:
    """The validated TrainingJob of a loaded document; raises SpecError with every problem.

    All in one pass: literal credentials (read off the raw document), type and range errors,
    and the cross-field rules, which run on the document with its invalid parts left out.
    """
    diags = credential_diagnostics(doc)
    removed: list[tuple] = []
    try:
        job = validator.validate(doc.data)
    except validator.validation_error() as exc:
        errors = exc.errors(include_url=False)
        diags += _from_errors(doc, errors)
        job = _without_invalid_parts(doc.data, errors, removed)
    if job is not None:
        for loc, message, *where in check(job):
            if any(loc[:len(r)] == r or r[:len(loc)] == loc for r in removed):
                continue  # about a part left out: it may not hold once that part is fixed
            line, col = doc.pos(loc, key=True) if where == ["key"] else _check_pos(doc, loc)
            diags.append(Diagnostic(doc.path, line, col, dotted(loc), message))
    if diags:
        raise SpecError(diags)  # which drops repeats and sorts
    return job


def credential_diagnostics(doc: Loaded) -> list[Diagnostic]:
    """The literal-credential findings of a document, minus those its allow entries accept."""
    from compiler import credentials

    allow = {at for rule, at in credentials.allowed(doc.data) if rule == credentials.RULE}
    out = []
    for loc, message in credentials.findings(doc.data):
        field = dotted(loc)
        if field not in allow:
            line, col = _check_pos(doc, loc)
            out.append(Diagnostic(doc.path, line, col, field, message, rule=credentials.RULE))
    return out


#: Rounds of leaving out invalid parts before giving up on the cross-field rules.
_REPAIR_ROUNDS = 12


def _without_invalid_parts(data: Any, errors: list[dict], removed: list[tuple]):
    """The job validated from `data` with every invalid value left out (its field then takes
    its default; an invalid map entry goes; a list goes whole), or None when what is left out
    is required all the way up. The locations left out are appended to `removed`."""
    data = copy_tree(data)
    for _ in range(_REPAIR_ROUNDS):
        for err in errors:
            where = validator.Located(tuple(err["loc"]))
            loc = where.loc[:-1] if err["type"] == "missing" else where.loc
            loc = _droppable(data, loc)
            if not loc:
                return None
            parent = _node(data, loc[:-1])
            if isinstance(parent, dict) and loc[-1] in parent:
                del parent[loc[-1]]
                removed.append(loc)
        try:
            return validator.validate(data)
        except validator.validation_error() as exc:
            errors = exc.errors(include_url=False)
    return None


def _droppable(data: Any, loc: tuple) -> tuple:
    """`loc`, or the nearest ancestor of it that is a mapping entry (list items stay: removing
    one would move the ones after it)."""
    while loc and not isinstance(_node(data, loc[:-1]), dict):
        loc = loc[:-1]
    return loc


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


_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dotted(loc: tuple) -> str:
    """A document location as `spec.replicas.Worker.args[0]`; keys other than plain words are
    quoted (`metadata.annotations["sidecar.istio.io/inject"]`), so a path is always one line."""
    import json

    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _SIMPLE_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(str(part))}]"
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
    return _select(doc, [(validator.Located(tuple(e["loc"])), e) for e in errors], 0)


def _select(doc: Loaded, items: list, depth: int) -> list[Diagnostic]:
    """Report errors at union depth `depth`: per union, the errors of the member that fits the
    value (recursing into nested unions), else one message saying what would fit."""
    diags: list[Diagnostic] = []
    groups: dict[tuple, list] = {}
    for where, err in items:
        if len(where.unions) > depth:
            groups.setdefault(where.unions[depth][0], []).append((where, err))
        else:
            diags.append(_diagnostic(doc, where, err))
    for uloc, group in groups.items():
        value = _node(doc.data, uloc)
        fitting = [(w, e) for w, e in group if _fits(w.unions[depth][1], value)]
        if len({id(w.unions[depth][1]) for w, _ in fitting}) == 1:
            diags += _select(doc, fitting, depth + 1)
            continue
        if fitting:  # several members take this type: say what each wanted
            wants = []
            for _, e in fitting:
                want = e["msg"].removeprefix("Input should be ").removeprefix("Value error, ")
                if want not in wants:
                    wants.append(want)
            message = f"must be {' or '.join(wants)}, got {_shown(value)}"
        else:
            options = []
            for w, _ in group:
                words = _branch_words(w.unions[depth][1])
                if words not in options:
                    options.append(words)
            hint = _quote_hint("string_type", value) if "a string" in options else ""
            message = f"must be {' or '.join(options)}, got {_type_name(value)}{hint}"
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
        if secret_name(name) and not isinstance(value, (dict, list)):
            message = (
                f"literal credentials are not allowed ('{name}'): reference a Kubernetes Secret "
                "(spec.storage.credentials.secretName, or env valueFrom secretKeyRef)"
            )
        else:
            message = f"unknown field {_shown(name)}"
            hint = _near_miss(loc) or did_you_mean(name, validator.fields_at(loc[:-1], doc.data))
            if hint:
                message += f"; {hint}"
    elif kind == "missing":
        line, col = doc.pos(loc[:-1], key=True)
        return Diagnostic(doc.path, line, col, dotted(loc), f"missing required field '{loc[-1]}'")
    elif kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = re.findall(r"'([^']*)'", expected)
        message = f"must be one of {expected}, got {_shown(err.get('input'))}"
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
        message, index = _pattern_message(loc, err)
        if index is not None and not key:
            line, col = doc.pos(loc)
            return Diagnostic(doc.path, line, _column_of(doc, line, col, err["input"], index), dotted(loc), message)
    elif kind.endswith("_type"):
        message = f"{message}, got {_type_name(err.get('input'))}{_quote_hint(kind, err.get('input'))}"
        if kind == "dict_type" and loc and loc[-1] == "env" and isinstance(err.get("input"), list):
            message += "; env is a map NAME: value (or NAME: {secretKeyRef: ...}), not a list of {name, value}"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    line, col = doc.pos(loc, key=key)
    return Diagnostic(doc.path, line, col, dotted(loc), message)


# Kubernetes-shaped input, the most common mistake: where the field goes in a spec.
_NEAR_MISSES = {
    ("container", "env"): "env goes in spec.env or spec.replicas.<Type>.env",
    ("container", "resources"): "resources go in spec.resources or spec.replicas.<Type>.resources",
    ("container", "volumeMounts"): "volumes go in spec.volumes (name, mountPath and the source together)",
    ("container", "name"): "the container is named by the operator; a custom image needs only image and command",
    ("*replica", "replicas"): "use count",
    ("*replica", "template"): "use podTemplate (a pod template fragment)",
    ("*replica", "restartpolicy"): "did you mean 'restartPolicy'?",
    ("spec", "template"): "use podTemplate (a pod template fragment)",
    ("spec", "tfReplicaSpecs"): "replica types go in spec.replicas (Worker: {count: 2})",
    ("spec", "pytorchReplicaSpecs"): "replica types go in spec.replicas (Master: 1, Worker: 2)",
    ("spec", "runtimeRef"): "name a Trainer v2 runtime with spec.runtime",
}


def _near_miss(loc: tuple) -> str | None:
    """A pointer for a Kubernetes-shaped field in the wrong place, or None."""
    parent = "*replica" if len(loc) == 4 and loc[:2] == ("spec", "replicas") else (loc[-2] if len(loc) >= 2 else "")
    key = str(loc[-1])
    return _NEAR_MISSES.get((parent, key)) or _NEAR_MISSES.get((parent, key.lower()))


def _quote_hint(kind: str, value: Any) -> str:
    """For a number or boolean where text is wanted: how to write it as text."""
    if kind == "string_type" and isinstance(value, (int, float, bool)):
        import json

        return f"; quote it: {json.dumps(str(value).lower() if isinstance(value, bool) else str(value))}"
    return ""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "mapping", list: "list"}.get(
        type(value), type(value).__name__
    )


def _pattern_message(loc: tuple, err: dict) -> tuple[str, int | None]:
    """What the value must look like, and the index of the character that breaks it (if any)."""
    from compiler.patterns import RULES

    value = err.get("input")
    rule = RULES.get(err.get("ctx", {}).get("pattern"), err["msg"])
    if isinstance(value, str):
        bad = next((c for c in value if c in "\n\r\x85\u2028\u2029" or c < " " or c == "\x7f"), None)
        if bad is not None and "control characters" not in rule:
            return f"{rule}; found control character U+{ord(bad):04X} at character {value.index(bad) + 1}", value.index(bad)
        foreign = next((c for c in value if ord(c) > 0x7e), None)
        if foreign is not None:
            return f"{rule}; {_character(foreign)} at character {value.index(foreign) + 1} is not ASCII (a look-alike?)", value.index(foreign)
    return f"{rule}, got {_shown(value)}", None


def _column_of(doc: Loaded, line: int, col: int, value: str, index: int) -> int:
    """The column of value[index] when the scalar stands on its source line as written (plain or
    quoted without escapes before it); else the scalar's own column."""
    lines = doc.text.splitlines()
    raw = lines[line - 1][col - 1:] if 0 < line <= len(lines) else ""
    for skip in (0, 1):
        if raw[skip:skip + index + 1] == value[:index + 1]:
            return col + skip + index
    return col


def _character(c: str) -> str:
    """`'і' (U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I)`."""
    import unicodedata

    return f"{c!r} (U+{ord(c):04X} {unicodedata.name(c, 'unnamed character')})"


def _shown(value: Any) -> str:
    """A value for a message: quoted, one line, bounded, credentials masked."""
    from runtime.credentials import mask

    text = repr(mask(value) if isinstance(value, str) else value)
    return text if len(text) <= 80 else text[:77] + "..."
