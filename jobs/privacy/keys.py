"""The keys table: one data key per customer (and per quarantined address), wrapped by the master key.

An erased subject keeps its row with `wrapped_key` NULL (a tombstone), so its key is never made again:
a value of it that lands later is written as `pii:erased`. The table has no deletion vectors, so an
erasure rewrites the file that held the key, and VACUUM then deletes that file for good.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.privacy.crypto import DataKey, MasterKey, Subject, new_key
from jobs.tables import TableSpec, commit_metrics, ensure_table, insert_new, latest_version

DATA_KEYS = TableSpec(
    "keys",
    "data_keys",
    "key_id STRING NOT NULL, tenant_id STRING NOT NULL, kind STRING NOT NULL, subject STRING NOT NULL, "
    "wrapped_key BINARY, created_at TIMESTAMP NOT NULL, erased_at TIMESTAMP",
    # Binary columns get no min/max statistics, so the transaction log never holds key material; without
    # deletion vectors a deleted key's file is really replaced, not just masked.
    (("delta.enableDeletionVectors", "false"),),
)

_SUBJECT_DDL = "tenant_id STRING, kind STRING, subject STRING"


class KeyStore:
    """The keys of one landing run or erasure, read once per subject and cached for the run."""

    def __init__(self, spark: SparkSession, warehouse: str, master: MasterKey) -> None:
        self.spark = spark
        self.master = master
        self.path = ensure_table(spark, DATA_KEYS, warehouse)
        self._keys: dict[Subject, DataKey | None] = {}
        self._ids: dict[Subject, str] = {}

    def lookup(self, subject: Subject) -> DataKey | None:
        """The subject's data key, None if it was erased; `ensure` must have seen the subject."""
        return self._keys[subject]

    def key_id(self, subject: Subject) -> str | None:
        return self._ids.get(subject)

    def ensure(self, subjects: Iterable[Subject]) -> int:
        """Read the subjects' keys; create (one commit) those that never existed. Returns keys created."""
        missing = set(subjects) - self._keys.keys()
        if not missing:
            return 0
        self._read(missing)
        new = [subject for subject in missing if subject not in self._keys]
        if not new:
            return 0
        now = datetime.now(timezone.utc)
        rows, made = [], {}
        for subject in new:
            key_id, key = new_key()
            made[subject] = DataKey(key_id, key)
            rows.append((key_id, subject.tenant_id, subject.kind, subject.subject, self.master.wrap(key_id, key), now, None))
        insert_new(self.spark, self.spark.createDataFrame(rows, DATA_KEYS.ddl), self.path, ("tenant_id", "kind", "subject"))
        # A key is used only once it is committed. The commit's metrics say whether every row went in
        # (one writer at a time, so they do); otherwise read back what is stored.
        metrics = commit_metrics(self.spark, self.path, latest_version(self.spark, self.path))
        if int(metrics.get("numTargetRowsInserted", -1)) == len(new):
            self._keys.update(made)
            self._ids.update({subject: key.key_id for subject, key in made.items()})
            return len(new)
        self._read(set(new))
        unstored = [subject for subject in new if subject not in self._keys]
        if unstored:
            raise RuntimeError(f"{len(unstored)} data key(s) were not stored in {self.path}; nothing encrypted with them")
        return len(new)

    def _read(self, subjects: set[Subject]) -> None:
        wanted = self.spark.createDataFrame([(s.tenant_id, s.kind, s.subject) for s in subjects], _SUBJECT_DDL)
        rows = (
            self.spark.read.format("delta").load(self.path)
            .join(F.broadcast(wanted), on=["tenant_id", "kind", "subject"], how="inner")
            .select("key_id", "tenant_id", "kind", "subject", "wrapped_key")
            .collect()
        )
        for row in rows:
            subject = Subject(row["tenant_id"], row["kind"], row["subject"])
            self._ids[subject] = row["key_id"]
            wrapped = row["wrapped_key"]
            self._keys[subject] = None if wrapped is None else DataKey(row["key_id"], self.master.unwrap(row["key_id"], bytes(wrapped)))


def keys_by_id(spark: SparkSession, warehouse: str, master: MasterKey, key_ids: Iterable[str]) -> dict[str, DataKey | None]:
    """The data keys of these ids as they are now (None: erased); ids absent from the table are left out."""
    ids = sorted(set(key_ids))
    if not ids:
        return {}
    rows = (
        spark.read.format("delta").load(ensure_table(spark, DATA_KEYS, warehouse))
        .filter(F.col("key_id").isin(ids))
        .select("key_id", "wrapped_key")
        .collect()
    )
    return {
        row["key_id"]: None if row["wrapped_key"] is None else DataKey(row["key_id"], master.unwrap(row["key_id"], bytes(row["wrapped_key"])))
        for row in rows
    }
