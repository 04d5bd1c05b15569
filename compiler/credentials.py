"""The literal-credential rule: credentials belong in Kubernetes Secrets, never in a spec.

It reads the raw loaded document (before, and whatever, the models say), so a spec with type
errors still gets its credential findings in the same pass. Validation reports the findings as
errors and `specc lint` shows the same ones; both name the rule. A false positive is accepted one
place at a time:

    spec:
      lint:
        allow:
          - {rule: literal-credential, at: spec.env.PUBLIC_SALT}

An allow entry that matches nothing is itself reported, so stale entries do not pile up. The
patterns live in runtime/credentials.py (the runtime masks its messages with them too);
messages never repeat the value.
"""

from __future__ import annotations

from runtime.credentials import credential_in, is_expansion, keyish_name, looks_random, secret_name

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from typing import Any, Iterator

RULE = "literal-credential"
_FIX = "keep it in a Kubernetes Secret and reference it (env: {NAME: {secretKeyRef: {name: <secret>, key: <key>}}})"
_ARG_FIX = "put it in env from a Secret and pass $(NAME) ($(VAR) expands env in args)"


def findings(data: Any) -> list[tuple[tuple, str]]:
    """(location, message) of every literal credential in a loaded document, one per location."""
    out: dict[tuple, str] = {}
    for loc, message in _scan(data, ()):
        out.setdefault(loc, message)
    return list(out.items())


def allowed(data: Any) -> list[tuple[str, str]]:
    """The document's `spec.lint.allow` entries as (rule, dotted path)."""
    spec = data.get("spec") if isinstance(data, dict) else None
    lint = spec.get("lint") if isinstance(spec, dict) else None
    entries = lint.get("allow") if isinstance(lint, dict) else None
    if not isinstance(entries, list):
        return []
    return [(e["rule"], e["at"]) for e in entries
            if isinstance(e, dict) and isinstance(e.get("rule"), str) and isinstance(e.get("at"), str)]


def _scan(node: Any, loc: tuple) -> Iterator[tuple[tuple, str]]:
    if isinstance(node, str):
        what = credential_in(node)
        if what:
            yield loc, f"literal credential ({what}): {_FIX}"
        return
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _scan(item, (*loc, i))
        if loc and loc[-1] in ("args", "command"):
            yield from argv_findings(node, loc)
        if loc and loc[-1] == "env":  # a Kubernetes env list: [{name, value}, ...]
            for i, item in enumerate(node):
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    yield from named_findings((*loc, i, "value"), item["name"], item.get("value"))
        return
    if isinstance(node, dict):
        if loc == ("spec", "lint"):
            return  # allow entries name paths, not values
        for key, value in node.items():
            yield from _scan(value, (*loc, key))
        if loc and loc[-1] in ("env", "annotations"):
            for name, value in node.items():
                if isinstance(name, str):
                    yield from named_findings((*loc, name), name, value)


def named_findings(loc: tuple, name: str, value: Any) -> Iterator[tuple[tuple, str]]:
    """An env variable or annotation: a literal value under a credential's name, or a
    random-looking one under a key-like name. (`specc plan` masks what it finds: plan/changes.py.)"""
    if not isinstance(value, str) or not value or is_expansion(value):
        return
    if secret_name(name):
        yield loc, f"literal credential (a value for {name}): {_FIX}"
    elif keyish_name(name) and looks_random(value):
        yield loc, f"literal credential (a token-like value for {name}): {_FIX}"


def argv_findings(args: list, loc: tuple) -> Iterator[tuple[tuple, str]]:
    """`--password VALUE` as two items, and `--password=VALUE` in one. (`specc plan` masks what it
    finds: plan/changes.py.)"""
    for i, arg in enumerate(args):
        if not isinstance(arg, str) or not arg.startswith("-"):
            continue
        flag, eq, value = arg.partition("=")
        if not secret_name(flag.lstrip("-")):
            continue
        if eq:
            if value and not is_expansion(value) and not _is_path(value):
                yield (*loc, i), f"literal credential (the value of {flag}): {_ARG_FIX}"
        elif i + 1 < len(args):
            nxt = args[i + 1]
            if isinstance(nxt, str) and nxt and not nxt.startswith("-") and not is_expansion(nxt) and not _is_path(nxt):
                yield (*loc, i + 1), f"literal credential (the value of {arg}): {_ARG_FIX}"


def _is_path(value: str) -> bool:
    """A file the flag reads the credential from (`--token-file /var/run/secrets/t`, `--password /run/pw`)."""
    return value.startswith("/")
