"""Where the writer leases of jobs/writer_lock.py are kept: one small JSON document per lease name,
read together with its version, created only if absent, and replaced or released only if it is still at
the version read (compare-and-swap). The lock decides once, in writer_lock.py, on top of these four
operations; a write refused because the document changed since it was read sends it back to read and
decide again.

- `LocalLeaseStore`: files `<warehouse>/_locks/<name>.json`. A write re-checks the version under an
  `flock` of `<name>.guard` and replaces the file whole (`os.replace`), so readers never see half a file.
- `S3LeaseStore`: on an S3 API, each lease is a short history of generations
  `<warehouse>/_locks/<name>/<generation>.json`, each created with a conditional PUT
  (`If-None-Match: *`). The current lease is the highest generation; a replace or a release creates
  the next one, which the server lets exactly one of two writers create (HTTP 412 for the other, who
  read a stale generation). The server must make `If-None-Match: *` atomic (AWS S3 does, since 2024;
  s3proxy 4.1.0 does, with a hard link) and list consistently (AWS S3 does, since 2020).

A version is what the store compares: the generation number, or a digest of the local file. A digest
follows the content, so a file rewritten with the same bytes keeps its version; harmless, as the lock
decides from the content alone.

The S3 endpoint, path style, TLS and keys are Spark's own s3a settings (`spark.extra_conf`
`spark.hadoop.fs.s3a.*`, the keys by `spark.hadoop_conf_from_env`), so nothing is configured twice.
A plain Python client (boto3) talks to the server: Airflow's lease tasks take and release leases
without starting Spark.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol
from urllib.parse import urlparse

from jobs.config import Settings

if TYPE_CHECKING:
    from botocore.client import BaseClient

log = logging.getLogger("jobs")

S3_SCHEMES = ("s3a",)
_HADOOP_PREFIX = "spark.hadoop."
# Answers to a conditional create that mean "someone else wrote first": the object exists (412), or a
# concurrent conditional write won (409, AWS's ConditionalRequestConflict).
_LOST_RACE = {409, 412}
# The body of a released lease's generation (S3LeaseStore).
_RELEASED = '{"released": true}'
_MAX_REREADS = 10
# Generations kept behind the newest: a listing that misses the newest (written meanwhile) still sees
# an older one, so the writer's next create collides (412) instead of recreating a cleaned-up one.
_KEPT_GENERATIONS = 10


class WriterLockUnsupported(RuntimeError):
    """The warehouse is on storage this lock cannot protect."""


class LeaseStoreError(RuntimeError):
    """The lease store cannot be reached or used (missing bucket, refused keys, no endpoint)."""


@dataclass(frozen=True)
class Stored:
    text: str | None  # None: released (the S3 store keeps a released lease's place)
    version: str


class LeaseStore(Protocol):
    def location(self, name: str) -> Path | str:
        """Where the lease lives, for messages (and the local tests)."""

    def read(self, name: str) -> Stored | None:
        """The lease document and its version; None when there is none."""

    def create(self, name: str, text: str) -> bool:
        """Write the document if there is none; False if one exists."""

    def replace(self, name: str, text: str, version: str) -> bool:
        """Overwrite the document if it is still at `version`; False if it changed or went since."""

    def release(self, name: str, version: str) -> bool:
        """Remove the document (or mark it released) if it is still at `version`; False if it changed or went since."""


def open_store(warehouse: str, s3: "S3Connection | None" = None) -> LeaseStore:
    """The lease store of a warehouse: a local folder, or `s3a://bucket/prefix` through `s3`."""
    scheme = urlparse(warehouse).scheme if "://" in warehouse else ""
    if scheme in ("", "file"):
        return LocalLeaseStore(Path(warehouse.removeprefix("file://")) / "_locks")
    if scheme in S3_SCHEMES:
        if s3 is None:
            raise WriterLockUnsupported(
                f"writer locks for a warehouse at {warehouse} need the S3 connection of the configuration "
                "(jobs.writer_lock.locks_for(settings) reads it from spark.extra_conf and spark.hadoop_conf_from_env)"
            )
        return S3LeaseStore(warehouse, s3)
    raise WriterLockUnsupported(
        f"writer locks for a warehouse at {warehouse} are not implemented ({scheme}:// has no lease store; "
        f"local folders and {', '.join(s + '://' for s in S3_SCHEMES)} have); refusing to write unprotected"
    )


# ------------------------------------------------------------------------------------------- local


class LocalLeaseStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def location(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def read(self, name: str) -> Stored | None:
        try:
            text = self.location(name).read_text()
        except FileNotFoundError:
            return None
        return Stored(text, _digest(text))

    def create(self, name: str, text: str) -> bool:
        with self._guard(name):
            if self.location(name).exists():
                return False
            self._write(name, text)
            return True

    def replace(self, name: str, text: str, version: str) -> bool:
        with self._guard(name):
            if self._version(name) != version:
                return False
            self._write(name, text)
            return True

    def release(self, name: str, version: str) -> bool:
        with self._guard(name):
            if self._version(name) != version:
                return False
            self.location(name).unlink()
            return True

    def _version(self, name: str) -> str | None:
        stored = self.read(name)
        return stored.version if stored is not None else None

    def _write(self, name: str, text: str) -> None:
        # Readers outside the guard (status, error messages, the next decision) never see half a file.
        path = self.location(name)
        scratch = path.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(text)
        os.replace(scratch, path)

    @contextmanager
    def _guard(self, name: str) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{name}.guard", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(guard, fcntl.LOCK_UN)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------- S3


@dataclass(frozen=True)
class S3Connection:
    """How to reach the warehouse's S3 server, as Spark's s3a reaches it."""

    endpoint_url: str | None  # None: AWS itself, by region
    path_style: bool
    region: str
    access_key: str | None  # None: boto3's own credential chain, like s3a's default providers
    secret_key: str | None
    session_token: str | None = None
    # Where the keys come from, for messages that must name them but never show them.
    keys_from: str = ""

    def object_store_options(self) -> dict[str, str]:
        """The same connection as storage options of delta-rs (the `deltalake` package) and other
        readers built on Rust's object_store: `DeltaTable("s3://…", storage_options=…)`."""
        options = {"AWS_REGION": self.region, "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false" if self.path_style else "true"}
        if self.endpoint_url:
            options["AWS_ENDPOINT_URL"] = self.endpoint_url
            if self.endpoint_url.startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        keys = {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_SESSION_TOKEN": self.session_token}
        return options | {name: value for name, value in keys.items() if value}


def s3_connection(settings: Settings, environ: Mapping[str, str] | None = None) -> S3Connection:
    """The S3 connection of Spark's s3a settings: `spark.extra_conf`'s `spark.hadoop.fs.s3a.*` and the
    keys of `spark.hadoop_conf_from_env` (a ConfigError names a variable that is not set)."""
    from jobs.spark import hadoop_secrets

    hadoop = {key.removeprefix(_HADOOP_PREFIX): value
              for key, value in settings.spark.extra_conf.items() if key.startswith(_HADOOP_PREFIX)}
    hadoop.update(hadoop_secrets(settings, environ))
    endpoint = hadoop.get("fs.s3a.endpoint", "").strip()
    if endpoint and "://" not in endpoint:  # s3a takes a bare host; TLS then follows connection.ssl.enabled
        tls = hadoop.get("fs.s3a.connection.ssl.enabled", "true").strip().lower() == "true"
        endpoint = f"{'https' if tls else 'http'}://{endpoint}"
    named = {key: env for key, env in settings.spark.hadoop_conf_from_env.items() if key.startswith("fs.s3a.")}
    return S3Connection(
        endpoint_url=endpoint or None,
        path_style=hadoop.get("fs.s3a.path.style.access", "false").strip().lower() == "true",
        region=hadoop.get("fs.s3a.endpoint.region") or hadoop.get("fs.s3a.region") or "us-east-1",
        access_key=hadoop.get("fs.s3a.access.key"),
        secret_key=hadoop.get("fs.s3a.secret.key"),
        session_token=hadoop.get("fs.s3a.session.token"),
        keys_from=", ".join(f"{key} from {env}" for key, env in named.items()) or "boto3's default credential chain",
    )


class S3LeaseStore:
    """Each lease is a short history of generations, `_locks/<name>/<generation>.json`, every one created
    with `If-None-Match: *`: the current lease is the highest generation, and a replace or a release
    creates the next one, so of two writers that read the same generation the server lets exactly one
    create its successor (HTTP 412 for the other). A release writes a tombstone rather than deleting,
    because a deleted history would start again at generation 0 beside a writer still acting on the old
    one. Each write deletes the generation _KEPT_GENERATIONS behind it, and checks that its own is still
    the newest (a listing that is not a snapshot could otherwise let it recreate a deleted one: the race
    test caught exactly that when each write deleted its predecessor at once).

    Why not `If-Match: <ETag>` on one object: s3proxy 4.1.0 (the tests' server, and `make cluster-up`'s)
    compares the ETag and then writes, two steps, so concurrent replaces at one ETag both succeeded in
    tests/cluster/test_s3_writer_lock.py; its `If-None-Match: *` is one atomic step (a hard link), as it
    is on AWS S3."""

    def __init__(self, warehouse: str, s3: S3Connection, client: "BaseClient | None" = None) -> None:
        parsed = urlparse(warehouse)
        self.warehouse = warehouse.rstrip("/")
        self.bucket = parsed.netloc
        self.prefix = "/".join(part for part in (parsed.path.strip("/"), "_locks") if part)
        self.s3 = s3
        self.client = client or s3_client(s3)

    def location(self, name: str) -> str:
        return f"{self.warehouse}/_locks/{name}/"

    def generation_key(self, name: str, generation: int) -> str:
        return f"{self.prefix}/{name}/{generation:020d}.json"

    def read(self, name: str) -> Stored | None:
        for _ in range(_MAX_REREADS):
            generations = self._generations(name)
            if not generations:
                return None
            try:
                answer = self._call("read", name, self.client.get_object, Key=self.generation_key(name, generations[-1]))
            except _Refused:  # deleted by the writer of a newer generation since the listing: list again
                continue
            text = answer["Body"].read().decode("utf-8")
            return Stored(None if text == _RELEASED else text, str(generations[-1]))
        raise LeaseStoreError(f"{self.location(name)}: its newest generation kept vanishing between listing and reading")

    def create(self, name: str, text: str) -> bool:
        return self._put_generation(name, 0, text)

    def replace(self, name: str, text: str, version: str) -> bool:
        return self._put_generation(name, int(version) + 1, text)

    def release(self, name: str, version: str) -> bool:
        return self._put_generation(name, int(version) + 1, _RELEASED)

    def _put_generation(self, name: str, generation: int, text: str) -> bool:
        try:
            self._call("write", name, self.client.put_object, Key=self.generation_key(name, generation),
                       Body=text.encode("utf-8"), ContentType="application/json", IfNoneMatch="*")
        except _Refused:
            return False
        if self._generations(name)[-1:] != [generation]:
            # A listing need not be a snapshot: one taken while the newest generation was being written
            # and an old one cleaned up can miss both, and this writer then recreated a cleaned-up one.
            # It does not hold the lease; the lock reads the newest again and decides again.
            return False
        if generation >= _KEPT_GENERATIONS:
            # Best effort: a leftover old generation is never read (the highest counts).
            try:
                self._call("clean up", name, self.client.delete_object,
                           Key=self.generation_key(name, generation - _KEPT_GENERATIONS))
            except LeaseStoreError as error:
                log.warning("lease store: %s", error)
        return True

    def _generations(self, name: str) -> list[int]:
        folder = f"{self.prefix}/{name}/"
        generations = []
        for page in self._call("list", name, self._list_pages, Prefix=folder):
            for entry in page.get("Contents", []):
                stem = entry["Key"].removeprefix(folder).removesuffix(".json")
                if stem.isdigit():
                    generations.append(int(stem))
        return sorted(generations)

    def _list_pages(self, **arguments: Any) -> list[dict]:
        return list(self.client.get_paginator("list_objects_v2").paginate(**arguments))

    def _call(self, what: str, name: str, operation: Any, **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return operation(Bucket=self.bucket, **arguments)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = error.response.get("Error", {}).get("Code", "")
            if code != "NoSuchBucket" and (status == 404 and what == "read" or status in _LOST_RACE and what == "write"):
                raise _Refused from None
            message = error.response.get("Error", {}).get("Message", "")
            raise LeaseStoreError(self._explain(what, name, status, code, message)) from None
        except NoCredentialsError:
            raise LeaseStoreError(f"no S3 keys to {what} the lease {self.location(name)}: "
                                  f"set them through spark.hadoop_conf_from_env ({self.s3.keys_from})") from None
        except BotoCoreError as error:
            raise LeaseStoreError(f"cannot {what} the lease {self.location(name)}: the S3 endpoint "
                                  f"{self._endpoint()} (spark.hadoop.fs.s3a.endpoint) did not answer: {error}") from None

    def _explain(self, what: str, name: str, status: int | None, code: str, message: str) -> str:
        where = f"cannot {what} the lease {self.location(name)} on {self._endpoint()}"
        if code == "NoSuchBucket":
            return f"{where}: the bucket {self.bucket!r} does not exist (create it, or point `warehouse` at another)"
        if status == 403:
            return f"{where}: the server refused the S3 keys ({code}: {message}); they come from {self.s3.keys_from}"
        return f"{where}: HTTP {status} {code}: {message}"

    def _endpoint(self) -> str:
        return self.s3.endpoint_url or f"AWS S3 ({self.s3.region})"


def s3_client(s3: S3Connection) -> "BaseClient":
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=s3.region,
        s3={"addressing_style": "path" if s3.path_style else "auto"},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=10,
        read_timeout=30,
        # Checksums only where S3 requires them: S3-compatible servers differ in the newer ones.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=s3.endpoint_url, aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
        aws_session_token=s3.session_token, config=config,
    )


class _Refused(Exception):
    """The key is missing (a read), or a write's condition failed."""
