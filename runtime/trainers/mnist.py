"""Book sections 3-4: the mnist_with_summaries network, trained data-parallel with TensorFlow.

784 -> 500 ReLU -> dropout (keep probability `dropout`) -> 10 softmax, Adam(learning_rate),
`batch_size` rows per replica per step, `max_steps` steps. Under a TF_CONFIG with several
training replicas it runs a custom loop under MultiWorkerMirroredStrategy: every replica computes
gradients on its own slice of the global batch and the all-reduce keeps the weights identical.

Summaries: after every 10th step (and the last) the chief alone evaluates on the held-out test
rows and writes `loss` and `accuracy` to `log_dir/train` (the step's batch) and `log_dir/test`;
other replicas write nothing, so the PVC the book mounts at /train holds one run per job.
The chief exports a SavedModel plus metrics.json to `export_uri`. Every replica logs its final
test accuracy and weights checksum. Keras here is tf-keras (Keras 2): Keras 3 does not run
under MultiWorkerMirroredStrategy in TF 2.21.

Faults. With `checkpoint_uri` (a PVC path or s3://, runtime.checkpoint.CheckpointStore) a
tf.train.Checkpoint of model + optimizer + step is written every `checkpoint_every` steps and at
the last step: every replica writes it (MultiWorkerMirroredStrategy's documented pattern), the
chief into the store, the others into a temporary folder they delete. On start every replica
restores the newest one and trains on to `max_steps` in total (the batch schedule is a function
of the step, so the resumed run sees the batches the lost one would have). Every replica reads
the pointer before its first step and the chief cannot write before all have done
`checkpoint_every` steps together, so all restore the same step. SIGTERM: the stop flag rides
on the all-reduce every step already does, so all replicas stop after the same step, save a
checkpoint and exit 143. A peer that dies without SIGTERM makes the collectives fail:
that is a Rendezvous error (exit 140, retryable), so the operator restarts the group.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from runtime import mnist_data as md
from runtime.errors import ConfigError, DataError, Rendezvous, RuntimeFailure, Terminated
from runtime.trainers._keras import error_reason, peer_errors, strategy_for

if TYPE_CHECKING:
    from runtime.__main__ import Context
    from runtime.config import RuntimeConfig

log = logging.getLogger("specc.mnist")

EVAL_EVERY = 10


def run(cfg: "RuntimeConfig", ctx: "Context") -> dict:
    """Train, evaluate, write summaries and (on the chief) export; return the final metrics."""
    t = cfg.trainer
    task = ctx.task
    distributed = task.source == "tf_config" and task.world_size > 1
    if task.rank < 0:
        raise ConfigError(f"replica {task.name} does not train: the mnist trainer needs chief/master/worker replicas only")
    if distributed:
        _use_chief_name(task)
    world, rank = (task.world_size, task.rank) if distributed else (1, 0)
    data = md.load_split(ctx.storage, t.data_dir, t.train_rows, t.test_rows, t.seed)
    sched = md.BatchSchedule(len(data.x_train), t.batch_size, rank, world, t.seed)

    import tensorflow as tf
    import tf_keras as keras

    if "TF_NUM_INTRAOP_THREADS" not in os.environ:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(md.cpu_limit())
        except RuntimeError:  # TensorFlow already initialized in this process: keep its setting
            pass
    # The strategy must exist before TensorFlow runs any op. `distributed` implies task.distributed,
    # so strategy_for gives MultiWorkerMirroredStrategy (SIGTERM reclaimed) in that branch.
    strategy = strategy_for(tf, task) if distributed else tf.distribute.get_strategy()
    device = _device(tf)
    writes = rank == 0
    global_batch = t.batch_size * world
    tf.random.set_seed(t.seed)

    with strategy.scope():
        model = build_model(keras, t.dropout, t.seed)
        opt = keras.optimizers.Adam(learning_rate=t.learning_rate)
    x_train, y_train = tf.constant(data.x_train), tf.constant(data.y_train)
    x_test, y_test = tf.constant(data.x_test), tf.constant(data.y_test)

    def replica_step(idx, stop):
        x, y = tf.gather(x_train, idx), tf.gather(y_train, idx)
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
        return tf.stack([loss, correct / global_batch, stop])

    @tf.function
    def train_step(idx, stop):
        """One step on every replica; returns [global loss, accuracy, replicas asking to stop]."""
        per_replica = strategy.run(replica_step, args=(idx, stop))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    @tf.function
    def evaluate():
        logits = model(x_test, training=False)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_test, logits=logits))
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y_test), tf.float32))
        return tf.stack([loss, acc])

    log_local, log_upload = _log_dir(t.log_dir, ctx.work_dir)
    writers = None
    if writes:
        writers = {k: tf.summary.create_file_writer(str(log_local / k)) for k in ("train", "test")}
        log.info("writing TensorBoard summaries to %s/{train,test}", log_local)

    ckpt = _Checkpoints(tf, ctx, t, model, opt, strategy, writes)
    first = ckpt.restore()
    ctx.check_stop()
    clock = md.TargetClock()
    step_seconds = 0.0
    loss = acc = float("nan")
    start = time.perf_counter()
    for step in range(first + 1, t.max_steps + 1):
        idx = tf.constant(sched.indices(step - 1), dtype=tf.int32)
        s = time.perf_counter()
        try:
            loss, acc, stops = (float(v) for v in train_step(idx, tf.constant(float(ctx.stop_requested))).numpy())
        except peer_errors(tf) as exc:
            if not distributed:
                raise
            raise Rendezvous(f"lost a peer replica at step {step}: {type(exc).__name__}: {error_reason(exc)}") from None
        step_seconds += time.perf_counter() - s
        if stops > 0:
            ckpt.stop(step)
        if ckpt.due(step):
            ckpt.save(step)
        if writes and (step % EVAL_EVERY == 0 or step == t.max_steps):
            test_loss, test_acc = (float(v) for v in evaluate().numpy())
            for name, (lv, av) in (("train", (loss, acc)), ("test", (test_loss, test_acc))):
                with writers[name].as_default(step=step):
                    _scalar(tf, "loss", lv)
                    _scalar(tf, "accuracy", av)
            clock.observe(step, test_acc, time.perf_counter() - start)
            if step % (EVAL_EVERY * 10) == 0 or step == t.max_steps:
                log.info("step %d: train loss %.4f, test accuracy %.4f", step, loss, test_acc)
    total_seconds = time.perf_counter() - start
    if writers:
        for w in writers.values():
            w.close()

    weights = model.get_weights()
    checksum = md.weights_checksum(weights)
    test_loss, test_acc = (float(v) for v in evaluate().numpy())
    log.info("replica %s final: test accuracy %.4f, weights checksum %s", task.name, test_acc, checksum)
    metrics = md.final_metrics(
        framework="tensorflow", device=device, world=world, cfg=t, first=first, global_batch=global_batch,
        test_acc=test_acc, test_loss=test_loss, loss=loss, total_seconds=total_seconds,
        step_seconds=step_seconds, clock=clock, checksum=checksum,
    )
    if writes:
        if log_upload:
            _upload_tree(ctx.storage, log_local, log_upload)
        if t.export_uri:
            _export(tf, ctx, t, weights, metrics)
    return metrics


class _Checkpoints(md.StepCheckpoints):
    """tf.train.Checkpoint of model + optimizer + step in a CheckpointStore (no-op without checkpoint_uri)."""

    def __init__(self, tf, ctx, t, model, opt, strategy, chief: bool):
        super().__init__(ctx, t, log)
        self.tf, self.chief = tf, chief
        if self.store is not None:
            with strategy.scope():
                opt.build(model.trainable_variables)  # slots exist now, so restoring fills them at once
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.ckpt = tf.train.Checkpoint(model=model, optimizer=opt, step=self.step)

    def restore(self) -> int:
        """Load the newest checkpoint, if any; return its step (0 for a fresh start)."""
        folder = self.latest_folder()
        if folder is None:
            return 0
        try:
            self.ckpt.read(str(folder / "ckpt")).assert_existing_objects_matched()
        except (self.tf.errors.OpError, AssertionError, ValueError) as exc:
            raise DataError(str(folder), f"cannot restore the checkpoint: {str(exc).splitlines()[0][:200]}") from None
        finally:
            self.store.cleanup()
        return self.resumed(int(self.step.numpy()))

    def save(self, step: int, *, quiet: bool = True) -> None:
        """Every replica writes (collectives may run); the chief's copy goes to the store.

        A periodic save that storage refuses is logged and training goes on (quiet); the next
        one may succeed, and the previous checkpoint stays the one to resume from."""
        self.step.assign(step)
        self.write(step, lambda local: self.ckpt.write(str(local / "ckpt")), publish=self.chief, quiet=quiet)

    def stop(self, step: int) -> None:
        """All replicas agreed to stop after `step`: save a checkpoint, then raise Terminated."""
        why = "SIGTERM" if self.ctx.stop_requested else "SIGTERM to another replica"
        if self.store is None:
            raise Terminated(f"terminated by {why} at step {step} (no checkpoint_uri: progress is lost)")
        try:
            self.save(step, quiet=False)
        except RuntimeFailure as exc:
            raise Terminated(f"terminated by {why} at step {step}; checkpoint not saved: {exc}") from None
        raise Terminated(f"terminated by {why} at step {step}" + ("; checkpoint saved" if self.chief else ""))


def build_model(keras, keep: float, seed: int):
    """The book's network; weights ~ truncated normal(0.1), biases 0.1, as mnist_with_summaries."""
    def dense(units, activation, k):
        return keras.layers.Dense(
            units, activation=activation,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.1, seed=seed + k),
            bias_initializer=keras.initializers.Constant(0.1),
        )

    return keras.Sequential([
        keras.Input(shape=(784,)),
        dense(500, "relu", 0),
        keras.layers.Dropout(1.0 - keep, seed=seed),
        dense(10, None, 1),
    ])


def _scalar(tf, tag: str, value: float) -> None:
    """What tf.summary.scalar writes, without needing the tensorboard package installed."""
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    tf.summary.write(tag, tf.constant(value, tf.float32), metadata=meta)


def _use_chief_name(task) -> None:
    """MultiWorkerMirroredStrategy knows chief, not the operator's legacy master: rename it."""
    if "ps" in task.cluster:
        raise ConfigError("TF_CONFIG has ps replicas: the mnist trainer is data-parallel and needs chief/worker replicas only")
    doc = json.loads(os.environ["TF_CONFIG"])
    cluster = {k.lower(): v for k, v in doc["cluster"].items()}
    if "master" in cluster:
        cluster["chief"] = cluster.pop("master")
        if str(doc["task"]["type"]).lower() == "master":
            doc["task"]["type"] = "chief"
        doc["cluster"] = cluster
        os.environ["TF_CONFIG"] = json.dumps(doc)


def _device(tf) -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
        log.info("using GPU: %s", name)
        return name
    log.info("no GPU visible: running on CPU")
    return "cpu"


def _log_dir(log_dir: str, work_dir: Path) -> tuple[Path, str | None]:
    """Local folder for summaries, and the s3:// prefix to upload them to at the end (or None)."""
    if log_dir.startswith("s3://"):
        return Path(tempfile.mkdtemp(prefix="logs-", dir=work_dir)), log_dir
    from runtime.storage import local_path

    return Path(local_path(log_dir)), None


def _upload_tree(storage, local: Path, prefix: str) -> None:
    for f in sorted(p for p in local.rglob("*") if p.is_file()):
        storage.upload_file(f, md.join_uri(prefix, f.relative_to(local).as_posix()))


def _export(tf, ctx, t, weights, metrics: dict) -> None:
    """SavedModel (serving signature: 784 floats in [0, 1] -> 10 probabilities) + metrics.json."""
    out = Path(tempfile.mkdtemp(prefix="export-", dir=ctx.work_dir))

    class Mnist(tf.Module):
        """The trained network as plain variables (saving a Keras model is several times slower)."""

        def __init__(self, arrays):
            super().__init__(name="mnist")
            self.w1, self.b1, self.w2, self.b2 = (tf.Variable(a, trainable=False) for a in arrays)

        @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32, name="images")])
        def serve(self, images):
            hidden = tf.nn.relu(tf.matmul(images, self.w1) + self.b1)
            return {"probabilities": tf.nn.softmax(tf.matmul(hidden, self.w2) + self.b2)}

    module = Mnist(weights)
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    (out / "metrics.json").write_bytes(md.metrics_doc(**metrics))
    ctx.storage.publish_dir(out, t.export_uri, overwrite=True)  # a rerun replaces its own export
    log.info("exported SavedModel and metrics.json to %s", t.export_uri)
