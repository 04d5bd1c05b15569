"""The replicas as processes: started, watched, restarted and stopped as the lifecycle decides.

Each replica runs in a session of its own, its output copied line by line to `out` behind its
name (`[worker-0] ...`); its exit (128 + N for signal N) goes to the lifecycle, whose decisions are
carried out here. Stopping is SIGTERM to the replica's process group, SIGKILL to what is left
after the grace period. SIGTERM to the runner stops the replicas as Ctrl-C does. At the end the
job's status is written as `kubectl describe` shows it, then one line with the verdict.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Mapping, TextIO

from localrun import plan as planning
from localrun.lifecycle import NOTE, RECREATE, RESTART, START, STOP_ALL, Decision, Lifecycle
from localrun.plan import Launcher, Plan, Replica

#: How long the main loop waits for an exit before it looks at the clock again.
_POLL = 0.5


def run_local(
    manifests: list[dict],
    volumes_dir: Path | None = None,
    work_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    launcher: Launcher | None = None,
    *,
    restart_delay: float = 1.0,
    grace_period: float | None = None,
) -> int:
    """Run the job the manifests describe; return 0 if it succeeded, 1 otherwise.

    Raises LocalRunError for a job that can only run in a cluster. `work_dir` defaults to a new
    temporary folder, `volumes_dir` (PVCs) to its `volumes`; `env` is the environment replicas
    inherit (default: this process's); `restart_delay` is the pause before a replica restarts;
    `grace_period` overrides the pods' terminationGracePeriodSeconds.
    """
    workload = planning.read(manifests)
    temporary = work_dir is None
    work_dir = Path(tempfile.mkdtemp(prefix="specc-local-")) if work_dir is None else Path(work_dir)
    plan = planning.make(
        workload, ports=loopback_ports([m.name for m in workload.members]), work_dir=work_dir,
        volumes_dir=Path(volumes_dir) if volumes_dir is not None else work_dir / "volumes",
        env=dict(os.environ if env is None else env), hostname=socket.gethostname(), launcher=launcher)
    supervisor = Supervisor(plan, sys.stdout if out is None else out, restart_delay=restart_delay,
                            grace=plan.grace if grace_period is None else grace_period)
    return 0 if supervisor.run(announce_work_dir=temporary) else 1


def loopback_ports(names: list[str]) -> dict[str, int]:
    """A free loopback port for each name, all different (held open together while chosen)."""
    socks: list[socket.socket] = []
    try:
        for _ in names:
            s = socket.socket()
            socks.append(s)
            s.bind((planning.LOOPBACK, 0))
        return {name: s.getsockname()[1] for name, s in zip(names, socks)}
    finally:
        for s in socks:
            s.close()


class Supervisor:
    """Runs a plan's replicas under its lifecycle."""

    def __init__(self, plan: Plan, out: TextIO, *, restart_delay: float, grace: float):
        self.plan = plan
        self.out = out
        self.grace = grace
        w = plan.workload
        self.lifecycle = Lifecycle(w.kind, w.obj, plan.replicas, restart_delay=restart_delay)
        self._lock = threading.Lock()
        self._exits: queue.Queue = queue.Queue()  # (replica name, attempt, exit code)
        self._procs: dict[str, subprocess.Popen] = {}
        self._attempts = {r.name: 0 for r in plan.replicas}
        self._threads: dict[str, list[threading.Thread]] = {}

    # ---------------------------------------------------------------- output
    def _write(self, text: str) -> None:
        with self._lock:
            self.out.write(text)
            self.out.flush()

    def note(self, message: str) -> None:
        """A line from the runner itself."""
        self._write(f"specc: {message}\n")

    # ---------------------------------------------------------------- main loop
    def run(self, *, announce_work_dir: bool = False) -> bool:
        """Run the job to its end; return True if it succeeded."""
        lc, w = self.lifecycle, self.plan.workload
        planning.prepare(self.plan)
        if announce_work_dir:
            self.note(f"work dir: {self.plan.work_dir}")
        for warning in self.plan.warnings:
            self.note(f"warning: {warning}")
        self.note(f"running {w.kind.KIND} {w.namespace}/{w.name} locally: {', '.join(r.name for r in self.plan.replicas)}")
        # SIGTERM to the runner (e.g. `timeout specc run ...`) stops the replicas like Ctrl-C: they
        # run in sessions of their own and would otherwise outlive it.
        previous = (signal.signal(signal.SIGTERM, _interrupt)
                    if threading.current_thread() is threading.main_thread() else None)
        try:
            self._carry_out(lc.start(time.monotonic()))
            while not lc.finished:
                now = time.monotonic()
                self._carry_out(lc.tick(now))
                if lc.finished:
                    break
                wake = lc.wake_at()
                timeout = _POLL if wake is None else min(_POLL, max(0.0, wake - now))
                try:
                    name, attempt, code = self._exits.get(timeout=timeout)
                except queue.Empty:
                    continue
                if attempt == self._attempts[name]:
                    self._carry_out(lc.exited(name, code, time.monotonic()))
        except KeyboardInterrupt:
            self.note("interrupted: stopping replicas (Ctrl-C again to kill them)")
            self._carry_out(lc.interrupt())
        finally:
            self._kill_all()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        self._write(lc.describe())
        outcome = lc.outcome
        state = "succeeded" if outcome.succeeded else f"failed ({outcome.verdict}): {outcome.message}"
        restarts = f"restarts: {lc.restarts}"
        if hasattr(w.kind, "jobset_action"):
            restarts += f"; JobSet restarts: {lc.jobset_restarts}"
        self.note(f"{w.kind.KIND} {w.namespace}/{w.name} {state} ({restarts}; work dir: {self.plan.work_dir})")
        return outcome.succeeded

    def _carry_out(self, decisions: list[Decision]) -> None:
        for d in decisions:
            if d.action == NOTE:
                self.note(d.text)
            elif d.action in (START, RESTART, RECREATE):
                self._start(self.plan.replica(d.replica), new_pod=d.action == RECREATE)
            elif d.action == STOP_ALL:
                self._stop_all()
            # SUCCEED and FAIL: the lifecycle holds the outcome.

    # ---------------------------------------------------------------- processes
    def _start(self, rep: Replica, *, new_pod: bool) -> None:
        if new_pod:
            for d in rep.empty_dirs:
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir(parents=True, exist_ok=True)
        self._attempts[rep.name] += 1
        attempt = self._attempts[rep.name]
        try:
            proc = subprocess.Popen(rep.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=rep.env, cwd=rep.cwd, start_new_session=True)
        except OSError as exc:
            self.note(f"{rep.name}: cannot start {rep.argv[0]}: {exc.strerror or exc}")
            self._exits.put((rep.name, attempt, 127))
            return
        self._procs[rep.name] = proc
        pump = threading.Thread(target=self._pump, args=(rep.name, proc), daemon=True)
        waiter = threading.Thread(target=self._wait, args=(rep.name, proc, attempt, pump), daemon=True)
        self._threads[rep.name] = [pump, waiter]
        pump.start()
        waiter.start()

    def _pump(self, name: str, proc: subprocess.Popen) -> None:
        prefix = f"[{name}] "
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            self._write(prefix + raw.decode("utf-8", "replace").rstrip("\r\n") + "\n")
        proc.stdout.close()

    def _wait(self, name: str, proc: subprocess.Popen, attempt: int, pump: threading.Thread) -> None:
        code = proc.wait()
        _signal_group(proc, signal.SIGKILL, group_only=True)  # the container is gone: so is all it started
        pump.join(timeout=2.0)  # let the last lines out first
        self._exits.put((name, attempt, 128 - code if code < 0 else code))

    def _live(self) -> list[tuple[str, subprocess.Popen]]:
        return [(name, p) for name, p in self._procs.items() if p.poll() is None]

    def _stop_all(self) -> None:
        """SIGTERM every running replica, SIGKILL those still there after the grace period."""
        live = self._live()
        if not live:
            return
        self.note(f"stopping {', '.join(name for name, _ in live)}")
        try:
            for _, p in live:
                _signal_group(p, signal.SIGTERM)
            end = time.monotonic() + self.grace
            for name, p in live:
                try:
                    p.wait(timeout=max(0.0, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.note(f"{name} still running after {self.grace:g}s: killing it")
                    _signal_group(p, signal.SIGKILL)
        except KeyboardInterrupt:
            for _, p in live:
                _signal_group(p, signal.SIGKILL)
        for name, p in live:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
                pass
            for t in self._threads.get(name, ()):
                t.join(timeout=2.0)

    def _kill_all(self) -> None:
        for _, p in self._live():
            _signal_group(p, signal.SIGKILL)
            p.wait()


def _signal_group(proc: subprocess.Popen, sig: int, group_only: bool = False) -> None:
    """Signal the replica's process group (its own session), or the process if that fails."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        if not group_only:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass


def _interrupt(signum, frame) -> None:  # noqa: ARG001
    raise KeyboardInterrupt
