"""`python -m runtime` as a subprocess: expected failures exit with one line and the right code.

Tests that need a running trainer use tests/runtime_testing_trainer.py, which stands in for the
built-in `income` trainer and then runs the real `runtime.__main__.main`.
Budget: about 25 s on 2 cores (subprocess start-ups), plus one slow test that imports TensorFlow.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, free_port

from runtime.config import IncomeConfig, JobInfo, RecommenderConfig, RuntimeConfig, dump_runtime_config
from runtime.errors import ExitCode

TESTING_TRAINER = Path(__file__).with_name("runtime_testing_trainer.py")


def env(**extra: str) -> dict[str, str]:
    """The caller's environment without AWS_/SPECC_ settings, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPECC_", "TF_CONFIG", "TESTING_"))}
    base.update(SPECC_STORAGE_RETRIES="2", SPECC_STORAGE_BACKOFF="0.05", PYTHONUNBUFFERED="1")
    base.update(extra)
    return base


def write_config(tmp_path: Path, trainer, framework: str = "sklearn") -> Path:
    cfg = RuntimeConfig(job=JobInfo(name="t", framework=framework), trainer=trainer)
    path = tmp_path / "config.json"
    path.write_text(dump_runtime_config(cfg), encoding="utf-8")
    return path


def run_runtime(args: list[str], *, script: Path | None = None, timeout: float = 60, **extra: str):
    cmd = [sys.executable, str(script)] if script else [sys.executable, "-m", "runtime"]
    return subprocess.run([*cmd, *args], cwd=REPO, env=env(**extra), capture_output=True, text=True, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("specc-runtime:")]


def test_missing_config_exits_2_with_one_line(tmp_path):
    missing = tmp_path / "nope.json"
    p = run_runtime(["--config", str(missing)])
    assert p.returncode == ExitCode.BAD_CONFIG == 2
    assert p.stderr.strip().splitlines() == [f"specc-runtime: error: cannot read runtime config {missing}: No such file or directory"]
    assert p.stdout == ""


def test_config_from_environment_variable(tmp_path):
    p = run_runtime([], SPECC_CONFIG=str(tmp_path / "env.json"))
    assert p.returncode == 2 and "env.json" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("text, expected", [
    ("{not json", "config.json: Invalid JSON"),
    ('{"job": {"name": "t", "framework": "sklearn"}, "trainer": {"name": "income", "n_estimators": 0}}',
     "config.json: trainer.income.n_estimators: Input should be greater than or equal to 1"),
    ('{"job": {"name": "t", "framework": "sklearn"}, "trainer": {"name": "income", "data_uri": "ftp://x"}}',
     "config.json: trainer.income.data_uri: must be an s3://bucket/key URI"),
    ('{"job": {"name": "t", "framework": "sklearn"}, "storage": {"endpoint": "minio:9000"}, "trainer": {"name": "income"}}',
     "config.json: storage.endpoint: must be http(s)://host[:port]"),
])
def test_invalid_config_exits_2_naming_the_field(tmp_path, text, expected):
    (tmp_path / "config.json").write_text(text, encoding="utf-8")
    p = run_runtime(["--config", str(tmp_path / "config.json")])
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert lines[0].startswith("specc-runtime: error: ") and expected in lines[0]


def test_storage_down_exits_138(tmp_path):
    """The real `python -m runtime` and built-in income trainer, storage on a closed port."""
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = write_config(tmp_path, IncomeConfig(data_uri="s3://data/income/adult.data"))
    t0 = time.monotonic()
    p = run_runtime(["--config", str(cfg)], AWS_ENDPOINT_URL=dead,
                    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    assert p.returncode == ExitCode.STORAGE_UNAVAILABLE == 138, p.stderr[-2000:]
    assert time.monotonic() - t0 < 30
    assert "Traceback" not in p.stderr
    [line] = error_lines(p.stderr)
    assert line.startswith(f"specc-runtime: error: storage {dead} unavailable (read s3://data/income/adult.data)")
    assert "gave up after 3 attempt(s)" in line


def test_no_endpoint_exits_2(tmp_path):
    cfg = write_config(tmp_path, IncomeConfig(data_uri="s3://data/income/adult.data"))
    p = run_runtime(["--config", str(cfg)], script=TESTING_TRAINER)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    [line] = error_lines(p.stderr)
    assert "no S3 endpoint for s3:// URIs" in line


def test_missing_object_exits_1(tmp_path, s3):
    cfg = write_config(tmp_path, IncomeConfig(data_uri="s3://data/income/adult.data"))
    s3.client().make_bucket("data")
    p = run_runtime(["--config", str(cfg)], script=TESTING_TRAINER, **s3.env())
    assert p.returncode == ExitCode.FAILED and "Traceback" not in p.stderr
    assert error_lines(p.stderr) == [f"specc-runtime: error: object s3://data/income/adult.data not found at {s3.endpoint}"]


def start_and_wait_ready(tmp_path: Path, **extra: str) -> tuple[subprocess.Popen, list[str]]:
    """Start the testing trainer on a local data file; return once it printed 'ready'."""
    (tmp_path / "adult.data").write_text("a,b\n1,2\n", encoding="utf-8")
    cfg = write_config(tmp_path, IncomeConfig(data_uri=str(tmp_path / "adult.data")))
    proc = subprocess.Popen([sys.executable, str(TESTING_TRAINER), "--config", str(cfg)], cwd=REPO,
                            env=env(**extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                line = proc.stderr.readline()
                if not line:
                    break
                seen.append(line.rstrip("\n"))
                if line.strip() == "ready":
                    return proc, seen
    finally:
        sel.close()
    proc.kill()
    proc.wait()
    pytest.fail(f"trainer never became ready: {seen}")


@pytest.mark.parametrize("ignore_stop, message", [
    ("0", "specc-runtime: error: terminated by SIGTERM"),
    ("1", "specc-runtime: error: terminated by SIGTERM (trainer did not stop within 0.5s)"),
])
def test_sigterm_exits_143(tmp_path, ignore_stop, message):
    proc, _ = start_and_wait_ready(tmp_path, TESTING_IGNORE_STOP=ignore_stop, SPECC_STOP_GRACE="0.5")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rest = proc.communicate(timeout=20)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.TERMINATED == 143
    assert time.monotonic() - t0 < 5
    assert "Traceback" not in rest
    assert error_lines(rest) == [message]


def test_trainer_finishes_with_exit_0(tmp_path):
    proc, _ = start_and_wait_ready(tmp_path, TESTING_TRAIN_SECONDS="0.1")
    err = proc.communicate(timeout=20)[1]
    assert proc.returncode == 0, err
    assert "done: {'rows': 2" in err and not error_lines(err)


@pytest.mark.slow
def test_real_trainer_storage_down_exits_138(tmp_path):
    """The real `python -m runtime` + built-in recommender (imports TensorFlow first)."""
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = write_config(tmp_path, RecommenderConfig(export_directory="r"), framework="tensorflow")
    p = run_runtime(["--config", str(cfg)], timeout=300, AWS_ENDPOINT_URL=dead,
                    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    assert p.returncode == 138, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    [line] = error_lines(p.stderr)
    assert f"storage {dead} unavailable" in line and "s3://data/recommender/users.csv" in line


@pytest.mark.parametrize(("modules", "world", "expected"), [
    ({"torch"}, "2", True),          # gloo threads may abort in C++ teardown after destroy_process_group
    ({"torch"}, "1", True),
    ({"tensorflow"}, "1", True),     # a single TF process skips TensorFlow's teardown
    ({"tensorflow"}, "2", False),    # MWMS: the coordination service shuts down in the normal exit
    ({"tensorflow", "torch"}, "2", False),
    (set(), "1", False),             # plain Python (income): an ordinary exit
])
def test_which_replicas_skip_interpreter_teardown(monkeypatch, modules, world, expected):
    import runtime.__main__ as entry

    for name in ("tensorflow", "torch"):
        if name in modules:
            monkeypatch.setitem(sys.modules, name, object())
        else:
            monkeypatch.delitem(sys.modules, name, raising=False)
    for key in ("TF_CONFIG", "WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    if world != "1":
        monkeypatch.setenv("WORLD_SIZE", world)
        monkeypatch.setenv("RANK", "1")
        monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
        monkeypatch.setenv("MASTER_PORT", "29500")
    assert entry._leave_at_once() is expected
