"""runtime.storage against a real S3 server (moto_server on loopback) and the local filesystem.

Budget: about 20 s on 2 cores (two moto servers, a few short retry loops).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, S3Server, free_port, put_bytes

from runtime.config import StorageConfig
from runtime.errors import ConfigError, DataError, ExitCode, StorageError, StorageUnavailable
from runtime.storage import RetryPolicy, Storage, commit_order, local_path, resolve_endpoint, split_s3_uri


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No ambient AWS/SPECC settings; small retry settings so failures come fast."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "SPECC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SPECC_STORAGE_RETRIES", "2")
    monkeypatch.setenv("SPECC_STORAGE_BACKOFF", "0.05")


@pytest.fixture
def st(s3, monkeypatch) -> Storage:
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    return Storage.from_config(StorageConfig())


def dead_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}"


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "saved_model.pb": b"graph",
        "variables/variables.index": b"index",
        "variables/variables.data-00000-of-00001": os.urandom(2048),
        "assets/vocab.txt": "ünïcode\n".encode(),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


# ----------------------------------------------------------------------------- round trips

def test_s3_round_trip(st, s3, tmp_path):
    put_bytes(s3, "data", "seed.txt", b"x")
    st.write_bytes("s3://data/dir/a.txt", b"alpha\n")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    st.upload_file(tmp_path / "b.bin", "s3://data/dir/sub/b.bin")

    assert st.read_bytes("s3://data/dir/a.txt") == b"alpha\n"
    assert st.read_text("s3://data/dir/a.txt") == "alpha\n"
    assert st.list("s3://data/dir") == ["s3://data/dir/a.txt", "s3://data/dir/sub/b.bin"]
    assert st.list("s3://data/di") == []  # a prefix is a folder, not a string prefix
    assert st.exists("s3://data/dir/a.txt") and st.exists("s3://data/dir") and st.exists("s3://data/dir/")
    assert not st.exists("s3://data/dir/zzz") and not st.exists("s3://nobucket/x")

    local = st.local_file("s3://data/dir/sub/b.bin")
    assert local.read_bytes() == b"\x00\x01" and local.name == "b.bin"
    got = st.download_dir("s3://data/dir/", tmp_path / "dl")
    assert sorted(p.relative_to(tmp_path / "dl").as_posix() for p in got) == ["a.txt", "sub/b.bin"]
    assert (tmp_path / "dl/sub/b.bin").read_bytes() == b"\x00\x01"


@pytest.mark.parametrize("style", ["plain", "file", "relative"])
def test_local_round_trip(style, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = {"plain": str(tmp_path / "root"), "file": f"file://{tmp_path}/root", "relative": "root"}[style]
    st = Storage.from_config(StorageConfig())  # no endpoint: fine for local URIs

    st.write_bytes(f"{base}/dir/a.txt", b"alpha\n")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    st.upload_file(tmp_path / "b.bin", f"{base}/dir/sub/b.bin")

    assert (tmp_path / "root/dir/a.txt").read_bytes() == b"alpha\n"
    assert st.read_text(f"{base}/dir/a.txt") == "alpha\n"
    assert st.list(f"{base}/dir") == [f"{base}/dir/a.txt", f"{base}/dir/sub/b.bin"]
    assert st.list(f"{base}/missing") == []
    assert st.exists(f"{base}/dir/a.txt") and not st.exists(f"{base}/dir/zzz")
    assert st.local_file(f"{base}/dir/sub/b.bin").read_bytes() == b"\x00\x01"
    got = st.download_dir(f"{base}/dir", tmp_path / "dl")
    assert sorted(p.relative_to(tmp_path / "dl").as_posix() for p in got) == ["a.txt", "sub/b.bin"]
    with pytest.raises(StorageError, match="not found"):
        st.local_file(f"{base}/dir/zzz")
    with pytest.raises(StorageError, match="nothing under"):
        st.download_dir(f"{base}/missing", tmp_path / "dl2")
    assert not list((tmp_path / "root/dir").glob(".*"))  # atomic writes leave no temp files


def test_read_text_rejects_bad_utf8(tmp_path):
    (tmp_path / "bad.csv").write_bytes(b"ok\nfine\nbad \xff here\n")
    with pytest.raises(DataError) as err:
        Storage().read_text(str(tmp_path / "bad.csv"))
    assert str(err.value).startswith(f"{tmp_path / 'bad.csv'}:3: not UTF-8")
    assert err.value.code == ExitCode.FAILED


# ----------------------------------------------------------------------------- endpoint + config

def test_endpoint_precedence(s3, monkeypatch):
    cfg = StorageConfig(endpoint=dead_endpoint())
    env_url = dead_endpoint()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    put_bytes(s3, "data", "k", b"v")

    assert resolve_endpoint(cfg.endpoint, {}) == (cfg.endpoint, "storage.endpoint")
    monkeypatch.setenv("AWS_ENDPOINT_URL", env_url)
    assert Storage.from_config(cfg).endpoint == env_url
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
    assert Storage.from_config(cfg).read_bytes("s3://data/k") == b"v"  # _S3 wins over both dead ones

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    with pytest.raises(StorageUnavailable, match=f"storage {env_url} unavailable"):
        Storage.from_config(cfg).read_bytes("s3://data/k")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    with pytest.raises(StorageUnavailable, match=f"storage {cfg.endpoint} unavailable"):
        Storage.from_config(cfg).read_bytes("s3://data/k")


def test_region_from_config_or_environment(monkeypatch):
    assert Storage.from_config(StorageConfig()).region == "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert Storage.from_config(StorageConfig()).region == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    assert Storage.from_config(StorageConfig()).region == "eu-north-1"
    assert Storage.from_config(StorageConfig(region="ap-south-1")).region == "ap-south-1"


def test_no_endpoint_is_a_config_error(tmp_path):
    st = Storage.from_config(StorageConfig())
    with pytest.raises(ConfigError, match="no S3 endpoint.*AWS_ENDPOINT_URL") as err:
        st.read_bytes("s3://data/x")
    assert err.value.code == ExitCode.BAD_CONFIG
    (tmp_path / "f").write_bytes(b"1")
    assert st.read_bytes(str(tmp_path / "f")) == b"1"


@pytest.mark.parametrize("value", ["ftp://host:21", "http://", "http://host:99999", "http://host/path"])
def test_bad_endpoint_value(monkeypatch, value):
    monkeypatch.setenv("AWS_ENDPOINT_URL", value)
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL="):
        Storage.from_config(StorageConfig())


def test_half_credentials_is_a_config_error(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "only-the-id")
    with pytest.raises(ConfigError, match="both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        Storage.from_config(StorageConfig())


# ----------------------------------------------------------------------------- permanent errors

def test_missing_bucket_and_key(st, s3):
    put_bytes(s3, "data", "present", b"1")
    with pytest.raises(StorageError, match=f"bucket 'nobucket' does not exist at {s3.endpoint}") as err:
        st.read_bytes("s3://nobucket/x")
    assert err.value.code == ExitCode.FAILED
    with pytest.raises(StorageError, match="object s3://data/absent not found"):
        st.read_bytes("s3://data/absent")
    with pytest.raises(StorageError, match="object s3://data/absent not found"):
        st.local_file("s3://data/absent")
    with pytest.raises(StorageError, match="bucket 'nobucket' does not exist"):
        st.write_bytes("s3://nobucket/x", b"1")
    with pytest.raises(StorageError, match="nothing under s3://data/void/"):
        st.download_dir("s3://data/void/", "/tmp/never-created-by-specc")


@pytest.mark.parametrize("uri", ["s3://", "s3://ab/x", "s3://Bad_Bucket/x", "s3://data/a/../b", "s3://data/", "gs://bucket/x"])
def test_malformed_uris(st, uri):
    with pytest.raises(StorageError, match="malformed URI|unsupported URI"):
        st.read_bytes(uri)


@pytest.fixture(scope="module")
def auth_server():
    """A moto server that checks credentials (moto's default accepts any; this turns IAM on).

    INITIAL_NO_AUTH_ACTION_COUNT=3 lets the three IAM calls that create a user with an
    s3:* policy and an access key through; every later request must be signed by that key.
    """
    import boto3

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3")
        server = S3Server().start()
    try:
        iam = boto3.client("iam", endpoint_url=server.endpoint, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="trainer")
        iam.put_user_policy(UserName="trainer", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="trainer")["AccessKey"]
        yield server, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        server.stop()


def test_rejected_credentials(auth_server):
    server, key_id, secret = auth_server
    good = Storage(server.endpoint, access_key=key_id, secret_key=secret)
    good.client.make_bucket("data")
    good.write_bytes("s3://data/k", b"v")
    assert good.read_bytes("s3://data/k") == b"v"

    for ak, sk, code in [("AKIANOSUCHKEY0000000", secret, "InvalidAccessKeyId"), (key_id, "wrong-secret", "SignatureDoesNotMatch")]:
        bad = Storage(server.endpoint, access_key=ak, secret_key=sk)
        with pytest.raises(StorageError) as err:
            bad.read_bytes("s3://data/k")
        msg = str(err.value)
        assert msg.startswith(f"credentials rejected by {server.endpoint}: {code}:")
        assert msg.endswith("check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
        assert err.value.code == ExitCode.FAILED


# ----------------------------------------------------------------------------- transient errors

def test_storage_down_gives_up_fast():
    st = Storage.from_config(StorageConfig(endpoint=(url := dead_endpoint())))
    t0 = time.monotonic()
    with pytest.raises(StorageUnavailable) as err:
        st.read_bytes("s3://data/x")
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0
    msg = str(err.value)
    assert msg.startswith(f"storage {url} unavailable (read s3://data/x): ")
    assert "Connection refused" in msg and "gave up after 3 attempt(s)" in msg
    assert err.value.code == ExitCode.STORAGE_UNAVAILABLE == 138


def test_default_retry_policy_is_bounded():
    p = RetryPolicy.from_env({})
    assert (p.retries, p.backoff, p.budget) == (4, 0.5, 15.0)
    worst = sum(min(p.max_delay, p.backoff * 2 ** (n - 1)) for n in range(1, p.retries + 1))
    assert worst < p.budget < 16
    assert all(p.delay(n) <= p.max_delay for n in range(1, 20))
    with pytest.raises(ConfigError, match="SPECC_STORAGE_RETRIES"):
        RetryPolicy.from_env({"SPECC_STORAGE_RETRIES": "many"})


def test_retries_until_the_server_comes_up(monkeypatch):
    monkeypatch.setenv("SPECC_STORAGE_RETRIES", "12")
    monkeypatch.setenv("SPECC_STORAGE_BACKOFF", "0.2")
    server = S3Server()
    st = Storage(server.endpoint, access_key="testing", secret_key="testing", retry=RetryPolicy.from_env())
    starter = threading.Timer(0.3, server.start)
    starter.start()
    try:
        assert st.exists("s3://data/x") is False  # first attempts are refused, a later one answers
    finally:
        starter.join()
        server.stop()


class _FlakyS3(http.server.BaseHTTPRequestHandler):
    """Answers the first `failures` requests with S3's 503 SlowDown, then serves b'payload'."""

    failures = 0
    seen = 0

    def do_GET(self):  # noqa: N802
        type(self).seen += 1
        if type(self).seen <= type(self).failures:
            body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                    b"<Message>Please reduce your request rate.</Message></Error>")
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
        else:
            body = b"payload"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("failures, outcome", [(2, "payload"), (99, "unavailable")])
def test_slowdown_is_retried(failures, outcome):
    handler = type("Flaky", (_FlakyS3,), {"failures": failures, "seen": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        st = Storage(f"http://127.0.0.1:{httpd.server_port}", access_key="a", secret_key="b",
                     retry=RetryPolicy(retries=3, backoff=0.02))
        if outcome == "payload":
            assert st.read_bytes("s3://data/k") == b"payload"
            assert handler.seen == 3
        else:
            with pytest.raises(StorageUnavailable, match="SlowDown \\(HTTP 503\\).*gave up after 4 attempt"):
                st.read_bytes("s3://data/k")
            assert handler.seen == 4  # urllib3 inside minio did not retry on its own
    finally:
        httpd.shutdown()
        httpd.server_close()


# ----------------------------------------------------------------------------- publish_dir

def test_publish_s3_whole_tree(st, s3, tmp_path):
    put_bytes(s3, "models", "other/keep", b"1")
    files = make_tree(tmp_path / "m")
    assert st.publish_dir(tmp_path / "m", "s3://models/mnist/1/") == "s3://models/mnist/1/"
    assert st.list("s3://models/mnist/1") == sorted(f"s3://models/mnist/1/{r}" for r in files)
    for rel, data in files.items():
        assert st.read_bytes(f"s3://models/mnist/1/{rel}") == data
    assert st.list("s3://models/") == sorted([*(f"s3://models/mnist/1/{r}" for r in files), "s3://models/other/keep"])

    with pytest.raises(StorageError, match="s3://models/mnist/1 already exists"):
        st.publish_dir(tmp_path / "m", "s3://models/mnist/1")
    (tmp_path / "m/assets/vocab.txt").unlink()
    (tmp_path / "m/saved_model.pb").write_bytes(b"graph v2")
    st.publish_dir(tmp_path / "m", "s3://models/mnist/1", overwrite=True)
    assert "s3://models/mnist/1/assets/vocab.txt" not in st.list("s3://models/mnist/1")
    assert st.read_bytes("s3://models/mnist/1/saved_model.pb") == b"graph v2"
    assert len(st.list("s3://models/")) == len(files)  # 3 new + other/keep, no staging left


def test_commit_markers_are_copied_last():
    names = ["saved_model.pb", "variables/v.index", "a/saved_model.pb", "z.txt", "assets/x"]
    assert commit_order(names) == ["assets/x", "variables/v.index", "z.txt", "a/saved_model.pb", "saved_model.pb"]


def test_publish_s3_failure_leaves_nothing(st, s3, tmp_path):
    put_bytes(s3, "models", "other/keep", b"1")
    make_tree(tmp_path / "m")
    # A file that vanishes between listing and upload: sorted last, so the others are staged first.
    (tmp_path / "m/zz-vanished.bin").symlink_to(tmp_path / "gone")
    with pytest.raises(StorageError, match="zz-vanished.bin"):
        st.publish_dir(tmp_path / "m", "s3://models/mnist/1/")
    assert st.list("s3://models/") == ["s3://models/other/keep"]  # no final objects, no staging


def test_publish_s3_storage_down(tmp_path):
    make_tree(tmp_path / "m")
    st = Storage(dead_endpoint(), retry=RetryPolicy(retries=1, backoff=0.01))
    with pytest.raises(StorageUnavailable):
        st.publish_dir(tmp_path / "m", "s3://models/mnist/1/")


def test_publish_local_is_atomic(tmp_path):
    st = Storage()
    files = make_tree(tmp_path / "m")
    final = tmp_path / "out/mnist/1"
    st.publish_dir(tmp_path / "m", str(final))
    assert {p.relative_to(final).as_posix(): p.read_bytes() for p in final.rglob("*") if p.is_file()} == files
    assert sorted(p.name for p in final.parent.iterdir()) == ["1"]  # staging dir renamed away

    with pytest.raises(StorageError, match="already exists"):
        st.publish_dir(tmp_path / "m", f"file://{final}")

    # A failure while copying leaves the published version untouched and no staging behind.
    (tmp_path / "m/saved_model.pb").write_bytes(b"graph v2")
    (tmp_path / "m/zz-vanished.bin").symlink_to(tmp_path / "gone")
    with pytest.raises(StorageError, match="zz-vanished.bin"):
        st.publish_dir(tmp_path / "m", str(final), overwrite=True)
    assert (final / "saved_model.pb").read_bytes() == b"graph"
    assert sorted(p.name for p in final.parent.iterdir()) == ["1"]

    (tmp_path / "m/zz-vanished.bin").unlink()
    st.publish_dir(tmp_path / "m", str(final), overwrite=True)
    assert (final / "saved_model.pb").read_bytes() == b"graph v2"
    assert sorted(p.name for p in final.parent.iterdir()) == ["1"]

    empty = tmp_path / "out/mnist/2"
    empty.mkdir()
    st.publish_dir(tmp_path / "m", str(empty))  # an empty target folder is replaced
    assert (empty / "saved_model.pb").exists()


def test_publish_refuses_bad_sources(tmp_path):
    with pytest.raises(StorageError, match="not a folder"):
        Storage().publish_dir(tmp_path / "missing", str(tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(StorageError, match="holds no files"):
        Storage().publish_dir(tmp_path / "empty", str(tmp_path / "out"))


# ----------------------------------------------------------------------------- SPECC_PATH_MAP

@pytest.mark.parametrize("given, expected", [
    ("/train/logs/train", "VOL/logs/train"),
    ("/train", "VOL"),
    ("/train/", "VOL"),
    ("file:///train/logs", "VOL/logs"),
    ("file://localhost/train/a%20b", "VOL/a b"),
    ("/training/logs", "/training/logs"),  # only whole path components match
    ("/trai", "/trai"),
    ("/data/mnist/x.gz", "MNIST/x.gz"),  # longest mount wins
    ("/data/mnistx/y", "DATA/mnistx/y"),
    ("/data", "DATA"),
    ("/train/../etc/passwd", "/etc/passwd"),  # '..' resolved before mapping, never escapes VOL
    ("//train//logs", "VOL/logs"),
    ("relative/train", "relative/train"),
    ("/etc/specc/config.json", "/etc/specc/config.json"),
])
def test_local_path_mapping(given, expected, tmp_path):
    dirs = {"VOL": tmp_path / "vol", "DATA": tmp_path / "data", "MNIST": tmp_path / "mnist"}
    env = {"SPECC_PATH_MAP": json.dumps({"/train/": str(dirs["VOL"]), "/data": str(dirs["DATA"]), "/data/mnist": str(dirs["MNIST"])})}
    head, _, rest = expected.partition("/")
    want = (dirs[head] / rest if rest else dirs[head]) if head in dirs else Path(expected)
    assert local_path(given, env) == want


def test_path_map_used_by_storage(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECC_PATH_MAP", json.dumps({"/train": str(tmp_path / "vol")}))
    Storage().write_bytes("/train/logs/events", b"e")
    assert (tmp_path / "vol/logs/events").read_bytes() == b"e"
    assert local_path("/training") == Path("/training")


@pytest.mark.parametrize("raw, match", [
    ("{not json", "not valid JSON"),
    ('["/train"]', "JSON object"),
    ('{"train": "/x"}', "must be absolute"),
])
def test_path_map_errors(raw, match):
    with pytest.raises(ConfigError, match=match):
        local_path("/train/x", {"SPECC_PATH_MAP": raw})


def test_local_path_rejects_foreign_uris():
    with pytest.raises(StorageError, match="must not name a host"):
        local_path("file://otherhost/x", {})
    with pytest.raises(StorageError, match="unsupported URI"):
        local_path("http://host/x", {})
    assert split_s3_uri("s3://bucket/a/b") == ("bucket", "a/b")


def test_local_paths_never_import_the_s3_client(tmp_path):
    """A job on PVC paths only does not pay for importing minio/urllib3."""
    code = ("import sys, pathlib\nfrom runtime.storage import Storage\nfrom runtime.config import StorageConfig\n"
            "st = Storage.from_config(StorageConfig())\np = pathlib.Path(sys.argv[1]) / 'x'\np.write_bytes(b'hi')\n"
            "assert st.read_bytes(str(p)) == b'hi'\n"
            "print(sorted(m for m in ('minio', 'urllib3') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
