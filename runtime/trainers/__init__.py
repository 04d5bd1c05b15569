"""Built-in trainers. Each module exposes `run(cfg: RuntimeConfig, ctx: Context) -> dict`.

`run` returns the final metrics; it raises `runtime.errors.RuntimeFailure` subclasses for
expected failures. Module names match `TrainerConfig.name`; pytorch variants end in `_torch`.
"""

import importlib


def load(trainer: str, framework: str):
    """Import and return the `run` function for a trainer under a framework."""
    module = f"{trainer}_torch" if framework == "pytorch" else trainer
    return importlib.import_module(f"runtime.trainers.{module}").run
