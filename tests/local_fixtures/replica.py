"""A stand-in for `python -m runtime` in the local-runner tests.

Records each attempt (its environment, argv and pid) under --state, then behaves as told:
exit codes per attempt, lines to print, files to write through SPECC_PATH_MAP, waiting, sleeping.
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path


def mapped(path: str) -> Path:
    """Apply SPECC_PATH_MAP the way runtime.storage.local_path does (longest mount prefix)."""
    table = json.loads(os.environ.get("SPECC_PATH_MAP", "{}"))
    best = max((m for m in table if path == m or path.startswith(m.rstrip("/") + "/")), key=len, default=None)
    if best is None:
        return Path(path)
    return Path(table[best]) / path[len(best):].lstrip("/")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--state", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--codes", default="0", help="exit code per attempt; the last one repeats")
    p.add_argument("--lines", type=int, default=0)
    p.add_argument("--partial", default=None, help="text printed last without a newline")
    p.add_argument("--write", action="append", default=[], help="container path to write NAME into")
    p.add_argument("--wait-for", type=int, default=0, help="wait until this many env dumps exist")
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    a = p.parse_args()
    if a.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    state = Path(a.state)
    state.mkdir(parents=True, exist_ok=True)
    counter = state / f"{a.name}.attempts"
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    (state / f"{a.name}.pid").write_text(str(os.getpid()))
    dump = {"env": dict(os.environ), "argv": a.rest, "cwd": os.getcwd(), "attempt": attempt}
    tmp = state / f".{a.name}.{attempt}.tmp"
    tmp.write_text(json.dumps(dump))
    tmp.rename(state / f"{a.name}.{attempt}.env.json")
    for path in a.write:
        target = mapped(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(a.name)
    for k in range(a.lines):
        print(f"line {k} from {a.name}", flush=True)
    if a.partial:
        sys.stdout.write(a.partial)
        sys.stdout.flush()
    deadline = time.monotonic() + 20
    while a.wait_for and len(list(state.glob("*.env.json"))) < a.wait_for and time.monotonic() < deadline:
        time.sleep(0.02)
    if a.sleep:
        time.sleep(a.sleep)
    codes = [int(c) for c in a.codes.split(",")]
    return codes[min(attempt, len(codes)) - 1]


if __name__ == "__main__":
    sys.exit(main())
