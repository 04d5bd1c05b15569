"""One storage API for every URI a trainer touches: `s3://bucket/key`, `file:///abs` and paths.

s3:// goes through the `minio` client (imported on first use, so importing this module stays
cheap); everything else is the local filesystem after `local_path` applies `SPECC_PATH_MAP`.
Transient failures (connection refused/reset, timeouts, HTTP 5xx, SlowDown...) are retried with
exponential backoff and jitter, then raise `StorageUnavailable` (exit 138, the pod is retried);
permanent ones (missing bucket or object, rejected credentials, malformed URI) raise
`StorageError` (exit 1) with a one-line message naming the URI and the endpoint.

Environment: `AWS_ENDPOINT_URL_S3` > `AWS_ENDPOINT_URL` > the config's endpoint;
`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`); region from the config,
else `AWS_REGION` / `AWS_DEFAULT_REGION`. `SPECC_STORAGE_RETRIES` (retries after the first
attempt, default 4), `SPECC_STORAGE_BACKOFF` (first delay in seconds, default 0.5) and
`SPECC_STORAGE_BUDGET` (seconds of retrying before giving up, default 15) tune the retries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import random
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, TypeVar
from urllib.parse import unquote, urlsplit

from runtime.contract import BUCKET, PATH_MAP_ENV
from runtime.credentials import mask
from runtime.errors import ConfigError, DataError, RuntimeFailure, StorageError, StorageUnavailable

log = logging.getLogger("specc.storage")

ENDPOINT_ENVS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
#: Files that make a published model directory "complete"; copied last by `publish_dir`.
COMMIT_MARKERS = ("saved_model.pb", "saved_model.pbtxt")

_T = TypeVar("_T")
_BUCKET_RE = re.compile(rf"^{BUCKET}$")
_TRANSIENT_CODES = frozenset({
    "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling",
    "ThrottlingException", "RequestLimitExceeded", "OperationAborted", "XMinioServerNotInitialized",
})
_CREDENTIAL_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken",
    "InvalidSecurity", "AuthorizationHeaderMalformed",
})


# ----------------------------------------------------------------------------- URIs and paths

def is_s3(uri: str | os.PathLike) -> bool:
    """True for an `s3://` URI."""
    return isinstance(uri, str) and uri.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> ("bucket", "some/key"); StorageError when malformed."""
    if not is_s3(uri):
        raise StorageError(f"malformed URI {uri!r}: expected s3://bucket/key")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise StorageError(f"malformed URI {uri!r}: bucket name {bucket!r} is not a valid S3 bucket name")
    if any(part in (".", "..") for part in key.split("/")):
        raise StorageError(f"malformed URI {uri!r}: '.' and '..' segments are not allowed in keys")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise StorageError(f"malformed URI {uri!r}: control characters in key")
    return bucket, key


def _dir_key(key: str) -> str:
    """A key prefix that names a folder: '' stays '', otherwise it ends with exactly one '/'."""
    key = key.rstrip("/")
    return f"{key}/" if key else ""


def _path_map(env: Mapping[str, str]) -> list[tuple[str, str]]:
    raw = env.get(PATH_MAP_ENV, "").strip()
    if not raw:
        return []
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{PATH_MAP_ENV} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
        raise ConfigError(f"{PATH_MAP_ENV} must be a JSON object of mount path -> local folder")
    pairs = []
    for mount, target in doc.items():
        if not mount.startswith("/"):
            raise ConfigError(f"{PATH_MAP_ENV}: mount path {mount!r} must be absolute")
        pairs.append((posixpath.normpath(mount), target))
    # Longest mount first so the most specific one wins.
    return sorted(pairs, key=lambda p: len(p[0]), reverse=True)


def local_path(path_or_uri: str | os.PathLike, env: Mapping[str, str] | None = None) -> Path:
    """The local filesystem path for a plain path or `file://` URI, after `SPECC_PATH_MAP`.

    The map (JSON object mount prefix -> local folder) rewrites an absolute path under a mount
    to the same relative path under its folder; the longest mount wins and mounts only match on
    path-component boundaries (`/train` maps `/train/logs`, never `/training`). `..` segments
    are resolved first, so a mapped path cannot climb out of its folder.
    """
    env = os.environ if env is None else env
    text = os.fspath(path_or_uri)
    if text.startswith("file:"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"malformed URI {text!r}: file:// URIs must not name a host")
        text = unquote(parts.path)
        if not text.startswith("/"):
            raise StorageError(f"malformed URI {os.fspath(path_or_uri)!r}: file:// URIs need an absolute path")
    elif "://" in text:
        raise StorageError(f"unsupported URI {text!r}: use s3://bucket/key, file:///path or a path")
    if not text:
        raise StorageError("empty path")
    if not text.startswith("/"):
        return Path(text)
    norm = posixpath.normpath(text)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    for mount, target in _path_map(env):
        if mount == "/":
            return Path(target) / norm.lstrip("/")
        if norm == mount or norm.startswith(mount + "/"):
            rest = norm[len(mount):].lstrip("/")
            return Path(target) / rest if rest else Path(target)
    return Path(norm)


def _join(prefix_uri: str, rel: str) -> str:
    return prefix_uri.rstrip("/") + "/" + rel if prefix_uri.rstrip("/") else "/" + rel


def _safe_rel(rel: str, where: str) -> str:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"refusing object name {where!r}: it would land outside the target folder")
    return rel


def _local_files(root: Path) -> list[tuple[str, Path]]:
    """Every regular file under root as (relative posix path, path), sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            p = Path(dirpath) / name
            out.append((p.relative_to(root).as_posix(), p))
    return sorted(out)


def _atomic_write(path: Path, write: Callable[[object], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter for transient storage errors."""

    retries: int = 4  # attempts after the first
    backoff: float = 0.5  # first delay, doubled each retry
    max_delay: float = 4.0
    budget: float = 15.0  # seconds from the first failure after which no retry starts

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "RetryPolicy":
        """Defaults, tuned by SPECC_STORAGE_RETRIES / _BACKOFF / _BUDGET."""
        env = os.environ if env is None else env

        def num(name: str, conv, default, lo):
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = conv(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a number") from None
            if value < lo:
                raise ConfigError(f"{name}={raw!r} must be >= {lo}")
            return value

        return cls(
            retries=num("SPECC_STORAGE_RETRIES", int, cls.retries, 0),
            backoff=num("SPECC_STORAGE_BACKOFF", float, cls.backoff, 0.0),
            budget=num("SPECC_STORAGE_BUDGET", float, cls.budget, 0.0),
        )

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based): half fixed, half jitter."""
        base = min(self.max_delay, self.backoff * 2 ** (retry - 1))
        return base * random.uniform(0.5, 1.0)


_ONCE = RetryPolicy(retries=0)


def resolve_endpoint(configured: str | None, env: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """(endpoint URL or None, where it came from): AWS_ENDPOINT_URL_S3 > AWS_ENDPOINT_URL > config."""
    env = os.environ if env is None else env
    for name in ENDPOINT_ENVS:
        value = env.get(name, "").strip()
        if value:
            return value, name
    return (configured, "storage.endpoint") if configured else (None, "")


def _parse_endpoint(url: str, source: str) -> tuple[str, bool]:
    """'https://host:port' -> ('host:port', secure)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ConfigError(f"{source}={mask(url)!r}: invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{source}={mask(url)!r}: must be http(s)://host[:port] (credentials go in "
                          "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not in the URL)")
    return parts.netloc, parts.scheme == "https"


# ----------------------------------------------------------------------------- errors

def _clean(text: str) -> str:
    text = re.sub(r"<[^<>]*object at 0x[0-9a-f]+>:?\s*", "", str(text))
    text = re.sub(r"\bHTTPS?Connection(Pool)?\(host=[^)]*\):\s*", "", text)
    return " ".join(text.split())[:300]


def _transient_reason(exc: BaseException) -> str | None:
    """A short reason when exc is a transient (retryable) storage error, else None."""
    import urllib3.exceptions as ux
    from minio.error import InvalidResponseError, S3Error, ServerError

    if isinstance(exc, S3Error):
        status = getattr(exc.response, "status", 0) or 0
        if exc.code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return f"{exc.code} (HTTP {status}): {exc.message}"
        return None
    if isinstance(exc, ServerError):
        return f"HTTP {exc.status_code}" if exc.status_code >= 500 or exc.status_code == 429 else None
    if isinstance(exc, InvalidResponseError):
        code = exc._code  # noqa: SLF001 - minio keeps the status here
        return f"HTTP {code} with a non-S3 response" if code >= 500 or code == 429 else None
    if isinstance(exc, ux.MaxRetryError):
        return _transient_reason(exc.reason) if exc.reason is not None else None
    if isinstance(exc, ux.SSLError):
        return None
    if isinstance(exc, (ux.NewConnectionError, ux.TimeoutError, ux.ProtocolError, ux.ProxyError,
                        ux.IncompleteRead, ux.ResponseNotChunked, ux.DecodeError)):
        return _clean(exc)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return _clean(f"{type(exc).__name__}: {exc}")
    return None


class Storage:
    """Reads and writes URIs; one instance per job (see `Storage.from_config`)."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        retry: RetryPolicy | None = None,
        cache_dir: str | os.PathLike | None = None,
        endpoint_source: str = "endpoint",
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ):
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self._endpoint_source = endpoint_source
        if self.endpoint:
            self._netloc, self._secure = _parse_endpoint(self.endpoint, endpoint_source)
        if bool(access_key) != bool(secret_key):
            raise ConfigError("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
        self.region = region
        self._creds = (access_key, secret_key, session_token)
        self.retry = retry or RetryPolicy()
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self._timeouts = (connect_timeout, read_timeout)
        self._client = None

    @classmethod
    def from_config(cls, cfg=None, env: Mapping[str, str] | None = None) -> "Storage":
        """A Storage for a runtime.config.StorageConfig, with the AWS_* environment on top."""
        env = os.environ if env is None else env
        endpoint, source = resolve_endpoint(getattr(cfg, "endpoint", None), env)
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        if cfg is not None and "region" in getattr(cfg, "model_fields_set", ()):
            region = cfg.region
        return cls(
            endpoint,
            region=region,
            access_key=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
            retry=RetryPolicy.from_env(env),
            endpoint_source=source or "endpoint",
        )

    # ------------------------------------------------------------------ plumbing

    @property
    def client(self):
        """The minio client (created on first s3:// use)."""
        if self._client is None:
            if not self.endpoint:
                raise ConfigError(
                    "no S3 endpoint for s3:// URIs: set storage.endpoint in the spec or "
                    "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL in the environment"
                )
            import certifi
            import urllib3
            from minio import Minio

            # Retries happen in _call; urllib3 must not multiply them.
            http = urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=self._timeouts[0], read=self._timeouts[1]),
                maxsize=10,
                cert_reqs="CERT_REQUIRED",
                ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
                retries=urllib3.Retry(total=0, redirect=0, raise_on_redirect=True),
            )
            ak, sk, token = self._creds
            self._client = Minio(self._netloc, access_key=ak, secret_key=sk, session_token=token,
                                 secure=self._secure, region=self.region, http_client=http)
        return self._client

    @property
    def cache_dir(self) -> Path:
        """Folder holding downloads made by `local_file` (a temporary one unless given)."""
        if self._cache_dir is None:
            self._cache_dir = Path(tempfile.mkdtemp(prefix="specc-cache-"))
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        return self._cache_dir

    def _permanent(self, exc: BaseException, what: str, uri: str) -> RuntimeFailure:
        from minio.error import InvalidResponseError, S3Error, ServerError

        if isinstance(exc, RuntimeFailure):
            return exc
        if isinstance(exc, S3Error):
            bucket = exc.bucket_name or (split_s3_uri(uri)[0] if is_s3(uri) else "?")
            if exc.code == "NoSuchBucket":
                return StorageError(f"bucket '{bucket}' does not exist at {self.endpoint}")
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return StorageError(f"object {uri} not found at {self.endpoint}")
            if exc.code in _CREDENTIAL_CODES:
                return StorageError(
                    f"credentials rejected by {self.endpoint}: {exc.code}: {exc.message} "
                    f"({what} {uri}; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
                )
            return StorageError(f"{what} {uri} failed at {self.endpoint}: {exc.code}: {exc.message}")
        if isinstance(exc, (ServerError, InvalidResponseError)):
            return StorageError(f"{what} {uri} failed: {self.endpoint} ({self._endpoint_source}) "
                                f"answered {_clean(exc)}; is it an S3 endpoint?")
        if isinstance(exc, FileNotFoundError):
            return StorageError(f"{what} {uri} failed: {exc.filename}: no such file")
        if isinstance(exc, OSError):
            where = f"{exc.filename}: " if exc.filename else ""
            return StorageError(f"{what} {uri} failed: {where}{exc.strerror or exc}")
        import urllib3.exceptions as ux

        if isinstance(exc, ux.MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        return StorageError(f"{what} {uri} failed at {self.endpoint}: {_clean(exc)}")

    def _call(self, what: str, uri: str, fn: Callable[[], _T], *, retry: RetryPolicy | None = None) -> _T:
        """Run fn, retrying transient errors; map every storage failure to a RuntimeFailure."""
        policy = retry or self.retry
        expected: tuple[type[BaseException], ...] = (OSError, ValueError)
        if is_s3(uri):  # minio and urllib3 (with pycryptodome) are slow to import: only for s3://
            import urllib3.exceptions as ux
            from minio.error import MinioException

            expected = (MinioException, ux.HTTPError, *expected)
        attempt, first_failure = 0, None
        while True:
            try:
                return fn()
            except RuntimeFailure:
                raise
            except expected as exc:
                reason = _transient_reason(exc)
                if reason is None:
                    raise self._permanent(exc, what, uri) from None
                attempt += 1
                now = time.monotonic()
                first_failure = first_failure or now
                delay = policy.delay(attempt)
                if attempt > policy.retries or now - first_failure + delay > policy.budget:
                    where = self.endpoint if is_s3(uri) else "filesystem"
                    raise StorageUnavailable(
                        f"storage {where} unavailable ({what} {uri}): {reason} "
                        f"[gave up after {attempt} attempt(s) in {now - first_failure:.1f}s]"
                    ) from None
                log.warning("%s %s: %s; retry %d/%d in %.1fs", what, uri, reason, attempt, policy.retries, delay)
                time.sleep(delay)

    # ------------------------------------------------------------------ reading

    def read_bytes(self, uri: str) -> bytes:
        """The whole content of an object or file."""
        if is_s3(uri):
            bucket, key = self._object(uri)

            def get() -> bytes:
                resp = self.client.get_object(bucket, key)
                try:
                    return resp.read()
                finally:
                    resp.close()
                    resp.release_conn()

            return self._call("read", uri, get)
        path = local_path(uri)
        return self._call("read", uri, path.read_bytes)

    def read_text(self, uri: str) -> str:
        """The content as UTF-8 text; DataError naming the URI and line when it is not UTF-8."""
        data = self.read_bytes(uri)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise DataError(uri, f"not UTF-8 text (byte {exc.start}: {exc.reason})", line=line) from None

    def local_file(self, uri: str) -> Path:
        """A local path holding the content: s3 objects are downloaded into `cache_dir`."""
        if not is_s3(uri):
            path = local_path(uri)
            if not path.is_file():
                raise StorageError(f"file {uri} not found" + (f" (mapped to {path})" if str(path) != uri else ""))
            return path
        bucket, key = self._object(uri)
        target = self.cache_dir / bucket / _safe_rel(key, uri)
        self._download(bucket, key, target, uri)
        return target

    def _download(self, bucket: str, key: str, target: Path, uri: str) -> None:
        def write(fh) -> None:
            def attempt() -> None:
                fh.seek(0)
                fh.truncate()
                resp = self.client.get_object(bucket, key)
                try:
                    for chunk in resp.stream(1 << 20):
                        fh.write(chunk)
                finally:
                    resp.close()
                    resp.release_conn()

            self._call("download", uri, attempt)

        try:
            _atomic_write(target, write)
        except OSError as exc:
            raise self._permanent(exc, "download", uri) from None

    def exists(self, uri: str) -> bool:
        """True when the object/file exists, or when the URI names a non-empty folder/prefix."""
        if not is_s3(uri):
            return local_path(uri).exists()
        bucket, key = split_s3_uri(uri)
        if not key:
            return self._call("check bucket", uri, lambda: self.client.bucket_exists(bucket))
        if not key.endswith("/"):
            from minio.error import S3Error

            def stat() -> bool:
                try:
                    self.client.stat_object(bucket, key)
                    return True
                except S3Error as exc:
                    if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"):
                        return False
                    raise

            if self._call("stat", uri, stat):
                return True
        return bool(self._list_keys(bucket, _dir_key(key), uri, limit=1, missing_ok=True))

    def list(self, prefix_uri: str) -> list[str]:
        """Every object/file below a folder URI, recursively, as sorted URIs in the same style.

        The prefix is a folder: `s3://b/data` lists `s3://b/data/...`, never `s3://b/data2`.
        A missing local folder lists as empty; a missing bucket is a StorageError.
        """
        if is_s3(prefix_uri):
            bucket, key = split_s3_uri(prefix_uri)
            return [f"s3://{bucket}/{k}" for k in self._list_keys(bucket, _dir_key(key), prefix_uri)]
        root = local_path(prefix_uri)
        if not root.is_dir():
            return []
        return [_join(prefix_uri, rel) for rel, _ in self._call("list", prefix_uri, lambda: _local_files(root))]

    def _list_keys(self, bucket: str, prefix: str, uri: str, *, limit: int | None = None,
                   missing_ok: bool = False, retry: RetryPolicy | None = None) -> list[str]:
        from minio.error import S3Error

        def listing() -> list[str]:
            keys = []
            try:
                for obj in self.client.list_objects(bucket, prefix=prefix or None, recursive=True):
                    if not obj.is_dir and not obj.object_name.endswith("/"):
                        keys.append(obj.object_name)
                        if limit and len(keys) >= limit:
                            break
            except S3Error as exc:
                if missing_ok and exc.code == "NoSuchBucket":
                    return []
                raise
            return sorted(keys)

        return self._call("list", uri, listing, retry=retry)

    def download_dir(self, prefix_uri: str, dir: str | os.PathLike) -> list[Path]:
        """Copy every object/file below a folder URI into dir (keeping relative paths)."""
        dest = Path(dir)
        if is_s3(prefix_uri):
            bucket, key = split_s3_uri(prefix_uri)
            prefix = _dir_key(key)
            keys = self._list_keys(bucket, prefix, prefix_uri)
            if not keys:
                raise StorageError(f"nothing under {prefix_uri} at {self.endpoint}")
            out = []
            for k in keys:
                target = dest / _safe_rel(k[len(prefix):], f"s3://{bucket}/{k}")
                self._download(bucket, k, target, f"s3://{bucket}/{k}")
                out.append(target)
            return out
        root = local_path(prefix_uri)
        files = _local_files(root) if root.is_dir() else []
        if not files:
            raise StorageError(f"nothing under {prefix_uri}" + (f" (mapped to {root})" if str(root) != prefix_uri else ""))
        out = []
        for rel, src in files:
            target = dest / rel
            if target.resolve() != src.resolve():
                self._call("copy", str(src), lambda s=src, t=target: _atomic_write(t, lambda fh: _copy_into(s, fh)))
            out.append(target)
        return out

    # ------------------------------------------------------------------ writing

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write a whole object/file (local files atomically: temp file then rename)."""
        if is_s3(uri):
            import io

            bucket, key = self._object(uri)
            self._call("write", uri, lambda: self.client.put_object(bucket, key, io.BytesIO(data), len(data)))
            return
        path = local_path(uri)
        self._call("write", uri, lambda: _atomic_write(path, lambda fh: fh.write(data)))

    def upload_file(self, path: str | os.PathLike, uri: str) -> None:
        """Copy a local file to an object/file URI."""
        src = local_path(path)
        if is_s3(uri):
            bucket, key = self._object(uri)
            self._call("upload", uri, lambda: self.client.fput_object(bucket, key, str(src)))
            return
        dest = local_path(uri)
        if dest.exists() and dest.resolve() == src.resolve():
            return
        self._call("upload", uri, lambda: _atomic_write(dest, lambda fh: _copy_into(src, fh)))

    def publish_dir(self, local_dir: str | os.PathLike, prefix_uri: str, *, overwrite: bool = False) -> str:
        """Publish a folder (e.g. a SavedModel version) so readers never see half of it.

        Refuses (StorageError "already exists") when the target already holds files, unless
        overwrite=True. Returns the target URI.

        Local target: the tree is copied into a hidden sibling folder, then renamed into place
        (one rename(2)); with overwrite the old folder is first renamed aside, so readers see
        the old tree, briefly nothing, or the new tree - never a mix.

        s3 target `s3://b/p/`: every file is uploaded under `s3://b/p.staging-<uuid>/` and
        verified (size, and MD5 for single-part uploads) before anything is written under
        `p/`; a failure up to that point leaves `p/` untouched and the staging prefix deleted.
        Then each object is server-side copied into `p/` with the `saved_model.pb` files
        copied last (with overwrite, stale objects are deleted first, old `saved_model.pb`
        before the rest), and the staging prefix is deleted. S3 has no multi-object commit:
        a reader that lists `p/` during the copy phase can see a partial tree, but never one
        holding `saved_model.pb` before every other file is in place; a failure during the
        copy phase removes what it copied (best effort).
        """
        src = local_path(local_dir)
        if not src.is_dir():
            raise StorageError(f"cannot publish {local_dir}: not a folder")
        files = _local_files(src)
        if not files:
            raise StorageError(f"cannot publish {local_dir}: it holds no files")
        if is_s3(prefix_uri):
            return self._publish_s3(files, prefix_uri, overwrite)
        return self._publish_local(src, prefix_uri, overwrite)

    def _publish_local(self, src: Path, prefix_uri: str, overwrite: bool) -> str:
        final = local_path(prefix_uri)
        if final.resolve() == src.resolve() or final.resolve().is_relative_to(src.resolve()):
            raise StorageError(f"cannot publish {src} into itself ({prefix_uri})")
        if final.exists() and not final.is_dir():
            raise StorageError(f"cannot publish to {prefix_uri}: it is a file")
        if final.is_dir() and any(final.iterdir()) and not overwrite:
            raise StorageError(f"{prefix_uri} already exists and is not empty (pass overwrite=True to replace it)")
        token = uuid.uuid4().hex[:12]
        staging = final.parent / f".{final.name}.staging-{token}"
        old = final.parent / f".{final.name}.old-{token}"

        def publish() -> None:
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                try:
                    shutil.copytree(src, staging, symlinks=False)
                except shutil.Error as exc:
                    failed = exc.args[0][0] if exc.args and isinstance(exc.args[0], list) and exc.args[0] else ("?", "?", exc)
                    raise StorageError(f"publish {prefix_uri} failed: cannot copy {failed[0]}: {failed[2]}") from None
                if final.is_dir() and any(final.iterdir()):
                    os.rename(final, old)
                os.replace(staging, final)  # replaces a missing or empty folder atomically
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                if old.exists() and not final.exists():
                    os.rename(old, final)
                raise
            shutil.rmtree(old, ignore_errors=True)

        self._call("publish", prefix_uri, publish, retry=_ONCE)
        return prefix_uri

    def _publish_s3(self, files: list[tuple[str, Path]], prefix_uri: str, overwrite: bool) -> str:
        from minio.commonconfig import CopySource

        bucket, key = split_s3_uri(prefix_uri)
        base = key.rstrip("/")
        if not base:
            raise StorageError(f"cannot publish to {prefix_uri}: name a prefix inside the bucket (s3://bucket/prefix/)")
        final, staging = f"{base}/", f"{base}.staging-{uuid.uuid4().hex[:12]}/"
        existing = self._list_keys(bucket, final, prefix_uri)
        if existing and not overwrite:
            raise StorageError(f"{prefix_uri} already exists ({len(existing)} objects; pass overwrite=True to replace it)")

        # Phase 1: stage and verify. Nothing under `final` changes.
        try:
            for rel, path in files:
                self._call("upload", _join(prefix_uri, rel),
                           lambda p=path, r=rel: self.client.fput_object(bucket, staging + r, str(p)))
            self._verify_staging(bucket, staging, files)
        except BaseException:
            self._remove_quietly(bucket, prefix=staging)
            raise

        # Phase 2: copy into place, commit markers last.
        order = commit_order(rel for rel, _ in files)
        new = {final + rel for rel in order}
        copied: list[str] = []
        try:
            if existing:
                stale = sorted((k for k in existing if k not in new or posixpath.basename(k) in COMMIT_MARKERS),
                               key=lambda k: posixpath.basename(k) not in COMMIT_MARKERS)
                self._remove(bucket, stale, prefix_uri)
            for rel in order:
                self._call("copy", f"s3://{bucket}/{final}{rel}",
                           lambda r=rel: self.client.copy_object(bucket, final + r, CopySource(bucket, staging + r)))
                copied.append(final + rel)
        except BaseException:
            if not existing:
                self._remove_quietly(bucket, copied)
            self._remove_quietly(bucket, [staging + rel for rel, _ in files])
            raise
        try:
            self._remove(bucket, [staging + rel for rel, _ in files], f"s3://{bucket}/{staging}")
        except RuntimeFailure as exc:
            log.warning("published %s but could not delete staging objects: %s", prefix_uri, exc)
        return prefix_uri

    def _verify_staging(self, bucket: str, staging: str, files: list[tuple[str, Path]]) -> None:
        uri = f"s3://{bucket}/{staging}"

        def listing() -> dict[str, tuple[int, str]]:
            return {o.object_name[len(staging):]: (o.size, (o.etag or "").strip('"'))
                    for o in self.client.list_objects(bucket, prefix=staging, recursive=True)}

        seen = self._call("verify", uri, listing)
        for rel, path in files:
            if rel not in seen:
                raise StorageError(f"verify {uri}{rel} failed: object missing after upload")
            size, etag = seen[rel]
            if size != path.stat().st_size:
                raise StorageError(f"verify {uri}{rel} failed: {size} bytes stored, {path.stat().st_size} local")
            if etag and "-" not in etag and etag != _md5(path):
                raise StorageError(f"verify {uri}{rel} failed: checksum differs from {path}")

    def _remove(self, bucket: str, keys: Iterable[str], uri: str, retry: RetryPolicy | None = None) -> None:
        from minio.deleteobjects import DeleteObject

        keys = list(keys)
        if not keys:
            return

        def remove() -> None:
            errors = list(self.client.remove_objects(bucket, [DeleteObject(k) for k in keys]))
            if errors:
                raise StorageError(f"delete under {uri} failed: {errors[0].code}: {errors[0].message} ({len(errors)} objects)")

        self._call("delete", uri, remove, retry=retry)

    def _remove_quietly(self, bucket: str, keys: list[str] | None = None, prefix: str = "") -> None:
        """Best-effort cleanup after a failure: one attempt each, errors only logged."""
        try:
            if keys is None:
                keys = self._list_keys(bucket, prefix, f"s3://{bucket}/{prefix}", retry=_ONCE)
            self._remove(bucket, keys, f"s3://{bucket}/{prefix}", retry=_ONCE)
        except RuntimeFailure as exc:
            log.warning("cleanup in s3://%s/%s failed: %s", bucket, prefix, exc)

    def _object(self, uri: str) -> tuple[str, str]:
        bucket, key = split_s3_uri(uri)
        if not key or key.endswith("/"):
            raise StorageError(f"malformed URI {uri!r}: expected s3://bucket/key naming an object")
        return bucket, key


def commit_order(names: Iterable[str]) -> list[str]:
    """Relative names sorted for publishing: commit markers (saved_model.pb) after everything else."""
    return sorted(names, key=lambda r: (posixpath.basename(r) in COMMIT_MARKERS, r))


def _copy_into(src: Path, fh) -> None:
    with open(src, "rb") as f:
        shutil.copyfileobj(f, fh, 1 << 20)


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
