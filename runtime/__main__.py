"""`python -m runtime` / `specc-runtime`: the entrypoint every rendered container runs.

Reads the runtime config (mounted from the job's ConfigMap), works out this replica's role
from the operator's environment, runs the built-in trainer, and exits with a code the
operator's ExitCode restart policy understands (see runtime.errors.ExitCode).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from runtime.config import CONFIG_ENV, CONFIG_PATH, RuntimeConfig, load_runtime_config
from runtime.context import Task, task_from_env
from runtime.errors import ConfigError, ExitCode, MissingExtra, RuntimeFailure, Terminated

log = logging.getLogger("specc.runtime")


@dataclass
class Context:
    """What a trainer gets besides its config: its task, storage, a scratch folder, a stop flag."""

    task: Task
    config: RuntimeConfig
    work_dir: Path
    _storage: object | None = field(default=None, repr=False)
    stop_requested: bool = False

    @property
    def storage(self):
        """The runtime.storage.Storage for this job (created on first use)."""
        if self._storage is None:
            from runtime.storage import Storage

            self._storage = Storage.from_config(self.config.storage)
        return self._storage

    def check_stop(self) -> None:
        """Raise Terminated if SIGTERM arrived; trainers call this between steps/epochs."""
        if self.stop_requested:
            raise Terminated("terminated by SIGTERM")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="specc-runtime", description=__doc__.splitlines()[0])
    p.add_argument("--config", default=os.environ.get(CONFIG_ENV, CONFIG_PATH), help="runtime config JSON (default: $SPECC_CONFIG or %(default)s)")
    p.add_argument("--work-dir", default=None, help="scratch folder (default: a temporary one)")
    return p.parse_args(argv)


def _read_config(path: str) -> RuntimeConfig:
    from pydantic import ValidationError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read runtime config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: runtime config is not UTF-8") from None
    try:
        return load_runtime_config(text)
    except ValidationError as exc:
        from runtime.contract import PATTERN_RULES

        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        where = f"{loc}: " if loc else ""
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        # A pattern in words, not as a regular expression.
        message = PATTERN_RULES.get(first.get("ctx", {}).get("pattern"), first["msg"])
        raise ConfigError(f"{path}: {where}{message}{more}") from None


#: Seconds a trainer gets after SIGTERM to reach ctx.check_stop() before it is interrupted.
STOP_GRACE_ENV = "SPECC_STOP_GRACE"
DEFAULT_STOP_GRACE = 20.0  # below Kubernetes' default 30 s terminationGracePeriodSeconds


def _stop_grace() -> float:
    raw = os.environ.get(STOP_GRACE_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_STOP_GRACE
    except ValueError:
        raise ConfigError(f"{STOP_GRACE_ENV}={raw!r} is not a number of seconds") from None


def run(argv: list[str] | None = None) -> int:
    """Run one replica; return its exit code.

    SIGTERM sets `ctx.stop_requested` so the trainer can checkpoint and raise Terminated at its
    next `ctx.check_stop()`; if it has not within SPECC_STOP_GRACE seconds (or before the
    trainer started, or on a second SIGTERM) Terminated is raised where the process is.
    Either way the exit code is 143 (retryable).
    """
    args = _parse(argv)
    # TFJob does not set PYTHONUNBUFFERED: flush progress lines as they are written.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx: Context | None = None
    grace = DEFAULT_STOP_GRACE

    def on_alarm(signum, frame):  # noqa: ARG001
        raise Terminated(f"terminated by SIGTERM (trainer did not stop within {grace:g}s)")

    def on_term(signum, frame):  # noqa: ARG001
        if ctx is None or ctx.stop_requested or grace <= 0:
            raise Terminated("terminated by SIGTERM")
        ctx.stop_requested = True
        log.warning("SIGTERM: stopping at the next checkpoint (at most %gs)", grace)
        signal.setitimer(signal.ITIMER_REAL, grace)

    handlers = _install({signal.SIGTERM: on_term, signal.SIGALRM: on_alarm})
    try:
        grace = _stop_grace()
        cfg = _read_config(args.config)
        _join_jobset(cfg.job.framework)
        task = task_from_env()
        work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="specc-"))
        work.mkdir(parents=True, exist_ok=True)
        ctx = Context(task=task, config=cfg, work_dir=work)
        log.info("job %s/%s trainer %s (%s) as %s, rank %d of %d",
                 cfg.job.namespace, cfg.job.name, cfg.trainer.name, cfg.job.framework, task.name, task.rank, task.world_size)
        from runtime import trainers

        try:
            train = trainers.load(cfg.trainer.name, cfg.job.framework)
        except ModuleNotFoundError as exc:
            raise MissingExtra(f"trainer {cfg.trainer.name} needs a package that is not installed: {exc.name} "
                               "(install specc[runtime] / specc[torch])") from None
        metrics = train(cfg, ctx)
        log.info("done: %s", metrics)
        return ExitCode.OK
    except RuntimeFailure as exc:
        print(f"specc-runtime: error: {exc}", file=sys.stderr, flush=True)
        return int(exc.code)
    except KeyboardInterrupt:
        print("specc-runtime: interrupted", file=sys.stderr, flush=True)
        return ExitCode.INTERRUPTED
    finally:
        if handlers:
            signal.setitimer(signal.ITIMER_REAL, 0)
            _install(handlers)


def _join_jobset(framework: str) -> None:
    """On a Kubeflow Trainer v2 node, export the TF_CONFIG or torch variables its JobSet implies
    (runtime/jobset.py); elsewhere nothing changes."""
    from runtime.jobset import environment

    os.environ.update(environment(os.environ, framework))


def _install(handlers: dict) -> dict:
    """Install signal handlers; return the previous ones ({} off the main thread)."""
    try:
        return {sig: signal.signal(sig, h) for sig, h in handlers.items()}
    except ValueError:  # signal only works in the main thread
        return {}


def main(argv: list[str] | None = None) -> None:
    code = run(argv)
    if _leave_at_once():
        # Everything is written and published by now. TensorFlow's teardown at interpreter exit
        # is slow; PyTorch's gloo threads can std::terminate (SIGABRT) in C++ static
        # destructors after destroy_process_group, turning a clean 143 into -6. Leave without them.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _leave_at_once() -> bool:
    """Whether to skip interpreter teardown: always, except under MultiWorkerMirroredStrategy,
    whose coordination service shuts down in the normal exit."""
    if "tensorflow" in sys.modules:
        return _single_process()
    return "torch" in sys.modules


def _single_process() -> bool:
    """Whether this replica is alone (no peers whose coordination needs an orderly exit)."""
    try:
        return task_from_env().world_size == 1
    except Exception:  # noqa: BLE001 - an unreadable environment already produced its exit code
        return False


if __name__ == "__main__":
    main()
