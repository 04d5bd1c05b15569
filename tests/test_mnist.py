"""MNIST data and trainers (budget: about 5 minutes on 2 cores, the two `specc run --local` book jobs included).

Fast: idx parsing and corrupt files, the seeded split, the per-replica batch schedule, a corrupt
file through `python -m runtime`. Training (marked `train`): real `python -m runtime` processes on
the shared MNIST files - one TensorFlow worker exporting to the moto S3 server, two TensorFlow
workers under TF_CONFIG, a PyTorch Master + Worker with the operator's env - each asserting
>= 95% on the held-out 2,000 images and, for two replicas, bitwise-equal final weights.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtime import mnist_data as md
from runtime.errors import ConfigError, DataError
from tests.conftest import DATA, REPO, free_port, put_file

MNIST = DATA / "mnist"
PY = sys.executable
FINAL_RE = re.compile(r"replica (\S+) final: test accuracy ([0-9.]+), weights checksum ([0-9a-f]{16})")
#: Training settings for the runs here. On an 8,000-image training split this network peaks near
#: 96%: with the book's TFJob flags (learning_rate 0.01, batch_size 150) test accuracy swings between
#: about 94% and 96% from one evaluation to the next (below 95% at step 1000 for split seed 2), while
#: the script's default learning rate 0.001 stays at 95.4-95.7% over steps 800-1000 for seeds 0-2.
TRAIN = {"learning_rate": 0.001, "batch_size": 150, "max_steps": 1000}


def idx_bytes(arr: np.ndarray, kind: int = 0x08) -> bytes:
    head = bytes([0, 0, kind, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(md._IDX_TYPES[kind]).tobytes()


# ----------------------------------------------------------------------------- idx + split


def test_parse_idx_raw_and_gzip():
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for data in (idx_bytes(a), gzip.compress(idx_bytes(a))):
        out = md.parse_idx(data, "a.idx")
        assert out.shape == (2, 3, 4) and out.dtype == np.uint8 and (out == a).all()
    i = np.array([[-5, 70000]], dtype=np.int32)
    assert (md.parse_idx(idx_bytes(i, 0x0C), "i.idx") == i).all()


def test_real_mnist_files():
    x, y = md.read_mnist_dir(MNIST)
    assert x.shape == (10_000, 784) and x.dtype == np.float32 and y.shape == (10_000,)
    assert 0.0 <= x.min() and x.max() == 1.0
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("mangle, message", [
    (lambda raw: gzip.compress(raw)[:-200], "corrupt or truncated gzip"),
    (lambda raw: gzip.compress(raw[:-100]), "truncated: dimensions 3x28x28 need 2352 data bytes, file has 2252"),
    (lambda raw: gzip.compress(raw[:10]), "truncated idx header"),
    (lambda raw: gzip.compress(raw + b"\0"), "1 unexpected bytes after the 2352 data bytes"),
    (lambda raw: gzip.compress(b"\x12\x34" + raw[2:]), "not an idx file (magic 1234"),
    (lambda raw: gzip.compress(raw[:2] + b"\x07" + raw[3:]), "unknown idx element type 0x07"),
    (lambda raw: b"\x1f\x8bnot gzip at all", "corrupt or truncated gzip"),
    (lambda raw: b"", "too short for an idx header"),
])
def test_corrupt_idx_names_the_file(tmp_path, mangle, message):
    raw = idx_bytes(np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8))  # incompressible
    f = tmp_path / md.IMAGES_FILE
    f.write_bytes(mangle(raw))
    with pytest.raises(DataError) as err:
        md.read_idx(f)
    assert str(err.value).startswith(f"{f}: ") and message in str(err.value)


def test_images_and_labels_must_agree(tmp_path):
    images, labels = np.zeros((3, 28, 28), np.uint8), np.array([1, 2], np.uint8)
    with pytest.raises(DataError, match="labels.idx: 2 labels for 3 images in images.idx"):
        md.load_mnist(images, labels, "images.idx", "labels.idx")
    with pytest.raises(DataError, match="label 12 is not a digit"):
        md.load_mnist(images, np.array([1, 2, 12], np.uint8), "images.idx", "labels.idx")
    with pytest.raises(DataError, match="N x 28 x 28"):
        md.load_mnist(np.zeros((3, 28, 27), np.uint8), labels, "images.idx", "labels.idx")


def test_split_is_seeded_and_disjoint():
    x = np.arange(100, dtype=np.float32)[:, None]
    y = np.arange(100)
    a, b, c = md.split(x, y, 70, 20, 0), md.split(x, y, 70, 20, 0), md.split(x, y, 70, 20, 1)
    assert (a.y_train == b.y_train).all() and (a.y_test == b.y_test).all()
    assert not (a.y_train == c.y_train).all()
    assert len(a.y_train) == 70 and len(a.y_test) == 20
    assert not set(a.y_train) & set(a.y_test)
    assert (a.x_train[:, 0] == a.y_train).all()  # rows stay paired with their labels
    with pytest.raises(ConfigError, match="train_rows 90 \\+ test_rows 20 exceed the 100 images"):
        md.split(x, y, 90, 20, 0)


def test_batch_schedule_shards_each_step():
    n, bs, world = 1000, 30, 3
    scheds = [md.BatchSchedule(n, bs, r, world, 7) for r in range(world)]
    again = md.BatchSchedule(n, bs, 1, world, 7)
    assert scheds[0].steps_per_epoch == 11
    seen = []
    for step in range(11):
        parts = [s.indices(step) for s in scheds]
        assert all(len(p) == bs for p in parts)
        seen.extend(np.concatenate(parts))
        assert (again.indices(step) == parts[1]).all()
    assert len(set(seen)) == 11 * bs * world  # no row twice within an epoch
    assert not (scheds[0].indices(11) == scheds[0].indices(0)).all()  # a new permutation per epoch
    with pytest.raises(ConfigError, match="batch_size 600 x 2 replica"):
        md.BatchSchedule(1000, 600, 0, 2, 0)


def test_weights_checksum_is_bitwise():
    a = [np.ones((2, 2), np.float32), np.zeros(3, np.float32)]
    b = [np.ones((2, 2), np.float32), np.zeros(3, np.float32)]
    assert md.weights_checksum(a) == md.weights_checksum(b)
    b[1][0] = np.nextafter(np.float32(0), np.float32(1))
    assert md.weights_checksum(a) != md.weights_checksum(b)


@pytest.mark.parametrize("files, want", [
    ({"cpu.max": "50000 100000\n"}, 1),  # a pod limit of 500m
    ({"cpu.max": "max 100000\n"}, None),  # no limit: the CPU affinity
    ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1, 1 CPU
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cpu_limit_reads_the_cgroup_quota(tmp_path, files, want):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    assert md.cpu_limit(tmp_path) == (want or len(os.sched_getaffinity(0)))


def test_tf_config_master_becomes_chief(monkeypatch):
    from runtime.context import task_from_env
    from runtime.trainers.mnist import _use_chief_name

    doc = {"cluster": {"master": ["m:2222"], "worker": ["w0:2222", "w1:2222"]}, "task": {"type": "master", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(doc))
    task = task_from_env()
    _use_chief_name(task)
    got = json.loads(os.environ["TF_CONFIG"])
    assert got["cluster"] == {"chief": ["m:2222"], "worker": ["w0:2222", "w1:2222"]}
    assert got["task"] == {"type": "chief", "index": 0} and task.rank == 0 and task.world_size == 3
    doc["cluster"]["ps"] = ["p:2222"]
    monkeypatch.setenv("TF_CONFIG", json.dumps(doc))
    with pytest.raises(ConfigError, match="ps replicas"):
        _use_chief_name(task_from_env())


def test_evaluator_replica_is_refused_before_tensorflow_loads(monkeypatch):
    from types import SimpleNamespace

    from runtime.config import RuntimeConfig
    from runtime.context import task_from_env
    from runtime.trainers import mnist

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["w:1"], "evaluator": ["e:1"]},
                                                "task": {"type": "evaluator", "index": 0}}))
    cfg = RuntimeConfig.model_validate({"job": {"name": "m", "framework": "tensorflow"}, "trainer": {"name": "mnist"}})
    with pytest.raises(ConfigError, match="replica evaluator-0 does not train"):
        mnist.run(cfg, SimpleNamespace(task=task_from_env(), storage=None))


# ----------------------------------------------------------------------------- runtime processes


def config(tmp_path: Path, framework: str, **trainer) -> Path:
    doc = {"job": {"name": "mnist", "namespace": "test", "framework": framework},
           "trainer": {"name": "mnist", "data_dir": MNIST.as_uri(), "log_dir": str(tmp_path / "logs"),
                       "export_uri": None, **TRAIN, **trainer}}
    path = tmp_path / f"config-{framework}.json"
    path.write_text(json.dumps(doc))
    return path


def env(**extra) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")}
    e.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=str(REPO))
    e.update(extra)
    return e


def run_replicas(cfg: Path, envs: list[dict], timeout: float = 240) -> list[tuple[int, str]]:
    """Start one `python -m runtime` per env at once; return (exit code, stderr+stdout) each."""
    procs = [subprocess.Popen([PY, "-m", "runtime", "--config", str(cfg), "--work-dir", str(cfg.parent / f"work{i}")],
                              cwd=REPO, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, e in enumerate(envs)]
    out = []
    try:
        for p in procs:
            text, _ = p.communicate(timeout=timeout)
            out.append((p.returncode, text))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return out


def finals(results: list[tuple[int, str]]) -> list[tuple[str, float, str]]:
    """(replica, final test accuracy, weights checksum) from each replica's log; all exited 0."""
    got = []
    for code, text in results:
        assert code == 0, text[-3000:]
        m = FINAL_RE.search(text)
        assert m, text[-3000:]
        got.append((m.group(1), float(m.group(2)), m.group(3)))
    return got


def scalars(folder: Path) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} from the TensorBoard event files in a folder, read by TensorFlow."""
    import tensorflow as tf

    out: dict[str, dict[int, float]] = {}
    for f in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(f)):
            for v in event.summary.value:
                assert v.metadata.plugin_data.plugin_name == "scalars"
                out.setdefault(v.tag, {})[event.step] = float(tf.make_ndarray(v.tensor))
    return out


def test_corrupt_data_exits_1_with_one_line(tmp_path):
    (tmp_path / md.IMAGES_FILE).write_bytes((MNIST / md.IMAGES_FILE).read_bytes()[:5000])
    shutil.copy(MNIST / md.LABELS_FILE, tmp_path)
    cfg = config(tmp_path, "tensorflow", data_dir=str(tmp_path))
    [(code, text)] = run_replicas(cfg, [env()], timeout=60)
    assert code == 1
    assert "Traceback" not in text
    assert text.strip().splitlines()[-1] == (
        f"specc-runtime: error: {tmp_path / md.IMAGES_FILE}: corrupt or truncated gzip data "
        "(Compressed file ended before the end-of-stream marker was reached)")


@pytest.mark.train
def test_tensorflow_single_worker_exports_to_s3(tmp_path, s3):
    s3.client().make_bucket("models")
    cfg = config(tmp_path, "tensorflow", export_uri="s3://models/mnist/1/")
    results = run_replicas(cfg, [env(**s3.env())])
    [(name, acc, checksum)] = finals(results)
    assert name == "worker-0" and acc >= 0.95
    assert "no GPU visible: running on CPU" in results[0][1] or "using GPU: " in results[0][1]
    c = s3.client()
    keys = {o.object_name for o in c.list_objects("models", prefix="mnist/1/", recursive=True)}
    assert {"mnist/1/saved_model.pb", "mnist/1/metrics.json"} <= keys
    assert any(k.startswith("mnist/1/variables/") for k in keys)
    metrics = json.loads(c.get_object("models", "mnist/1/metrics.json").read())
    assert metrics["test_accuracy"] >= 0.95 and metrics["weights_checksum"] == checksum
    assert metrics["world_size"] == 1 and metrics["steps"] == TRAIN["max_steps"]
    assert metrics["samples_per_s"] > 0 and 0 < metrics["step_to_target"] <= TRAIN["max_steps"]
    # Every 10th step, loss and accuracy for the training batch and the held-out rows.
    want_steps = set(range(10, TRAIN["max_steps"] + 1, 10))
    for split in ("train", "test"):
        tags = scalars(tmp_path / "logs" / split)
        assert set(tags) == {"loss", "accuracy"}
        assert set(tags["loss"]) == set(tags["accuracy"]) == want_steps
    assert scalars(tmp_path / "logs" / "test")["accuracy"][TRAIN["max_steps"]] == pytest.approx(metrics["test_accuracy"], abs=1e-5)


@pytest.mark.train
def test_tensorflow_two_workers_train_together(tmp_path):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    export = tmp_path / "export"
    cfg = config(tmp_path, "tensorflow", export_uri=str(export))
    envs = [env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}, "environment": "cloud"}))
            for i in range(2)]
    results = run_replicas(cfg, envs)
    got = finals(results)
    assert [g[0] for g in got] == ["worker-0", "worker-1"]
    assert got[0][2] == got[1][2], "replicas ended with different weights"
    assert all(acc >= 0.95 for _, acc, _ in got)
    metrics = json.loads((export / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_batch_size"] == 2 * TRAIN["batch_size"]
    assert metrics["weights_checksum"] == got[0][2]
    assert (export / "saved_model.pb").is_file()
    assert "exported SavedModel" in results[0][1] and "exported" not in results[1][1]
    assert len(list((tmp_path / "logs" / "test").glob("events.out.tfevents.*"))) == 1  # the chief's alone


@pytest.mark.train
def test_pytorch_master_and_worker_train_together(tmp_path, s3):
    s3.client().make_bucket("models")
    port = free_port()
    cfg = config(tmp_path, "pytorch", export_uri="s3://models/pytorch-mnist/1/")
    envs = [env(**s3.env(), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(r))
            for r in range(2)]
    results = run_replicas(cfg, envs)
    got = finals(results)
    assert [g[0] for g in got] == ["master-0", "worker-0"]
    assert got[0][2] == got[1][2], "replicas ended with different weights"
    assert all(acc >= 0.95 for _, acc, _ in got)
    assert "(gloo)" in results[0][1]
    c = s3.client()
    keys = {o.object_name for o in c.list_objects("models", prefix="pytorch-mnist/1/", recursive=True)}
    assert keys == {"pytorch-mnist/1/model.pt", "pytorch-mnist/1/metrics.json"}
    metrics = json.loads(c.get_object("models", "pytorch-mnist/1/metrics.json").read())
    assert metrics["framework"] == "pytorch" and metrics["world_size"] == 2
    assert metrics["weights_checksum"] == got[0][2] and metrics["test_accuracy"] >= 0.95


@pytest.mark.train
def test_gpu_check_needs_only_torch_and_numpy(tmp_path):
    # Make the packages the GPU machine will not have look absent (a None entry in sys.modules is
    # what `import` and importlib.util.find_spec treat as "not installed"), then run the script.
    blocker = (
        "import sys, runpy\n"
        "for name in ('tensorflow', 'tf_keras', 'keras', 'tensorboard', 'pydantic', 'minio'):\n"
        "    sys.modules[name] = None\n"
        f"sys.argv = ['gpu_check.py', {str(MNIST)!r}, '--steps', '300']\n"
        f"runpy.run_path({str(REPO / 'bench' / 'gpu_check.py')!r}, run_name='__main__')\n"
        "assert not {'runtime.config', 'runtime.storage'} & set(sys.modules)\n"
    )
    out = subprocess.run([PY, "-c", blocker], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["device"] == ("cpu" if not result["cuda"] else result["device"])
    assert result["steps"] == 300 and result["steps_per_s"] > 0 and result["test_accuracy"] >= 0.9


# ----------------------------------------------------------------------------- specc run --local


def _specc_run(spec: str, tmp_path: Path, s3) -> subprocess.CompletedProcess:
    for name in (md.IMAGES_FILE, md.LABELS_FILE):
        put_file(s3, "data", f"mnist/{name}", MNIST / name)
    s3.client().make_bucket("models")
    specc = Path(PY).parent / "specc"
    return subprocess.run([str(specc), "run", spec, "--local", "--work-dir", str(tmp_path / "run")], cwd=REPO,
                          env=env(**s3.env()), capture_output=True, text=True, timeout=600)


@pytest.mark.train
@pytest.mark.parametrize("spec, prefix, replicas", [
    ("specs/mnist.yaml", "mnist/1/", 2),
    ("specs/pytorch-mnist.yaml", "pytorch-mnist/1/", 2),
])
def test_specc_run_local(tmp_path, s3, spec, prefix, replicas):
    out = _specc_run(spec, tmp_path, s3)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    text = out.stdout + out.stderr
    sums = {m.group(3) for m in FINAL_RE.finditer(text)}
    assert len(FINAL_RE.findall(text)) == replicas and len(sums) == 1, text[-4000:]
    metrics = json.loads(s3.client().get_object("models", prefix + "metrics.json").read())
    assert metrics["world_size"] == replicas and metrics["weights_checksum"] in sums
    assert metrics["test_accuracy"] >= 0.95, metrics
