"""What a credential looks like, and how to keep one out of a message: the one home of these
patterns for the compiler (compiler/credentials.py, the literal-credential rule) and the runtime
(its error messages)."""

from __future__ import annotations

import re

# scheme://user:password@host (a password made only of $(VAR) / ${VAR} expansions is fine).
# The look-behind starts a match only where a scheme starts: linear time on long strings.
_URL_USERINFO = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://)([^/\s:@]*):([^/\s@]*)@")
_EXPANSION = re.compile(r"^(\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\{[A-Za-z_][A-Za-z0-9_]*\})+$")
_TOKENS = (
    ("an AWS access key id", r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("a private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    ("a GitHub token", r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"),
    ("a GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("a Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("a Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}"),
    ("an OpenAI-style API key", r"\bsk-(proj-|ant-)?[A-Za-z0-9_-]{20,}"),
    ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("a Stripe key", r"\b[rs]k_(live|test)_[0-9A-Za-z]{16,}"),
    ("a Weights & Biases key", r"\bwandb_v1_[A-Za-z0-9_]{20,}"),
    ("a JSON Web Token", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("a bearer token", r"(?i:\b(bearer|basic)\s+(?![$<{])[A-Za-z0-9._~+/-]{8,}=*)"),
    ("a password/token assignment",
        r"(?i:\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key)(?:\s*=\s*|:)(?![$<{])[^\s,;&]{4,})"),
)
# All of them at once: most strings hold none, and one search tells. Each pattern alone is
# compiled (by `re`'s own cache) only where a string holds a credential.
_ANY_TOKEN = re.compile("|".join(f"(?:{pattern})" for _, pattern in _TOKENS))
# Words that make a variable, annotation or flag name a credential's name ("DB_PASSWORD",
# "hfToken", "--api-key"): whole words, or a word ending in one of the first group.
_SECRET_WORDS = frozenset({"PASSWORD", "PASSWD", "PASS", "PWD", "SECRET", "SECRETS", "TOKEN", "CREDENTIAL",
                           "CREDENTIALS", "APIKEY", "ACCESSKEY", "SECRETKEY", "PRIVATEKEY", "PASSPHRASE"})
_SECRET_SUFFIXES = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "PASSPHRASE")
_SECRET_PAIRS = frozenset({("ACCESS", "KEY"), ("API", "KEY"), ("SECRET", "KEY"), ("PRIVATE", "KEY"),
                           ("AUTH", "KEY"), ("SIGNING", "KEY"), ("CLIENT", "SECRET")})
# Names under which a random-looking value is probably a key.
_KEYISH = re.compile(r"(?i)(KEY|AUTH|PASS|PWD|CRED|SESSION|SIGNATURE|SIGNING|BEARER|SALT)")
_RANDOMISH = re.compile(r"^[A-Za-z0-9+/=_.~-]{16,}$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def is_expansion(value: str) -> bool:
    """True for a value made only of `$(VAR)` / `${VAR}` references."""
    return bool(_EXPANSION.match(value))


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^A-Za-z0-9]+", _CAMEL.sub("_", name).upper()) if w]


def secret_name(name: str) -> bool:
    """True when a variable, annotation key or flag is named like a credential (`DB_PASSWORD`,
    `hfToken`, `--api-key`, `MINIO_PASS`), but not `MAX_TOKENS` or `TOKENIZER_PATH`."""
    words = _words(name)
    if any(w in _SECRET_WORDS or w.endswith(_SECRET_SUFFIXES) for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:]))


def _entropy(s: str) -> float:
    import math
    from collections import Counter

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


def keyish_name(name: str) -> bool:
    """True for names under which a random-looking value is probably a key (`WANDB_KEY`)."""
    return bool(_KEYISH.search(name))


def credential_in(value: str) -> str | None:
    """What credential a string seems to contain ("a GitHub token"...), or None."""
    if "://" in value:
        for m in _URL_USERINFO.finditer(value):
            if m.group(3) and not is_expansion(m.group(3)):
                return "a URL with user:password@"
    if _ANY_TOKEN.search(value) is None:
        return None
    for what, pattern in _TOKENS:
        if re.search(pattern, value):
            return what
    return None


def mask(text: str) -> str:
    """`text` with URL passwords and well-known tokens replaced by `***`, for messages."""
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@" if m.group(3) else m.group(0), text)
    if _ANY_TOKEN.search(text) is None:
        return text
    for _, pattern in _TOKENS:
        text = re.sub(pattern, "***", text)
    return text
