"""The operator's rules for one running job, as a state machine: events in, decisions out.

Events: the job starts, a replica's container exits with a code, time passes (a restart falls
due, the deadline), the run is interrupted. Decisions: start a replica, restart it in place,
recreate its pod, a line for the log, fail or succeed the job, stop every replica. Along the way
it keeps what `kubectl describe` shows: conditions, replica statuses, events. It starts no
process and reads no clock: every event brings the time.

The rules (training-operator v1.9 for its kinds, the Job controller for batch/v1 Job):

- restartPolicy, per replica: the kind's `exit_action` says whether an exit ends the replica,
  restarts it in place (emptyDir kept), recreates its pod or adds another (emptyDir empty again).
  A replica under Always never ends, so the other replicas decide the job.
- success and failure: the kind's `succeeded` and `failed` rules, asked whenever a replica ends;
  a Job's podFailurePolicy (`fail_job_rule`) fails it on the exit itself.
- backoffLimit caps the restarts across the whole job: the failure that would need restart
  number backoffLimit+1 fails the job. (The operator counts container restarts of running pods,
  which is racy; this is the cap it approximates.)
- activeDeadlineSeconds fails the job and stops every replica.
- When the job ends, replicas still running are stopped (whatever cleanPodPolicy says); on
  success they count as succeeded, as the operator records them.
- A kind with `jobset_action` (a TrainJob's JobSet) decides what a failed Job does: fail the job,
  or stop every replica and start them all again as new pods (a JobSet restart), which also
  starts the count of restarts against backoffLimit afresh (new Jobs).

Local only: a job whose rules never decide (say, a TFJob of PS and Evaluator) ends when no
replica is left running, succeeding if all exited 0; an interrupted run fails (Interrupted).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Sequence

from compiler.kinds.pod import ACTIVE, END, FAILED, RECREATE, REPLACE, RESTART, SUCCEEDED

#: Decisions besides RESTART and RECREATE (the exit actions of compiler.kinds.pod).
START, NOTE, SUCCEED, FAIL, STOP_ALL = "start", "note", "succeed", "fail", "stop-all"
#: A replica waiting to be restarted.
RESTARTING = "restarting"


@dataclass(frozen=True)
class Member:
    """One replica as the rules see it."""

    rtype: str  #: canonical replica type, e.g. "Worker" ("Job" for a batch/v1 Job's pod)
    index: int
    pod: str  #: its pod's name
    policy: str  #: restartPolicy
    container: str  #: the name of the container that runs

    @property
    def name(self) -> str:
        """The replica's name in the log: `worker-0`."""
        return f"{self.rtype.lower()}-{self.index}"


@dataclass(frozen=True)
class Decision:
    """What the supervisor is to do."""

    action: str  #: START, RESTART, RECREATE, NOTE, SUCCEED, FAIL or STOP_ALL
    replica: str = ""  #: START / RESTART / RECREATE: the replica's name
    text: str = ""  #: NOTE: the line; SUCCEED / FAIL: the verdict (e.g. BackoffLimitExceeded)


@dataclass(frozen=True)
class Outcome:
    """How the job ended."""

    succeeded: bool
    #: Succeeded, ReplicaFailed, BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy, Interrupted, or
    #: what a kind's jobset_action names (FailedJobs, FailJobSet, ReachedMaxRestarts)
    verdict: str
    message: str


@dataclass
class _Replica:
    member: Member
    state: str = ""  # "" (not started), ACTIVE (its container runs), RESTARTING, SUCCEEDED or FAILED
    due: float = 0.0  # when a restart falls due
    restart: str = ""  # how it restarts: RESTART or RECREATE
    left_failed: int = 0  # failed pods left behind by the pods that replaced them

    @property
    def phase(self) -> str:
        return ACTIVE if self.state in ("", ACTIVE, RESTARTING) else self.state


class Lifecycle:
    """One job under the operator's rules; `kind` is its module in compiler/kinds, `obj` the
    rendered object, `members` its replicas in start order."""

    def __init__(self, kind: ModuleType, obj: dict, members: Sequence[Member], *, restart_delay: float = 1.0):
        self.kind = kind
        meta = obj.get("metadata") or {}
        self.name = str(meta.get("name") or "job")
        self.namespace = str(meta.get("namespace") or "default")
        self.spec = obj.get("spec") or {}
        self.backoff_limit, self.deadline = kind.limits(self.spec)
        self.table = kind.job_conditions({m.rtype for m in members})  # what happened -> (type, reason, message)
        self.restart_delay = restart_delay
        self._replicas = {m.name: _Replica(m) for m in members}
        self.conditions: list[dict] = []
        self.events: list[tuple[str, str, str]] = []
        self.restarts = 0
        self.jobset_restarts = 0
        self.started_at: float | None = None
        self.outcome: Outcome | None = None
        self._now = 0.0

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    # ---------------------------------------------------------------- events
    def start(self, now: float) -> list[Decision]:
        """The job is created: every replica starts."""
        self.started_at = self._now = now
        self._condition("Created")
        decisions = [self._launch(r, START) for r in self._replicas.values()]
        self._condition("Running")
        return decisions

    def exited(self, name: str, code: int, now: float) -> list[Decision]:
        """Replica `name`'s container exited with `code` (128 + N for signal N)."""
        r = self._replicas[name]
        if self.finished or r.state != ACTIVE:
            return []
        self._now = now
        m = r.member
        self._event("exited", pod=m.pod, code=code)
        rule = self.kind.fail_job_rule(self.spec, m.container, code)
        if rule is not None:
            r.state = FAILED
            return [_note(f"{name} exited with code {code}; podFailurePolicy rule {rule} fails the job"),
                    *self._finish("PodFailurePolicy", pod=m.pod, container=m.container, code=code, rule=rule)]
        action = self.kind.exit_action(m.policy, code)
        if action == END:
            r.state = SUCCEEDED if code == 0 else FAILED
            return [_note(f"{name} exited with code {code}"), *self._evaluate()]
        if self.backoff_limit is not None and self.restarts >= self.backoff_limit:
            r.state = SUCCEEDED if code == 0 else FAILED
            return [_note(f"{name} exited with code {code}; backoffLimit {self.backoff_limit} reached"),
                    *self._finish("BackoffLimitExceeded")]
        self.restarts += 1
        r.state, r.due = RESTARTING, now + self.restart_delay
        r.restart = RESTART if action == RESTART else RECREATE
        r.left_failed += action == REPLACE
        limit = "" if self.backoff_limit is None else f" of backoffLimit {self.backoff_limit}"
        decisions = [_note(f"{name} exited with code {code}; restarting (restartPolicy {m.policy}, "
                           f"restart {self.restarts}{limit})")]
        if action == RECREATE:
            restarting = self._condition("Restarting", rtype=m.rtype)
            if restarting:
                self.events.append(("Warning", *restarting))
        return decisions

    def tick(self, now: float) -> list[Decision]:
        """Time is `now`: the deadline may have passed, restarts may be due."""
        if self.finished:
            return []
        self._now = now
        if self.deadline is not None and now - self.started_at >= self.deadline:
            return [_note(f"activeDeadlineSeconds {self.deadline:g} exceeded"), *self._finish("DeadlineExceeded")]
        decisions = []
        for r in self._replicas.values():
            if r.state == RESTARTING and r.due <= now:
                decisions.append(self._launch(r, r.restart))
                if any(c["type"] == "Restarting" for c in self.conditions):
                    self._condition("Running")
        return decisions

    def interrupt(self) -> list[Decision]:
        """The run was interrupted on this machine: the job fails."""
        if self.finished:
            return []
        failed = self.table.get("ReplicaFailed", ("Failed", "Interrupted", ""))
        return self._finish("Interrupted", (*failed[:2], f"{self.kind.KIND} {self.name} was interrupted on this machine"))

    def wake_at(self) -> float | None:
        """When `tick` has something to do next, if ever."""
        times = [r.due for r in self._replicas.values() if r.state == RESTARTING]
        if self.deadline is not None and self.started_at is not None and not self.finished:
            times.append(self.started_at + self.deadline)
        return min(times, default=None)

    # ---------------------------------------------------------------- status
    def states(self) -> dict[str, list[str]]:
        """Replica type -> each replica's phase (ACTIVE, SUCCEEDED, FAILED), by index."""
        out: dict[str, list[str]] = {}
        for r in self._replicas.values():
            out.setdefault(r.member.rtype, []).append(r.phase)
        return out

    def status(self) -> dict:
        """The object's status as the kind writes it."""
        counts: dict[str, dict[str, int]] = {}
        for r in self._replicas.values():
            c = counts.setdefault(r.member.rtype, {ACTIVE: 0, FAILED: 0, SUCCEEDED: 0})
            c[r.phase] += 1
            c[FAILED] += r.left_failed
        conditions = [{k: c[k] for k in ("type", "status", "reason", "message")} for c in self.conditions]
        return self.kind.status(conditions, counts)

    def describe(self) -> str:
        """The job's status as `kubectl describe` lays it out."""
        status = self.status()
        if hasattr(self.kind, "describe"):
            return self.kind.describe(self.name, self.namespace, status, self.events)
        replica_statuses = status.get("replicaStatuses")
        lines = [f"Name:         {self.name}", f"Namespace:    {self.namespace}", f"Kind:         {self.kind.KIND}"]
        if replica_statuses is None:
            lines.append(f"Pods Statuses:  {status.get(ACTIVE, 0)} Active / {status.get(SUCCEEDED, 0)} Succeeded / "
                         f"{status.get(FAILED, 0)} Failed")
        lines += ["Status:", "  Conditions:"]
        rows = [("Type", "Status", "Reason", "Message")]
        rows += [(c["type"], c["status"], c["reason"], c["message"]) for c in status["conditions"]]
        lines += _table(rows, "    ")
        if replica_statuses is not None:
            lines.append("  Replica Statuses:")
            for rtype in sorted(replica_statuses):
                lines.append(f"    {rtype}:")
                counts = [(k.capitalize() + ":", v) for k, v in sorted(replica_statuses[rtype].items())]
                width = max((len(k) for k, _ in counts), default=0)
                lines += [f"      {k.ljust(width)}  {v}" for k, v in counts]
        lines.append("Events:")
        lines += _table([("Type", "Reason", "Message"), ("----", "------", "-------"), *self.events], "  ")
        return "\n".join(lines) + "\n"

    # ---------------------------------------------------------------- rules
    def _launch(self, r: _Replica, action: str) -> Decision:
        if action != RESTART:
            self._event("created", pod=r.member.pod)
        r.state = ACTIVE
        return Decision(action, r.member.name)

    def _evaluate(self) -> list[Decision]:
        """Decide the job after a replica ended for good."""
        states = self.states()
        if self.kind.succeeded(self.spec, states):
            return self._finish("Succeeded")
        failed = self.kind.failed(self.spec, states)
        if failed:
            count, rtype = failed
            return self._finish("ReplicaFailed", count=count, rtype=rtype)
        if any(r.state in (ACTIVE, RESTARTING) for r in self._replicas.values()):
            return []
        ok = all(r.state == SUCCEEDED for r in self._replicas.values())
        verdict = "Succeeded" if ok else "ReplicaFailed"
        ctype, reason, _ = self.table.get(verdict, ("Failed", verdict, ""))
        return self._finish(verdict, (ctype, reason, f"{self.kind.KIND} {self.name}: no replica left running and no "
                                                     f"success rule applies; {'all exited 0.' if ok else 'some failed.'}"))

    def _finish(self, verdict: str, condition: tuple[str, str, str] | None = None, **fields) -> list[Decision]:
        """End the job with `verdict`: the kind's condition for it (`fields` fill in its message)
        or else `condition`, and an event. A failed Job of a kind with `jobset_action` may
        restart every replica instead."""
        if condition is None and verdict in getattr(self.kind, "JOB_FAILURES", ()):
            action, outcome = self.kind.jobset_action(self.spec, verdict, self.jobset_restarts)
            if action == "restart":
                return self._restart_all(verdict)
            verdict = outcome
        if condition is None:
            ctype, reason, template = self.table[verdict]
            condition = ctype, reason, self._format(template, **fields)
        ctype, reason, message = condition
        succeeded = verdict == "Succeeded"
        self.outcome = Outcome(succeeded, verdict, message)
        self._set_condition(ctype, reason, message)
        self.events.append(("Normal", reason, message))
        if succeeded:
            for r in self._replicas.values():
                if r.phase == ACTIVE:
                    r.state = SUCCEEDED
        return [Decision(SUCCEED if succeeded else FAIL, text=verdict), Decision(STOP_ALL)]

    def _restart_all(self, why: str) -> list[Decision]:
        """Stop every replica and start each again as a new pod after the restart delay."""
        self.jobset_restarts += 1
        self.restarts = 0
        self._event("restart")
        for r in self._replicas.values():
            r.state, r.due, r.restart, r.left_failed = RESTARTING, self._now + self.restart_delay, RECREATE, 0
        return [_note(f"the Job failed ({why}): restarting every replica (restart {self.jobset_restarts})"), Decision(STOP_ALL)]

    def _condition(self, what: str, **fields) -> tuple[str, str] | None:
        """Set the kind's condition for `what`, if it has one; its (reason, message)."""
        if what not in self.table:
            return None
        ctype, reason, template = self.table[what]
        message = self._format(template, **fields)
        self._set_condition(ctype, reason, message)
        return reason, message

    def _set_condition(self, ctype: str, reason: str, message: str) -> None:
        """Add a condition the way the operator's UpdateJobConditions does."""
        for c in self.conditions:
            if c["type"] == ctype and c["status"] == "True" and c["reason"] == reason:
                return
        kept = []
        for c in self.conditions:
            if c["type"] == ctype or {ctype, c["type"]} == {"Running", "Restarting"}:
                continue
            if ctype in ("Succeeded", "Failed") and c["type"] == "Running":
                c["status"] = "False"
            kept.append(c)
        kept.append({"type": ctype, "status": "True", "reason": reason, "message": message})
        self.conditions = kept

    def _event(self, what: str, **fields) -> None:
        """Record the kind's event for `what`, if it has one."""
        if what in self.kind.EVENTS:
            etype, reason, template = self.kind.EVENTS[what]
            self.events.append((etype, reason, self._format(template, **fields)))

    def _format(self, template: str, **fields) -> str:
        return template.format(kind=self.kind.KIND, name=self.name, namespace=self.namespace, **fields)


def _note(text: str) -> Decision:
    return Decision(NOTE, text=text)


def _table(rows: list[tuple[str, ...]], indent: str) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip() for r in rows]
