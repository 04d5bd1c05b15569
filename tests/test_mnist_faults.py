"""MNIST trainers under faults (budget: about 2 minutes on 2 cores; three slow cases add 45 s).

Real `python -m runtime` processes on the shared MNIST files, small max_steps:
- a TensorFlow replica SIGKILLed by the test once its first checkpoint is on the PVC, restarted by
  the real local runner (restartPolicy OnFailure), resumes from that checkpoint;
- SIGTERM: checkpoint saved, exit 143, the rerun resumes (PyTorch: bitwise the weights of an
  uninterrupted run); with two ranks, SIGTERM to one stops both after the same step;
- the S3 server restarted between data read and export: the job recovers through the storage
  retries or exits >= 128, and the export prefix holds a whole model or nothing (slow: S3 down
  from then on exits 138);
- a PyTorch rank whose master (or worker) never comes exits 140 within SPECC_RENDEZVOUS_TIMEOUT
  (slow: a worker started before its master joins once the master is up);
- a replica that dies without a word (SIGKILL) makes its peers exit 140 (PyTorch; slow: two
  TensorFlow workers resume from one checkpoint, then one is SIGKILLed).
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runtime import mnist_data as md
from runtime.errors import ConfigError, ExitCode
from tests.conftest import REPO, free_port, put_file
from tests.test_mnist import FINAL_RE, MNIST, env

PY = sys.executable
pytestmark = pytest.mark.train


def write_config(tmp_path: Path, framework: str, name: str = "config.json", **trainer) -> Path:
    doc = {"job": {"name": "mnist-faults", "namespace": "test", "framework": framework},
           "trainer": {"name": "mnist", "data_dir": MNIST.as_uri(), "log_dir": str(tmp_path / "logs"),
                       "learning_rate": 0.001, "batch_size": 100, **trainer}}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


class Replica:
    """One `python -m runtime` process whose output lines are collected by a thread."""

    def __init__(self, cfg: Path, environ: dict, work: Path):
        self.proc = subprocess.Popen([PY, "-m", "runtime", "--config", str(cfg), "--work-dir", str(work)],
                                     cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.text: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.text.append(line)
            self.lines.put(line)

    def wait_line(self, needle: str, timeout: float = 90) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"exited {self.proc.returncode} before {needle!r}:\n{self.output[-3000:]}"
                continue
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r} within {timeout}s:\n{self.output[-3000:]}")

    def wait(self, timeout: float = 120) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.05)  # let the reader take the last lines
        return code

    @property
    def output(self) -> str:
        return "".join(self.text)


def wait_for(path: Path, proc_alive, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc_alive(), f"process ended before {path} appeared"
        assert time.monotonic() < end, f"{path} did not appear within {timeout}s"
        time.sleep(0.01)


def checksum(text: str) -> str:
    m = FINAL_RE.search(text)
    assert m, text[-3000:]
    return m.group(3)


# ----------------------------------------------------------------------------- (a) SIGKILL + local runner


def runtime_children() -> list[int]:
    """Pids of this process's children that run `python -m runtime` (the local runner's replicas)."""
    pids = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    found = []
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-m" in argv and b"runtime" in argv:
            found.append(pid)
    return found


def test_sigkilled_replica_is_restarted_by_the_local_runner_and_resumes(tmp_path):
    from conftest import compile_specs
    from localrun import run_local

    max_steps, every = 300, 50
    spec = tmp_path / "mnist-faults.yaml"
    spec.write_text(f"""\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata:
  name: mnist-faults
  namespace: test
spec:
  framework: tensorflow
  trainer:
    name: mnist
    data_dir: {MNIST.as_uri()}
    log_dir: /train/logs
    export_uri: /train/export
    checkpoint_uri: /train/ckpt
    checkpoint_every: {every}
    max_steps: {max_steps}
    batch_size: 100
    learning_rate: 0.001
  replicas:
    Worker:
      count: 1
      restartPolicy: OnFailure
  volumes:
    - name: training
      mountPath: /train
      persistentVolumeClaim: tfevent-volume
""")
    jobs, diags = compile_specs([spec])
    assert not diags, [str(d) for d in diags]
    pvc = tmp_path / "volumes" / "tfevent-volume"
    killed: list[int] = []

    def killer() -> None:
        end = time.monotonic() + 120
        while time.monotonic() < end and not (pvc / "ckpt" / "latest").exists():
            time.sleep(0.01)
        pids = runtime_children()
        if len(pids) == 1:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    out = io.StringIO()
    code = run_local(list(jobs[0].objects), volumes_dir=tmp_path / "volumes", work_dir=tmp_path / "run",
                     env=env(), out=out, restart_delay=0.2)
    watcher.join(5)
    text = out.getvalue()
    assert killed, "the replica was not found or the checkpoint never appeared:\n" + text[-3000:]
    assert code == 0, text[-4000:]
    assert "worker-0 exited with code 137; restarting (restartPolicy OnFailure, restart 1)" in text
    metrics = json.loads((pvc / "export" / "metrics.json").read_text())
    assert metrics["steps"] == max_steps
    assert 0 < metrics["resumed_from_step"] < max_steps and metrics["resumed_from_step"] % every == 0
    assert f"resumed from checkpoint /train/ckpt/ckpt-{metrics['resumed_from_step']}/" in text
    assert metrics["weights_checksum"] == checksum(text)
    assert (pvc / "ckpt" / "latest").read_text() == f"ckpt-{max_steps}\n"  # the last step is checkpointed too
    assert sorted(p.name for p in (pvc / "ckpt").iterdir()) == ["ckpt-250", f"ckpt-{max_steps}", "latest"]


# ----------------------------------------------------------------------------- (b) SIGTERM


def test_sigterm_saves_a_checkpoint_exits_143_and_the_rerun_resumes_bitwise(tmp_path):
    max_steps = 200
    ckpt = tmp_path / "ckpt"
    cfg = write_config(tmp_path, "pytorch", export_uri=str(tmp_path / "export"), max_steps=max_steps,
                       checkpoint_uri=str(ckpt), checkpoint_every=50)
    first = Replica(cfg, env(), tmp_path / "w1")
    wait_for(ckpt / "latest", lambda: first.proc.poll() is None)
    first.proc.send_signal(signal.SIGTERM)
    assert first.wait() == ExitCode.TERMINATED == 143, first.output[-3000:]
    last = first.output.strip().splitlines()[-1]
    assert last.startswith("specc-runtime: error: terminated by SIGTERM at step ") and last.endswith("; checkpoint saved")
    stopped = int(last.split(" at step ")[1].split(";")[0])
    assert 50 <= stopped < max_steps
    assert (ckpt / "latest").read_text() == f"ckpt-{stopped}\n"

    rerun = Replica(cfg, env(), tmp_path / "w2")
    assert rerun.wait() == 0, rerun.output[-3000:]
    metrics = json.loads((tmp_path / "export" / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == stopped and metrics["steps"] == max_steps

    # Model, optimizer and RNG state all came back: the same weights as a run never interrupted.
    plain = write_config(tmp_path, "pytorch", name="plain.json", export_uri=None, max_steps=max_steps)
    whole = Replica(plain, env(), tmp_path / "w3")
    assert whole.wait() == 0, whole.output[-3000:]
    assert checksum(whole.output) == checksum(rerun.output) == metrics["weights_checksum"]


def test_sigterm_to_one_rank_stops_both_after_the_same_step(tmp_path):
    port, max_steps = free_port(), 250
    ckpt = tmp_path / "ckpt"
    cfg = write_config(tmp_path, "pytorch", export_uri=str(tmp_path / "export"), max_steps=max_steps,
                       checkpoint_uri=str(ckpt), checkpoint_every=50)
    envs = [env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(r)) for r in range(2)]
    ranks = [Replica(cfg, e, tmp_path / f"r{i}") for i, e in enumerate(envs)]
    wait_for(ckpt / "latest", lambda: all(r.proc.poll() is None for r in ranks))
    ranks[1].proc.send_signal(signal.SIGTERM)  # the worker, not the rank that saves
    codes = [r.wait() for r in ranks]
    assert codes == [143, 143], [r.output[-2000:] for r in ranks]
    lines = [r.output.strip().splitlines()[-1] for r in ranks]
    step = int(lines[1].split(" at step ")[1])
    assert lines[1] == f"specc-runtime: error: terminated by SIGTERM at step {step}"
    assert lines[0] == f"specc-runtime: error: terminated by SIGTERM to another rank at step {step}; checkpoint saved"
    assert (ckpt / "latest").read_text() == f"ckpt-{step}\n"

    ranks = [Replica(cfg, e, tmp_path / f"again{i}") for i, e in enumerate(envs)]
    assert [r.wait() for r in ranks] == [0, 0], [r.output[-2000:] for r in ranks]
    assert all(f"resumed from checkpoint {ckpt}/ckpt-{step}/ at step {step}" in r.output for r in ranks)
    assert checksum(ranks[0].output) == checksum(ranks[1].output)
    metrics = json.loads((tmp_path / "export" / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == step and metrics["steps"] == max_steps and metrics["world_size"] == 2


def _tf_workers(tmp_path: Path, max_steps: int) -> tuple[Path, Path, list[dict]]:
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    ckpt = tmp_path / "ckpt"
    cfg = write_config(tmp_path, "tensorflow", export_uri=None, max_steps=max_steps, checkpoint_uri=str(ckpt),
                       checkpoint_every=50)
    envs = [env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})) for i in range(2)]
    return cfg, ckpt, envs


def test_tensorflow_workers_stop_together(tmp_path):
    """MultiWorkerMirroredStrategy's coordination service puts a C++ SIGTERM handler over Python's;
    the trainer takes it back, so SIGTERM to worker-1 stops both workers after the same step."""
    cfg, ckpt, envs = _tf_workers(tmp_path, 1000)
    workers = [Replica(cfg, e, tmp_path / f"w{i}") for i, e in enumerate(envs)]
    wait_for(ckpt / "latest", lambda: all(w.proc.poll() is None for w in workers), timeout=120)
    workers[1].proc.send_signal(signal.SIGTERM)
    assert [w.wait() for w in workers] == [143, 143], [w.output[-2000:] for w in workers]
    lines = [w.output.strip().splitlines()[-1] for w in workers]
    step = int(lines[1].split(" at step ")[1])
    assert lines == [f"specc-runtime: error: terminated by SIGTERM to another replica at step {step}; checkpoint saved",
                     f"specc-runtime: error: terminated by SIGTERM at step {step}"]
    assert (ckpt / "latest").read_text() == f"ckpt-{step}\n"


@pytest.mark.slow
def test_tensorflow_workers_resume_together_and_a_lost_peer_exits_140(tmp_path):
    cfg, ckpt, envs = _tf_workers(tmp_path, 1000)
    first = [Replica(cfg, e, tmp_path / f"w{i}") for i, e in enumerate(envs)]
    wait_for(ckpt / "latest", lambda: all(w.proc.poll() is None for w in first), timeout=120)
    for w in first:
        w.proc.send_signal(signal.SIGTERM)  # the job deleted: every worker gets SIGTERM
    assert [w.wait() for w in first] == [143, 143], [w.output[-2000:] for w in first]
    step = int((ckpt / "latest").read_text().strip().split("-")[1])

    # Both resume from that step; then worker-1 dies without a word and worker-0 exits retryably.
    workers = [Replica(cfg, e, tmp_path / f"again{i}") for i, e in enumerate(envs)]
    for w in workers:
        w.wait_line(f"resumed from checkpoint {ckpt}/ckpt-{step}/ at step {step}")
    workers[0].wait_line("checkpoint at step ")
    workers[1].proc.kill()
    assert workers[0].wait(timeout=90) == ExitCode.RENDEZVOUS_FAILED == 140, workers[0].output[-3000:]
    assert workers[1].wait() == -signal.SIGKILL
    last = workers[0].output.strip().splitlines()[-1]
    assert last.startswith("specc-runtime: error: lost a peer replica at step ") and "Connection reset by peer" in last


def test_pytorch_lost_peer_exits_140(tmp_path):
    port = free_port()
    ckpt = tmp_path / "ckpt"
    cfg = write_config(tmp_path, "pytorch", export_uri=None, max_steps=3000, checkpoint_uri=str(ckpt), checkpoint_every=50)
    envs = [env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(r)) for r in range(2)]
    ranks = [Replica(cfg, e, tmp_path / f"r{i}") for i, e in enumerate(envs)]
    wait_for(ckpt / "latest", lambda: all(r.proc.poll() is None for r in ranks))
    ranks[1].proc.kill()
    assert ranks[0].wait(timeout=60) == ExitCode.RENDEZVOUS_FAILED == 140, ranks[0].output[-3000:]
    ranks[1].wait()
    last = ranks[0].output.strip().splitlines()[-1]
    assert last.startswith("specc-runtime: error: lost a peer rank at step "), last
    assert "Traceback" not in ranks[0].output


# ----------------------------------------------------------------------------- (c) S3 restarted mid-run


def _objects(server, bucket: str) -> set[str]:
    c = server.client()
    return {o.object_name for o in c.list_objects(bucket, recursive=True)} if c.bucket_exists(bucket) else set()


def test_s3_restarted_between_data_read_and_export(tmp_path, s3):
    """moto keeps objects in memory: the restarted server gets its buckets back from the test, as a
    MinIO pod restarting on its volume would have them. Checkpoints go to S3 too, so saves during
    the outage go through the storage retries."""
    for name in (md.IMAGES_FILE, md.LABELS_FILE):
        put_file(s3, "data", f"mnist/{name}", MNIST / name)
    s3.client().make_bucket("models")
    max_steps = 600
    cfg = write_config(tmp_path, "tensorflow", data_dir="s3://data/mnist/", export_uri="s3://models/faults/1/",
                       checkpoint_uri="s3://models/faults-ckpt", checkpoint_every=100, max_steps=max_steps)
    rep = Replica(cfg, env(**s3.env(), SPECC_STORAGE_BUDGET="20"), tmp_path / "work")
    try:
        rep.wait_line("step 100: train loss")  # data read, training under way, nothing exported
        s3.stop()
        time.sleep(1.0)
    finally:
        s3.start()
        s3.client().make_bucket("models")
    code = rep.wait()
    assert "Traceback" not in rep.output, rep.output[-3000:]
    keys = {k for k in _objects(s3, "models") if k.startswith("faults/")}
    if code == 0:
        assert {"faults/1/saved_model.pb", "faults/1/metrics.json"} <= keys, keys
        assert any(k.startswith("faults/1/variables/") for k in keys), keys
        assert not any(".staging-" in k for k in keys), keys
        metrics = json.loads(s3.client().get_object("models", "faults/1/metrics.json").read())
        assert metrics["steps"] == max_steps and metrics["weights_checksum"] == checksum(rep.output)
    else:
        assert code >= 128, rep.output[-3000:]
        assert not any(k.startswith("faults/1/") for k in keys), keys


@pytest.mark.slow
def test_s3_down_at_export_exits_138_with_one_line(tmp_path, s3):
    for name in (md.IMAGES_FILE, md.LABELS_FILE):
        put_file(s3, "data", f"mnist/{name}", MNIST / name)
    cfg = write_config(tmp_path, "pytorch", data_dir="s3://data/mnist/", export_uri="s3://models/down/1/",
                       max_steps=300)
    rep = Replica(cfg, env(**s3.env(), SPECC_STORAGE_BUDGET="2", SPECC_STORAGE_BACKOFF="0.2"), tmp_path / "work")
    try:
        rep.wait_line("no GPU visible")  # the data is read before the device is picked
        s3.stop()
        code = rep.wait()
    finally:
        s3.start()
    assert code == ExitCode.STORAGE_UNAVAILABLE == 138, rep.output[-3000:]
    assert "Traceback" not in rep.output
    last = rep.output.strip().splitlines()[-1]
    assert last.startswith("specc-runtime: error: ") and "s3://models/down/1/" in last


# ----------------------------------------------------------------------------- (d) rendezvous


@pytest.mark.parametrize("rank", [1, 0], ids=["worker-without-master", "master-without-worker"])
def test_rendezvous_timeout_exits_140(tmp_path, rank):
    port = free_port()
    cfg = write_config(tmp_path, "pytorch", export_uri=None, max_steps=10)
    e = env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
            SPECC_RENDEZVOUS_TIMEOUT="2")
    start = time.monotonic()
    rep = Replica(cfg, e, tmp_path / "work")
    rep.wait_line("joining process group")
    joined = time.monotonic()
    code = rep.wait(timeout=60)
    assert code == ExitCode.RENDEZVOUS_FAILED == 140, rep.output[-3000:]
    assert time.monotonic() - joined < 15, f"took {time.monotonic() - start:.1f}s in all"
    last = rep.output.strip().splitlines()[-1]
    assert last.startswith(f"specc-runtime: error: cannot join the process group at 127.0.0.1:{port} within 2s "
                           f"as rank {rank} of 2: "), last
    assert "Traceback" not in rep.output


@pytest.mark.slow
def test_worker_started_before_its_master_joins_once_the_master_is_up(tmp_path):
    port = free_port()
    cfg = write_config(tmp_path, "pytorch", export_uri=None, max_steps=20)
    envs = [env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(r),
                SPECC_RENDEZVOUS_TIMEOUT="60") for r in range(2)]
    worker = Replica(cfg, envs[1], tmp_path / "w")
    worker.wait_line("joining process group")
    time.sleep(2.0)  # the worker is retrying against a port nobody listens on
    master = Replica(cfg, envs[0], tmp_path / "m")
    assert [master.wait(), worker.wait()] == [0, 0], [master.output[-2000:], worker.output[-2000:]]
    assert checksum(master.output) == checksum(worker.output)


def test_rendezvous_timeout_must_be_positive(monkeypatch):
    from runtime.trainers import mnist_torch

    monkeypatch.delenv(mnist_torch.RENDEZVOUS_TIMEOUT_ENV, raising=False)
    assert mnist_torch.rendezvous_timeout() == 300
    monkeypatch.setenv(mnist_torch.RENDEZVOUS_TIMEOUT_ENV, "2.5")
    assert mnist_torch.rendezvous_timeout() == 2.5
    for bad in ("0", "-1", "soon", "nan", "inf"):
        monkeypatch.setenv(mnist_torch.RENDEZVOUS_TIMEOUT_ENV, bad)
        with pytest.raises(ConfigError, match="must be a positive number of seconds"):
            mnist_torch.rendezvous_timeout()


# ----------------------------------------------------------------------------- edges


def test_checkpoint_every_is_a_positive_step_count():
    from pydantic import ValidationError

    from runtime.config import MnistConfig

    assert MnistConfig().checkpoint_every == 100 and MnistConfig().checkpoint_uri is None
    assert MnistConfig(checkpoint_uri="s3://ckpt/mnist", checkpoint_every=1).checkpoint_every == 1
    for bad in (0, -5):
        with pytest.raises(ValidationError, match="checkpoint_every"):
            MnistConfig(checkpoint_every=bad)
    with pytest.raises(ValidationError, match="checkpoint_uri"):
        MnistConfig(checkpoint_uri="ckpt/relative")


def test_corrupt_checkpoint_exits_1_naming_the_file(tmp_path):
    ckpt = tmp_path / "ckpt"
    (ckpt / "ckpt-50").mkdir(parents=True)
    (ckpt / "ckpt-50" / "state.pt").write_bytes(b"not a torch file")
    (ckpt / "latest").write_text("ckpt-50\n")
    cfg = write_config(tmp_path, "pytorch", export_uri=None, max_steps=100, checkpoint_uri=str(ckpt))
    rep = Replica(cfg, env(), tmp_path / "work")
    assert rep.wait(timeout=60) == 1, rep.output[-3000:]
    assert "Traceback" not in rep.output
    last = rep.output.strip().splitlines()[-1]
    assert last.startswith(f"specc-runtime: error: {ckpt}/ckpt-50/state.pt: cannot restore the checkpoint: "), last
