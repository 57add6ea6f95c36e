"""Warehouse files that are not Delta tables (run markers, staging folders, Delta's log for maintenance),
read and written through Hadoop's FileSystem API in the Spark session's JVM: the same file systems Spark
uses for the tables, so `file:` and `s3a://` (or any Hadoop file system) alike, with the keys and
endpoint the session was given (jobs/spark.py). Nothing here or in its callers asks where it runs.

A path without a scheme is a local path, resolved against the working folder as `file:`, as before;
the paths handed back are built from the caller's path and the children's names, in the caller's form.

Object stores have no folders: a folder "exists" while something lies under it, so an empty folder and
a missing one look alike here (`list_dir` returns nothing for both).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlparse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.config import Settings

# Output that becomes visible only when its stream closes (and can be abandoned before): an object
# store's single PUT. Elsewhere a partly written file would be visible, so the text goes to a temporary
# file that is renamed over the target.
_VISIBLE_ON_CLOSE = "fs.capability.outputstream.abortable"


@dataclass(frozen=True)
class Entry:
    """A child of a listed folder."""

    path: str  # the listed folder's path as given, "/", the name
    name: str
    is_dir: bool
    modified_at: datetime  # UTC; for a folder, what the file system says (0 on object stores)


def exists(spark: "SparkSession", path: str) -> bool:
    fs, hadoop_path = _resolve(spark, path)
    return bool(fs.exists(hadoop_path))


def is_dir(spark: "SparkSession", path: str) -> bool:
    fs, hadoop_path = _resolve(spark, path)
    try:
        return bool(fs.getFileStatus(hadoop_path).isDirectory())
    except Exception as error:  # noqa: BLE001 (Py4JJavaError, imported lazily)
        if _java_class(error) == "java.io.FileNotFoundException":
            return False
        raise


def read_text(spark: "SparkSession", path: str) -> str:
    """The file's text (UTF-8); FileNotFoundError where there is none."""
    fs, hadoop_path = _resolve(spark, path)
    try:
        stream = fs.open(hadoop_path)
    except Exception as error:  # noqa: BLE001
        if _java_class(error) == "java.io.FileNotFoundException":
            raise FileNotFoundError(f"no file at {path}") from None
        raise
    try:
        return bytes(_jvm(spark).org.apache.hadoop.io.IOUtils.readFullyToByteArray(stream)).decode("utf-8")
    finally:
        stream.close()


def write_text(spark: "SparkSession", path: str, text: str) -> None:
    """Write the file whole, replacing any earlier one; readers see the old text or the new, never part
    of it (a single PUT on object stores, a renamed temporary file elsewhere). Missing parent folders
    are created."""
    fs, hadoop_path = _resolve(spark, path)
    data = bytearray(text.encode("utf-8"))
    if fs.hasPathCapability(hadoop_path, _VISIBLE_ON_CLOSE):
        _write(fs, hadoop_path, data)
        return
    temporary = _jvm(spark).org.apache.hadoop.fs.Path(hadoop_path.getParent(), f".{hadoop_path.getName()}.{uuid.uuid4().hex}.tmp")
    try:
        _write(fs, temporary, data)
        # On local file systems rename(2) replaces the target atomically. A file system whose rename
        # refuses an existing target (HDFS) gets it deleted first: there, a reader in between sees none.
        if not fs.rename(temporary, hadoop_path):
            fs.delete(hadoop_path, False)
            if not fs.rename(temporary, hadoop_path):
                raise OSError(f"could not rename {temporary.toString()} to {path}")
    finally:
        if fs.exists(temporary):
            fs.delete(temporary, False)


def list_dir(spark: "SparkSession", path: str) -> list[Entry]:
    """The folder's children, by name; none where the folder does not exist (or is empty)."""
    fs, hadoop_path = _resolve(spark, path)
    try:
        statuses = fs.listStatus(hadoop_path)
    except Exception as error:  # noqa: BLE001
        if _java_class(error) == "java.io.FileNotFoundException":
            return []
        raise
    base = path.rstrip("/")
    entries = []
    for status in statuses:
        name = status.getPath().getName()
        modified_at = datetime.fromtimestamp(status.getModificationTime() / 1000, timezone.utc)
        entries.append(Entry(f"{base}/{name}", name, bool(status.isDirectory()), modified_at))
    return sorted(entries, key=lambda entry: entry.name)


def delete(spark: "SparkSession", path: str) -> bool:
    """Delete the file, or the folder and everything under it; False where there was nothing."""
    fs, hadoop_path = _resolve(spark, path)
    return bool(fs.delete(hadoop_path, True))


def delta_rs_location(
    settings: "Settings", path: str, environ: "Mapping[str, str] | None" = None
) -> tuple[str, dict[str, str]]:
    """How delta-rs (the `deltalake` package) opens a table of the warehouse: a local path as it is; an
    `s3a://` one as `s3://`, with storage options from Spark's own s3a settings (endpoint, path style,
    keys from the environment: `jobs.lease_store.s3_connection`), so nothing is configured twice."""
    from jobs.lease_store import S3_SCHEMES, s3_connection

    scheme = urlparse(path).scheme
    if scheme in ("", "file"):
        return path, {}
    if scheme not in S3_SCHEMES:
        raise ValueError(f"{path}: delta-rs is given local paths and {', '.join(S3_SCHEMES)}:// ones here")
    return "s3" + path[len(scheme):], s3_connection(settings, environ).object_store_options()


def hadoop_uri(path: str) -> str:
    """The URI Hadoop is given: the path itself when it has a scheme, else `file:` and its absolute form."""
    if urlparse(path).scheme:
        return path
    return "file:" + os.path.abspath(path)


def _resolve(spark: "SparkSession", path: str) -> tuple[Any, Any]:
    """The Hadoop FileSystem serving the path (Hadoop's cached instance, the one Spark uses) and its Path."""
    jvm = _jvm(spark)
    hadoop_path = jvm.org.apache.hadoop.fs.Path(hadoop_uri(path))
    return hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration()), hadoop_path


def _write(fs: Any, hadoop_path: Any, data: bytearray) -> None:
    stream = fs.create(hadoop_path, True)
    try:
        stream.write(data)
    finally:
        stream.close()


def _jvm(spark: "SparkSession") -> Any:
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:
        raise RuntimeError("warehouse file operations need a classic Spark session: Hadoop's FileSystem API is not reachable over Spark Connect")
    return jvm


def _java_class(error: Exception) -> str | None:
    """The class of the Java exception behind a Py4JJavaError (None for any other error)."""
    java_exception = getattr(error, "java_exception", None)
    return java_exception.getClass().getName() if java_exception is not None else None
