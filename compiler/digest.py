"""SHA-256 for the render path without importing hashlib (its OpenSSL binding slows
every `specc render` start-up); the same digest either way."""

from __future__ import annotations

try:
    from _sha256 import sha256  # CPython 3.11's built-in implementation
except ImportError:  # pragma: no cover - other Pythons
    try:
        from _sha2 import sha256  # CPython 3.12+
    except ImportError:
        from hashlib import sha256

__all__ = ["sha256"]
