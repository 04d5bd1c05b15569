"""Kubernetes resource quantities (`500m`, `2`, `1.5`, `4Gi`, `1e3`) as exact decimal numbers."""

from __future__ import annotations

import re

_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei))?")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse(text: str):
    """The Decimal value of a quantity; ValueError when `text` is not one."""
    from decimal import Decimal

    m = _QUANTITY.fullmatch(str(text).strip())
    if m is None:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    number, exponent, suffix = m.groups()
    value = Decimal(number)
    if exponent:
        return value.scaleb(int(exponent[1:]))
    if suffix in _BINARY:
        return value * (1024 ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return value.scaleb(_DECIMAL[suffix])
    return value
