"""Shared fixtures: paths to ../shared, and a real S3-protocol server (moto_server) on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPECC_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"
CRDS = SHARED / "crds"


@pytest.fixture(autouse=True, scope="session")
def _isolated_render_cache(tmp_path_factory):
    """Keep the render cache of the whole test session in a temporary folder."""
    os.environ["SPECC_CACHE_DIR"] = str(tmp_path_factory.mktemp("specc-cache"))
    yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """A moto_server subprocess speaking the S3 protocol on 127.0.0.1:<port>."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "S3Server":
        exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
        cmd = [exe] if exe else [sys.executable, "-m", "moto.server"]
        self.proc = subprocess.Popen(
            [*cmd, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def client(self):
        """A minio client for this server (test credentials)."""
        from minio import Minio

        return Minio(f"127.0.0.1:{self.port}", access_key="testing", secret_key="testing", secure=False)

    def env(self) -> dict[str, str]:
        """Environment that points the runtime (and `specc run --local`) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@pytest.fixture(scope="session")
def s3_server():
    """One real S3-protocol server for the whole test session."""
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server):
    """The session's S3 server with every bucket emptied and removed before the test."""
    c = s3_server.client()
    for b in c.list_buckets():
        for o in c.list_objects(b.name, recursive=True):
            c.remove_object(b.name, o.object_name)
        c.remove_bucket(b.name)
    return s3_server


def put_file(server: S3Server, bucket: str, key: str, path: Path | str) -> None:
    """Upload one local file, creating the bucket if needed."""
    c = server.client()
    if not c.bucket_exists(bucket):
        c.make_bucket(bucket)
    c.fput_object(bucket, key, str(path))


def put_bytes(server: S3Server, bucket: str, key: str, data: bytes) -> None:
    """Upload bytes, creating the bucket if needed."""
    import io

    c = server.client()
    if not c.bucket_exists(bucket):
        c.make_bucket(bucket)
    c.put_object(bucket, key, io.BytesIO(data), len(data))


def compile_specs(paths, *, cache: bool = False):
    """The compiled jobs of spec files or folders, and every problem found (pipeline, compile stage)."""
    from compiler import pipeline

    units, diags = pipeline.run([str(p) for p in paths], cache=cache)
    return [u.compiled for u in units], diags
