"""A tiny trainer for entrypoint tests, run as `python tests/runtime_testing_trainer.py --config X`.

Run as a script it stands in for the built-in `income` trainer and then calls the real
`runtime.__main__.main`, so the config loading, signal handling and exit-code mapping under
test are the production ones; only the training work is replaced. It reads
`trainer.data_uri` through `ctx.storage` (so storage failures surface as they would in a real
trainer), prints `ready` to stderr, then "trains" until stopped or `TESTING_TRAIN_SECONDS`.
With `TESTING_IGNORE_STOP=1` it never calls `ctx.check_stop()` (a trainer stuck in one call).
"""

from __future__ import annotations

import os
import sys
import time


def run(cfg, ctx) -> dict:
    """Read the data file, then loop, calling ctx.check_stop() between 'steps'."""
    path = ctx.storage.local_file(cfg.trainer.data_uri)
    rows = len(path.read_bytes().splitlines())
    print("ready", file=sys.stderr, flush=True)
    ignore_stop = os.environ.get("TESTING_IGNORE_STOP") == "1"
    deadline = time.monotonic() + float(os.environ.get("TESTING_TRAIN_SECONDS", "30"))
    steps = 0
    while time.monotonic() < deadline:
        if not ignore_stop:
            ctx.check_stop()
        time.sleep(0.02)
        steps += 1
    return {"rows": rows, "steps": steps}


if __name__ == "__main__":
    sys.modules["runtime.trainers.income"] = sys.modules[__name__]
    from runtime.__main__ import main

    main()
