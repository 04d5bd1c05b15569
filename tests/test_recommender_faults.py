"""The recommender survives faults: SIGKILL + restart by the local runner, SIGTERM, an S3 server
restart, corrupt data, SIGTERM to a 2-worker group, a job scaled from 1 worker to 2 and back (with a
lost peer between); plus runtime.checkpoint.CheckpointStore on a folder and on S3.

Every single-worker run uses the first 10,000 transactions, so that a fault can land between
epochs; the 2-worker MultiWorkerMirroredStrategy runs use 4,000.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, REPO, S3Server, free_port, put_file

from runtime.checkpoint import CheckpointStore
from runtime.config import JobInfo, RecommenderConfig, RuntimeConfig, StorageConfig, dump_runtime_config
from runtime.errors import ConfigError
from runtime.storage import Storage

TRX = DATA / "recommender" / "trx_data.csv"
USERS = DATA / "recommender" / "recommend_1.csv"
EPOCHS = 12


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The first 10,000 transactions (a real subset of the book's data)."""
    path = tmp_path_factory.mktemp("data") / "trx.csv"
    path.write_text("".join(TRX.read_text().splitlines(keepends=True)[:10_001]))
    return path


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPECC_", "TF_CONFIG"))}
    base.update(PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
    base.update(extra)
    return base


def _config(path: Path, **trainer) -> Path:
    path.write_text(dump_runtime_config(RuntimeConfig(
        job=JobInfo(name="recfaults", framework="tensorflow"),
        trainer=RecommenderConfig(**{"users_uri": str(USERS), "export_directory": "rec", "epochs": EPOCHS, **trainer}))))
    return path


def _start(cfg: Path, log: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runtime", "--config", str(cfg)], cwd=REPO, env=_env(**env),
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def _pointer(ckpt: Path) -> int:
    """The epoch the checkpoint pointer names (0 when there is none yet)."""
    try:
        return int((ckpt / "latest").read_text().strip().removeprefix("ckpt-"))
    except (OSError, ValueError):
        return 0


def _wait_for(cond, timeout: float = 120.0, what: str = "condition", proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {what}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _finish(proc: subprocess.Popen, timeout: float = 180.0) -> int:
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _assert_full_history(metrics: dict, resumed: int) -> None:
    assert metrics["resumed_from_epoch"] == resumed > 0
    assert len(metrics["loss"]) == len(metrics["val_loss"]) == EPOCHS == metrics["hyperparameters"]["epochs"]
    assert len(metrics["timings_s"]["epochs_all_attempts"]) == EPOCHS
    assert len(metrics["timings_s"]["epochs"]) == EPOCHS - resumed
    assert metrics["attempt"] >= 2 and all(np.isfinite(metrics["loss"]))
    assert min(metrics["val_loss"]) < metrics["val_msle_mean_predictor"]
    # the first epoch after the resume continues from the restored weights and Adam state (from
    # scratch its loss would be back near the first epoch's)
    loss = metrics["loss"]
    # (resumed after epoch 1 on the sample: 0.81 of the first; from scratch about 1.0)
    assert loss[resumed] < loss[resumed - 1] and loss[resumed] < 0.9 * loss[0], loss


def _group(cfg: Path, tmp_path: Path, tag: str, workers: int = 2) -> list[subprocess.Popen]:
    """`workers` replicas of `python -m runtime` under one TF_CONFIG on loopback (logs: tag<i>.log)."""
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(workers)]}
    return [subprocess.Popen([sys.executable, "-m", "runtime", "--config", str(cfg), "--work-dir", str(tmp_path / f"{tag}{i}")],
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{tag}{i}.log", "w"),
                             env=_env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})))
            for i in range(workers)]


def _first_lines(n: int, folder: Path) -> Path:
    """A transactions file of the book's first n transactions, in folder."""
    out = folder / f"trx-{n}.csv"
    out.write_text("".join(TRX.read_text().splitlines(keepends=True)[:n + 1]))
    return out


# ---------------------------------------------------------------- CheckpointStore


def _ckpt_dir(tmp_path: Path, step: int) -> Path:
    d = tmp_path / f"src{step}"
    (d / "sub").mkdir(parents=True)
    (d / "state.json").write_text(json.dumps({"epoch": step}))
    (d / "sub" / "blob").write_bytes(bytes([step]) * 1000)
    return d


def test_checkpoint_store_on_a_folder_keeps_two_and_the_pointer_is_the_truth(tmp_path):
    storage = Storage.from_config(StorageConfig(), env={})
    store = CheckpointStore(str(tmp_path / "ck"), storage)
    assert store.latest() is None and store.latest_step() is None
    for step in (1, 2, 3):
        assert store.save(_ckpt_dir(tmp_path, step), step) == f"{tmp_path}/ck/ckpt-{step}/"
    root = tmp_path / "ck"
    assert sorted(p.name for p in root.iterdir()) == ["ckpt-2", "ckpt-3", "latest"]
    assert json.loads((store.latest() / "state.json").read_text()) == {"epoch": 3}
    # a save killed after its folder was published but before the pointer moved: ckpt-3 stays latest,
    # and the stray folder and an interrupted publish's staging folder are pruned by the next save
    (root / "ckpt-4").mkdir()
    (root / ".ckpt-5.staging-0123456789ab").mkdir()
    assert store.latest_step() == 3
    store.save(_ckpt_dir(tmp_path, 4), 4)
    assert sorted(p.name for p in root.iterdir()) == ["ckpt-3", "ckpt-4", "latest"]
    assert (store.latest() / "sub" / "blob").read_bytes() == bytes([4]) * 1000
    (root / "latest").write_text("garbage")
    assert store.latest() is None
    # SPECC_PATH_MAP applies: /train/ck is the mapped folder
    mapped = CheckpointStore("/train/ck", Storage.from_config(StorageConfig(), env={}))
    os.environ["SPECC_PATH_MAP"] = json.dumps({"/train": str(tmp_path)})
    try:
        assert mapped.local_path == root
        store.save(_ckpt_dir(tmp_path, 5), 5)
        assert mapped.latest() == root / "ckpt-5"
    finally:
        del os.environ["SPECC_PATH_MAP"]


def test_checkpoint_store_on_s3(s3, tmp_path):
    s3.client().make_bucket("ckpts")
    storage = Storage.from_config(StorageConfig(), env=s3.env())
    store = CheckpointStore("s3://ckpts/jobs/rec", storage, work_dir=tmp_path)
    assert store.latest() is None
    for step in (1, 2, 3):
        store.save(_ckpt_dir(tmp_path, step), step)
    keys = sorted(o.object_name for o in s3.client().list_objects("ckpts", recursive=True))
    assert keys == ["jobs/rec/ckpt-2/state.json", "jobs/rec/ckpt-2/sub/blob",
                    "jobs/rec/ckpt-3/state.json", "jobs/rec/ckpt-3/sub/blob", "jobs/rec/latest"]
    got = store.latest()
    assert got.is_relative_to(tmp_path) and json.loads((got / "state.json").read_text()) == {"epoch": 3}
    store.cleanup()
    assert not got.exists()


# ---------------------------------------------------------------- training faults


def test_sigkilled_replica_is_restarted_by_the_local_runner_and_resumes(tmp_path, sample):
    """restartPolicy ExitCode: SIGKILL (137) restarts the pod; the PVC keeps the checkpoint."""
    from conftest import compile_specs
    from localrun import run_local

    spec = tmp_path / "rec.yaml"
    spec.write_text(f"""\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata:
  name: recfaults
spec:
  framework: tensorflow
  trainer:
    name: recommender
    users_uri: {USERS}
    transactions_uri: {sample}
    export_directory: rec
    directory_uri: null
    model_root: {tmp_path}/models
    epochs: {EPOCHS}
    checkpoint_uri: /train/ckpt
  replicas:
    Worker:
      count: 1
      restartPolicy: ExitCode
  volumes:
    - name: training
      mountPath: /train
      persistentVolumeClaim: ckpt-volume
""")
    jobs, diags = compile_specs([spec])
    assert not diags, diags
    out, result = io.StringIO(), {}
    runner = threading.Thread(target=lambda: result.setdefault("rc", run_local(
        list(jobs[0].objects), volumes_dir=tmp_path / "volumes", work_dir=tmp_path / "run", env=_env(), out=out,
        restart_delay=0.2)))
    runner.start()
    ckpt = tmp_path / "volumes" / "ckpt-volume" / "ckpt"
    try:
        _wait_for(lambda: _pointer(ckpt) >= 2 or not runner.is_alive(), what="the second checkpoint")
        assert runner.is_alive(), out.getvalue()[-3000:]
        victims = _replica_pids()
        assert len(victims) == 1, victims
        os.kill(victims[0], signal.SIGKILL)
    finally:
        runner.join(240)
    text = out.getvalue()
    assert result.get("rc") == 0, text[-3000:]
    assert "exited with code 137; restarting (restartPolicy ExitCode" in text
    metrics = json.loads((tmp_path / "models" / "rec" / "1" / "metrics.json").read_text())
    _assert_full_history(metrics, metrics["resumed_from_epoch"])
    assert f"resuming from checkpoint /train/ckpt (ckpt-{metrics['resumed_from_epoch']})" in text
    assert sorted(p.name for p in ckpt.iterdir()) == [f"ckpt-{EPOCHS - 1}", f"ckpt-{EPOCHS}", "latest"]


def _replica_pids() -> list[int]:
    """Pids of this process's children running `python -m runtime` (the local runner's replicas)."""
    me, out = os.getpid(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me and b"runtime" in cmd and b"-m" in cmd:
            out.append(int(d.name))
    return out


def test_sigterm_saves_a_checkpoint_exits_143_and_the_next_run_resumes(tmp_path, sample):
    ckpt = tmp_path / "ckpt"
    cfg = _config(tmp_path / "cfg.json", transactions_uri=str(sample), model_root=str(tmp_path / "models"),
                  checkpoint_uri=str(ckpt))
    log = tmp_path / "first.log"
    proc = _start(cfg, log)
    try:
        _wait_for(lambda: _pointer(ckpt) >= 1, what="the first checkpoint", proc=proc)
        proc.send_signal(signal.SIGTERM)
        rc = _finish(proc, 60)
    finally:
        _finish(proc, 1)
    err = log.read_text()
    assert rc == 143, err[-3000:]
    assert err.rstrip().splitlines()[-1] == "specc-runtime: error: terminated by SIGTERM"
    assert "Traceback" not in err
    saved = _pointer(ckpt)
    assert 1 <= saved < EPOCHS and f"epoch {saved}/{EPOCHS}:" in err and f"epoch {saved + 1}/{EPOCHS}:" not in err
    assert json.loads((ckpt / f"ckpt-{saved}" / "state.json").read_text())["epoch"] == saved
    assert not (tmp_path / "models").exists()

    second = subprocess.run([sys.executable, "-m", "runtime", "--config", str(cfg)], cwd=REPO, env=_env(),
                            capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr[-3000:]
    metrics = json.loads((tmp_path / "models" / "rec" / "1" / "metrics.json").read_text())
    _assert_full_history(metrics, saved)


def _s3_keys(server: S3Server, bucket: str) -> list[str]:
    return sorted(o.object_name for o in server.client().list_objects(bucket, recursive=True))


def _upload_inputs(server: S3Server, sample: Path) -> None:
    put_file(server, "data", "recommender/users.csv", USERS)
    put_file(server, "data", "recommender/transactions.csv", sample)
    server.client().make_bucket("models")


MODEL_FILES = {"saved_model.pb", "fingerprint.pb", "ids.json", "metrics.json",
               "variables/variables.index", "variables/variables.data-00000-of-00001"}


def test_s3_server_restart_during_training_then_down_at_export(tmp_path, sample):
    """moto keeps objects in memory: a restart empties it, so inputs are re-uploaded while the
    trainer is paused (SIGSTOP) and the restart lands between reading and exporting."""
    server = S3Server().start()
    try:
        _upload_inputs(server, sample)
        ckpt = tmp_path / "ckpt"
        cfg = _config(tmp_path / "cfg.json", users_uri="s3://data/recommender/users.csv",
                      transactions_uri="s3://data/recommender/transactions.csv", model_root="s3://models",
                      checkpoint_uri=str(ckpt))
        retries = dict(SPECC_STORAGE_RETRIES="4", SPECC_STORAGE_BACKOFF="0.2", **server.env())

        # 1. restarted while training: the pooled connections are stale, the export still succeeds
        proc = _start(cfg, tmp_path / "restart.log", **retries)
        try:
            _wait_for(lambda: _pointer(ckpt) >= 1, what="the first checkpoint", proc=proc)
            proc.send_signal(signal.SIGSTOP)
            server.stop()
            server.start()
            _upload_inputs(server, sample)
            proc.send_signal(signal.SIGCONT)
            rc = _finish(proc)
        finally:
            _finish(proc, 1)
        assert rc == 0, (tmp_path / "restart.log").read_text()[-3000:]
        keys = _s3_keys(server, "models")
        assert {k.removeprefix("rec/1/") for k in keys} >= MODEL_FILES
        assert all(k.startswith("rec/1/") for k in keys)  # no staging leftovers

        # 2. down from mid-training to the end: the export gives up with 138 (retryable) and
        # publishes nothing; the pod's retry resumes from the checkpoint on the PVC
        shutil.rmtree(ckpt)
        for k in keys:
            server.client().remove_object("models", k)
        proc = _start(cfg, tmp_path / "down.log", SPECC_STORAGE_RETRIES="2", SPECC_STORAGE_BACKOFF="0.05",
                      **server.env())
        try:
            _wait_for(lambda: _pointer(ckpt) >= 1, what="the first checkpoint", proc=proc)
            proc.send_signal(signal.SIGSTOP)
            server.stop()
            proc.send_signal(signal.SIGCONT)
            rc = _finish(proc)
        finally:
            _finish(proc, 1)
        err = (tmp_path / "down.log").read_text()
        assert rc == 138, err[-3000:]
        last = err.rstrip().splitlines()[-1]
        assert last.startswith("specc-runtime: error: storage http://127.0.0.1:") and "unavailable" in last
        assert "Traceback" not in err
        assert _pointer(ckpt) == EPOCHS  # training finished and was checkpointed before the export

        server.start()
        _upload_inputs(server, sample)
        again = subprocess.run([sys.executable, "-m", "runtime", "--config", str(cfg)], cwd=REPO,
                               env=_env(**retries), capture_output=True, text=True, timeout=180)
        assert again.returncode == 0, again.stderr[-3000:]
        assert f"resuming from checkpoint {ckpt} (ckpt-{EPOCHS})" in again.stderr
        keys = _s3_keys(server, "models")
        assert {k.removeprefix("rec/1/") for k in keys} >= MODEL_FILES and all(k.startswith("rec/1/") for k in keys)
        metrics = json.loads(server.client().get_object("models", "rec/1/metrics.json").read())
        assert metrics["resumed_from_epoch"] == EPOCHS and len(metrics["loss"]) == EPOCHS
        assert metrics["timings_s"]["epochs"] == []
    finally:
        server.stop()


def test_truncated_transactions_exit_1_naming_file_and_line(tmp_path):
    lines = TRX.read_bytes().splitlines(keepends=True)
    n = next(i for i in range(500, len(lines)) if b"|" in lines[i])  # a line with several products
    bad = tmp_path / "trx.csv"
    bad.write_bytes(b"".join(lines[:n]) + lines[n][: lines[n].index(b"|") + 1])  # the file ends after its '|'
    cfg = _config(tmp_path / "cfg.json", transactions_uri=str(bad), model_root=str(tmp_path / "models"),
                  checkpoint_uri=str(tmp_path / "ckpt"))
    p = subprocess.run([sys.executable, "-m", "runtime", "--config", str(cfg)], cwd=REPO, env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr[-3000:]
    assert p.stderr.rstrip().splitlines()[-1].startswith(
        f"specc-runtime: error: {bad}:{n + 1}: products must be non-negative integer ids joined by '|'")
    assert not (tmp_path / "models").exists() and not (tmp_path / "ckpt").exists()


def test_two_workers_stop_together_on_sigterm_and_resume(tmp_path):
    """Under MultiWorkerMirroredStrategy (whose coordination service would swallow SIGTERM) a
    SIGTERM to one worker stops both after the same epoch (they all-reduce their stop flags), the
    chief checkpoints, both exit 143; a new group resumes."""
    ckpt = tmp_path / "ckpt"
    cfg = _config(tmp_path / "cfg.json", transactions_uri=str(_first_lines(4000, tmp_path)), model_root=str(tmp_path / "models"),
                  checkpoint_uri=str(ckpt), epochs=4)

    procs = _group(cfg, tmp_path, "first")
    try:
        _wait_for(lambda: _pointer(ckpt) >= 1, what="the first checkpoint", proc=procs[0])
        procs[1].send_signal(signal.SIGTERM)  # pods get SIGTERM at different moments: here only one
        codes = [_finish(p, 90) for p in procs]
    finally:
        for p in procs:
            _finish(p, 1)
    logs = [(tmp_path / f"first{i}.log").read_text() for i in range(2)]
    assert codes == [143, 143], [log[-2000:] for log in logs]
    saved = _pointer(ckpt)
    assert 1 <= saved < 4 and all(f"epoch {saved}/4:" in log and f"epoch {saved + 1}/4:" not in log for log in logs)

    procs = _group(cfg, tmp_path, "second")
    try:
        codes = [_finish(p, 180) for p in procs]
    finally:
        for p in procs:
            _finish(p, 1)
    assert codes == [0, 0], [(tmp_path / f"second{i}.log").read_text()[-2000:] for i in range(2)]
    metrics = json.loads((tmp_path / "models" / "rec" / "1" / "metrics.json").read_text())
    assert metrics["workers"] == 2 and metrics["resumed_from_epoch"] == saved and len(metrics["loss"]) == 4


def test_a_job_scaled_from_one_worker_to_two_and_back_resumes(tmp_path):
    """One optimizer state and checkpoint layout for 1 and N workers: a job checkpointed by one
    worker resumes with two; when one of the two dies without a word, the other's collectives
    fail (Rendezvous, exit 140) and the job resumes with one worker again. The attempts together
    train what one uninterrupted worker trains (two workers differ from one only in the order of
    float additions)."""
    from runtime.__main__ import Context
    from runtime.context import Task
    from runtime.trainers import recommender as rec

    small = _first_lines(4000, tmp_path)
    ckpt = tmp_path / "ckpt"

    def cfg(epochs: int, name: str = "scaled", checkpoint: Path = ckpt) -> Path:
        return _config(tmp_path / f"{name}-{epochs}.json", transactions_uri=str(small), checkpoint_uri=str(checkpoint),
                       model_root=str(tmp_path / f"models-{name}"), epochs=epochs)

    alone = subprocess.run([sys.executable, "-m", "runtime", "--config", str(cfg(1))], cwd=REPO, env=_env(),
                           capture_output=True, text=True, timeout=180)
    assert alone.returncode == 0, alone.stderr[-3000:]

    pair = _group(cfg(EPOCHS), tmp_path, "pair")
    try:
        _wait_for(lambda: _pointer(ckpt) >= 2, what="the pair's first checkpoint", proc=pair[0])
        pair[1].kill()
        code = _finish(pair[0], 90)
    finally:
        for p in pair:
            _finish(p, 1)
    log = (tmp_path / "pair0.log").read_text()
    assert code == 140, log[-3000:]
    assert f"resuming from checkpoint {ckpt} (ckpt-1): 1 epoch(s) done, attempt 2" in log
    last = log.rstrip().splitlines()[-1]
    assert last.startswith("specc-runtime: error: lost a peer worker in epoch ") and "peer" in last.split(": ", 2)[2], last
    saved = _pointer(ckpt)

    again = subprocess.run([sys.executable, "-m", "runtime", "--config", str(cfg(saved + 1))], cwd=REPO, env=_env(),
                           capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from checkpoint {ckpt} (ckpt-{saved}): {saved} epoch(s) done, attempt 3" in again.stderr
    metrics = json.loads((tmp_path / "models-scaled" / "rec" / "1" / "metrics.json").read_text())
    assert metrics["workers"] == 1 and metrics["resumed_from_epoch"] == saved and metrics["attempt"] == 3

    whole_cfg = RuntimeConfig.model_validate_json(cfg(saved + 1, "whole", tmp_path / "ckpt-whole").read_text())
    (tmp_path / "work-whole").mkdir()
    whole = rec.run(whole_cfg, Context(task=Task(), config=whole_cfg, work_dir=tmp_path / "work-whole"))
    np.testing.assert_allclose(metrics["loss"], whole["loss"], rtol=1e-5)
    np.testing.assert_allclose(metrics["val_loss"], whole["val_loss"], rtol=1e-5)
    last_ckpt = f"ckpt-{saved + 1}"
    with np.load(ckpt / last_ckpt / "weights.npz") as a, np.load(tmp_path / "ckpt-whole" / last_ckpt / "weights.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-3, atol=1e-6)


def test_a_resumed_run_repeats_the_uninterrupted_one(tmp_path, sample):
    """Alone, the split, each epoch's order, the dropout masks and the initial weights are functions
    of the seed, and the checkpoint holds the exact weights and Adam state: 1 epoch + a resumed 2nd
    gives the same numbers and weights as 2 epochs at once (in process, each run compiles anew)."""
    from runtime.__main__ import Context
    from runtime.context import Task
    from runtime.trainers import recommender as rec

    small = tmp_path / "trx.csv"
    small.write_text("".join(sample.read_text().splitlines(keepends=True)[:3001]))

    def run(tag: str, epochs: int, **settings) -> dict:
        cfg = RuntimeConfig(job=JobInfo(name="recresume", framework="tensorflow"), trainer=RecommenderConfig(
            users_uri=str(USERS), transactions_uri=str(small), export_directory="rec", epochs=epochs,
            model_root=str(tmp_path / f"models-{tag}"), checkpoint_uri=str(tmp_path / f"ckpt-{tag}"), **settings))
        work = tmp_path / f"work-{tag}-{epochs}-{len(settings)}"
        work.mkdir()
        return rec.run(cfg, Context(task=Task(), config=cfg, work_dir=work))

    whole = run("whole", 2)
    run("split", 1)
    resumed = run("split", 2)
    assert resumed["resumed_from_epoch"] == 1 and whole["resumed_from_epoch"] == 0
    assert resumed["loss"] == whole["loss"] and resumed["val_loss"] == whole["val_loss"]
    with np.load(tmp_path / "ckpt-whole" / "ckpt-2" / "weights.npz") as a, \
            np.load(tmp_path / "ckpt-split" / "ckpt-2" / "weights.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])
    # a checkpoint of other settings is refused, naming what differs
    with pytest.raises(ConfigError, match=r"written for other data or settings: learning_rate 0\.001 \(this run: 0\.002\)"):
        run("split", 3, learning_rate=0.002)
