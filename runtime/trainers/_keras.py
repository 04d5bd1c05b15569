"""Import TensorFlow with the legacy tf-keras 2 and pick the distribution strategy for this task.

Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy ("Attempt to convert a value
(PerReplica...)"); tf-keras 2.21 works. TF_USE_LEGACY_KERAS must be set before TensorFlow is first
imported, so trainers call `load_tf()` instead of importing TensorFlow themselves.
"""

from __future__ import annotations

import os
import sys

from runtime.context import Task
from runtime.errors import MissingExtra


def load_tf(threads: int | None = None):
    """Return `(tensorflow, tf_keras)` with legacy Keras selected and TF's C++ logs quietened.

    `threads` > 0 sets TF's intra-op thread pool (inter-op stays at 2); None leaves TF's default.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
        import tf_keras
    except ModuleNotFoundError as exc:
        raise MissingExtra(f"the TensorFlow trainers need {exc.name} (install specc[runtime])") from None
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(2)
        except RuntimeError:
            pass  # already initialised in this process: keep what it has
    return tf, tf_keras


def strategy_for(tf, task: Task):
    """MultiWorkerMirroredStrategy (reads TF_CONFIG) for a multi-worker task, else the default one.

    MWMS must be created before any other TensorFlow op runs in the process.
    """
    if task.distributed:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        _reclaim_sigterm()
        return strategy
    return tf.distribute.get_strategy()


def _reclaim_sigterm() -> None:
    """Put Python's SIGTERM handler (runtime.__main__'s) back at the C level.

    MultiWorkerMirroredStrategy starts TensorFlow's coordination service, whose preemption
    notifier installs a C++ SIGTERM handler over Python's: SIGTERM would then never reach
    ctx.stop_requested and the replica would train on until SIGKILL."""
    import signal

    handler = signal.getsignal(signal.SIGTERM)
    if callable(handler):
        try:
            signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread: nobody installed a Python handler here either
            pass


def peer_errors(tf) -> tuple:
    """TensorFlow errors that mean a peer worker went away during a collective."""
    e = tf.errors
    return (e.UnavailableError, e.DeadlineExceededError, e.CancelledError, e.AbortedError)


def error_reason(exc) -> str:
    """The informative line of a TensorFlow op error ("Graph execution error:" comes first)."""
    import re

    text = str(getattr(exc, "message", exc))
    m = re.search(r"^[A-Z_]+: .+$|.*(Connection|connection|peer|Peer|timed out|Deadline).*", text, re.M)
    line = m.group(0) if m else (text.strip().splitlines() or [""])[-1]
    return " ".join(line.split())[:240]
