"""Expected runtime failures as data, and the exit codes the operator's ExitCode policy reads.

1..127 are permanent (the operator fails the job); >= 128 are retryable (it restarts the pod).
"""

from __future__ import annotations

from enum import IntEnum

#: Exit codes from here up are retryable under the operator's ExitCode restart policy; 1 up to
#: here are permanent.
FIRST_RETRYABLE = 128


class ExitCode(IntEnum):
    """Exit statuses of `python -m runtime`."""

    OK = 0
    FAILED = 1  # bad data, or a trainer failure that a retry cannot fix
    BAD_CONFIG = 2  # the runtime config file is missing or invalid
    MISSING_EXTRA = 3  # an optional dependency the job needs is not installed
    STORAGE_UNAVAILABLE = 138  # storage unreachable after bounded retries: retry the pod
    RENDEZVOUS_FAILED = 140  # replica group not formed in time, or a peer lost mid-training: retry the pod
    INTERRUPTED = 130  # SIGINT
    TERMINATED = 143  # SIGTERM / pre-emption: checkpoint saved, retry the pod


class RuntimeFailure(Exception):
    """An expected failure: printed as one line, no traceback, exits with `code`."""

    code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, code: ExitCode | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def retryable(self) -> bool:
        return int(self.code) >= FIRST_RETRYABLE


class ConfigError(RuntimeFailure):
    """The runtime config (or the environment it needs) is wrong."""

    code = ExitCode.BAD_CONFIG


class DataError(RuntimeFailure):
    """Input data is malformed; the message names the file and, when known, the line."""

    code = ExitCode.FAILED

    def __init__(self, source: str, message: str, *, line: int | None = None):
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line


class StorageError(RuntimeFailure):
    """A permanent storage problem: missing bucket or object, bad credentials, bad URI."""

    code = ExitCode.FAILED


class StorageUnavailable(RuntimeFailure):
    """Storage could not be reached after bounded retries (retryable)."""

    code = ExitCode.STORAGE_UNAVAILABLE


class Terminated(RuntimeFailure):
    """The process got SIGTERM; work was checkpointed where possible (retryable)."""

    code = ExitCode.TERMINATED


class Rendezvous(RuntimeFailure):
    """The replicas could not form their group in time (master not up yet, connection refused),
    or a peer left it mid-training; both are transient in a cluster (retryable).

    140, not 139: Kubernetes reports a segfault as 139 (128 + SIGSEGV)."""

    code = ExitCode.RENDEZVOUS_FAILED


class MissingExtra(RuntimeFailure):
    """An optional dependency is not installed."""

    code = ExitCode.MISSING_EXTRA
