"""Kubernetes resource quantities (`500m`, `2`, `1.5`, `4Gi`, `1e3`) as exact fractions."""

from __future__ import annotations

import re
from fractions import Fraction

_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|[eE](?P<exp>[+-]?[0-9]+)|(?P<decimal>[numkMGTPE]))?"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
#: Largest decimal exponent accepted (Kubernetes stores quantities as scaled int64s; anything
#: beyond this is a mistake, and 10**huge would not finish).
MAX_EXPONENT = 64


def parse_quantity(text: str) -> Fraction:
    """The exact value of a Kubernetes quantity (`500m`, `2`, `1.5`, `4Gi`, `512Mi`, `1e3`);
    ValueError for anything else."""
    if not isinstance(text, str):
        if isinstance(text, int) and not isinstance(text, bool):
            return Fraction(text)  # YAML read an unquoted `2` as a number
        raise ValueError(f"not a quantity: {text!r}")
    m = _QUANTITY.fullmatch(text)
    if m is None:
        raise ValueError(f"not a quantity: {text!r}")
    value = Fraction(m["number"] + ("0" if m["number"].endswith(".") else ""))
    if m["binary"]:
        value *= 1024 ** _BINARY[m["binary"]]
    else:
        exp = int(m["exp"]) if m["exp"] is not None else _DECIMAL.get(m["decimal"] or "", 0)
        if abs(exp) > MAX_EXPONENT:
            raise ValueError(f"quantity out of range: {text!r}")
        value *= Fraction(10) ** exp
    return -value if m["sign"] == "-" else value


def decimal(value: Fraction) -> str:
    """A finite fraction with a power-of-ten denominator as a plain decimal (`3.5`, `0.001`, `12`)."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    places = 0
    while (value * 10 ** places).denominator != 1:
        places += 1
        if places > 2 * MAX_EXPONENT:
            raise ValueError(f"{value} has no exact decimal form")
    digits = str(int(value * 10 ** places)).rjust(places + 1, "0")
    if not places:
        return sign + digits
    return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")


def format_cpu(cores: Fraction) -> str:
    """CPU cores as a quantity in cores: `3.5`, `0.25`, `12`."""
    return decimal(cores)


def format_memory(size: Fraction) -> str:
    """Bytes as the exact quantity with the largest suffix: `12Gi`, `2560Mi`, `3G`, `1536870912`."""
    if size.denominator == 1 and size > 0:
        n = int(size)
        for suffix, power in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
            if n % 1024 ** power == 0:
                return f"{n // 1024 ** power}{suffix}"
        for suffix, exp in sorted(_DECIMAL.items(), key=lambda kv: -kv[1]):
            if exp > 0 and n % 10 ** exp == 0:
                return f"{n // 10 ** exp}{suffix}"
    return decimal(size)


def approx_memory(size: Fraction) -> str:
    """Bytes rounded for people (`1.43Gi`), or the exact quantity where that is short."""
    exact = format_memory(size)
    if not exact.isdigit() or size < 1024:
        return exact
    power = max(p for p in _BINARY.values() if size >= 1024 ** p)
    suffix = next(s for s, p in _BINARY.items() if p == power)
    return f"~{float(size / 1024 ** power):.2f}{suffix}"
