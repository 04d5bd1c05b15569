"""A small, byte-stable YAML writer for Kubernetes objects.

Block style, keys in insertion order (builders insert them in a fixed order), strings plain
only when that is unambiguous in YAML 1.1 and 1.2, otherwise double-quoted with escapes, and
multi-line text as literal blocks. No value can change the document's structure: every string
is either a verified-safe plain scalar, a literal block of printable lines, or a quoted scalar.
"""

from __future__ import annotations

import json
import math
import re

# Matched with fullmatch: `$` would also match before a final line break, which plain style loses.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+:-]*(?<!:)")
# Words that YAML 1.1 or 1.2 resolve to something other than a string.
_RESERVED = {
    "y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan", "inf", "infinity",
}
_LITERAL_OK = re.compile(r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]*$")
_ESCAPES = {
    "\0": "\\0", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
    "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\", "\x85": "\\N", "\xa0": "\\_",
    "\u2028": "\\L", "\u2029": "\\P",
}


def quote(s: str) -> str:
    """A double-quoted YAML scalar for any string."""
    out = []
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " " or ch == "\x7f" or "\x80" <= ch < "\xa0" or "\ud800" <= ch <= "\udfff" or ch in "\ufeff\ufffe\uffff":
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_STR_CACHE: dict[str, str] = {}


def scalar(value) -> str:
    """One scalar on a single line."""
    if value.__class__ is str:
        cached = _STR_CACHE.get(value)
        if cached is not None:
            return cached
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mant, exp = text.split("e")
            text = f"{mant}.0e{exp}"
        return text
    if isinstance(value, str):
        out = _STR_CACHE.get(value)
        if out is None:
            out = value if (_PLAIN.fullmatch(value) and value.lower() not in _RESERVED) else quote(value)
            if len(_STR_CACHE) < 65536 and len(value) < 256:
                _STR_CACHE[value] = out
        return out
    raise TypeError(f"cannot emit {type(value).__name__}")


def _literal(s: str, indent: str) -> str | None:
    """A literal block scalar for multi-line printable text, or None if not representable."""
    if "\n" not in s or not _LITERAL_OK.match(s) or "\r" in s:
        return None
    body = s[:-1] if s.endswith("\n") else s
    if body.endswith("\n") or body == "":
        return None  # several trailing newlines: keep it simple, quote it
    lines = body.split("\n")
    # The block's indentation is read off its first non-empty line, and a line of only spaces
    # or tabs reads as empty: both would change the text, so such strings are quoted instead.
    first = next(line for line in lines if line)
    if first[:1] in (" ", "\t") or any(line and not line.strip(" \t") for line in lines):
        return None
    chomp = "" if s.endswith("\n") else "-"
    return f"|{chomp}\n" + "\n".join((indent + line) if line else "" for line in lines)


def _emit(value, indent: str, out: list[str], *, in_list: bool = False) -> None:
    if isinstance(value, dict):
        if not value:
            out.append(" {}\n")
            return
        first = True
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError("mapping keys must be strings")
            prefix = "" if (in_list and first) else indent
            out.append(("\n" if first and not in_list else "") + prefix + scalar(k) + ":")
            first = False
            _emit_value(v, indent, out)
        return
    raise TypeError("expected a mapping")


def _emit_value(v, indent: str, out: list[str]) -> None:
    child = indent + "  "
    if isinstance(v, dict):
        if not v:
            out.append(" {}\n")
        else:
            _emit(v, child, out)
    elif isinstance(v, list):
        if not v:
            out.append(" []\n")
        elif all(isinstance(x, int) and not isinstance(x, bool) for x in v) and len(v) > 8:
            out.append(" [" + ", ".join(str(x) for x in v) + "]\n")
        else:
            out.append("\n")
            for item in v:
                out.append(child + "-")
                if isinstance(item, dict) and item:
                    out.append(" ")
                    _emit(item, child + "  ", out, in_list=True)
                elif isinstance(item, (dict, list)):
                    _emit_value(item, child, out)
                else:
                    out.append(" " + scalar(item) + "\n")
    elif isinstance(v, str) and "\n" in v:
        lit = _literal(v, child)
        out.append(" " + (lit if lit is not None else quote(v)) + "\n")
    else:
        out.append(" " + scalar(v) + "\n")


def dump(obj: dict) -> str:
    """One YAML document (no leading `---`) for a mapping, ending in a newline."""
    out: list[str] = []
    _emit(obj, "", out)
    text = "".join(out)
    return text[1:] if text.startswith("\n") else text


def dump_json_compatible(obj) -> str:
    """Canonical JSON used for content hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
