"""Erasure: delete a customer's data keys, log it, and later record when it became physical.

Order, so that a run stopped anywhere can be rerun:
1. the customer's addresses are read from their encrypted values (while their key still opens them),
2. one commit on the keys table turns the customer's key and the keys of those addresses into
   tombstones (inserted if they never existed, so that they are never made later),
3. the erasure log gets its row. A rerun finds the request still unlogged and does 2-3 again
   (step 1 then finds nothing: the addresses' keys are already tombstones).
`maintain` sets `physical_at` once VACUUM and the log cleanup have removed every older version of the
keys table (docs/privacy.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import reduce
from typing import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import storage
from jobs.privacy.crypto import CUSTOMER, TOKEN_PREFIX, DataKey, MasterKey, Subject, addresses_in, new_key, tokens_in
from jobs.privacy.keys import DATA_KEYS
from jobs.tables import BRONZE_EVENTS, QUARANTINE, TableSpec, ensure_table, insert_new, quoted_path, read_table, write

ERASURE_LOG = TableSpec(
    "meta",
    "erasure_log",
    "tenant_id STRING NOT NULL, customer_id STRING NOT NULL, requested_at TIMESTAMP NOT NULL, "
    "source STRING NOT NULL, request_event_id STRING, erased_at TIMESTAMP NOT NULL, "
    "keys_erased BIGINT NOT NULL, keys_table_version BIGINT NOT NULL, physical_at TIMESTAMP",
)

# One row per erasure pass over bronze: the bronze version it read up to. The next pass reads only the
# commits after it (the change feed), so an hourly landing does not scan the whole history for requests.
ERASURE_CHECKS = TableSpec(
    "meta", "erasure_checks", "bronze_version BIGINT NOT NULL, requests BIGINT NOT NULL, checked_at TIMESTAMP NOT NULL"
)

# What bronze's events that hold encrypted values say (in the simulator's traffic about 1.5% of them):
# the address search reads these, not all of bronze. Landing appends a batch's rows here in a commit
# before its bronze commit, so the table holds at least every such row of bronze (a landing stopped
# between the two, or bronze made anew, leaves rows bronze lacks: searched too, they cost time only).
# Erasing a key makes its values unreadable here as everywhere else.
PERSONAL_EVENTS = TableSpec(
    "bronze", "personal_events", "event_id STRING NOT NULL, tenant_id STRING NOT NULL, data STRING NOT NULL, metadata STRING NOT NULL"
)

# Its columns, named once (the table is made by writing bronze's rows, not from this DDL).
_PERSONAL_COLUMNS = tuple(column.split()[0] for column in PERSONAL_EVENTS.ddl.split(", "))

ERASURE_EVENT = "CustomerErasureRequested"
SOURCE_EVENT = "event"
SOURCE_CLI = "cli"


@dataclass(frozen=True)
class ErasureRequest:
    tenant_id: str
    customer_id: str
    requested_at: datetime
    source: str  # event | cli
    request_event_id: str | None = None


@dataclass(frozen=True)
class Erasure:
    request: ErasureRequest
    keys_erased: int  # the customer's key (if they had one) and the keys of their addresses


def erase(spark: SparkSession, warehouse: str, master: MasterKey, requests: Iterable[ErasureRequest]) -> list[Erasure]:
    """Erase the customers of these requests that are not erased yet (idempotent)."""
    log_path = ensure_table(spark, ERASURE_LOG, warehouse)
    logged = {(row["tenant_id"], row["customer_id"]) for row in spark.read.format("delta").load(log_path).select("tenant_id", "customer_id").collect()}
    todo: dict[tuple[str, str], ErasureRequest] = {}
    for request in sorted(requests, key=lambda r: r.requested_at):
        todo.setdefault((request.tenant_id, request.customer_id), request)
    todo = {key: request for key, request in todo.items() if key not in logged}
    if not todo:
        return []
    keys_path = ensure_table(spark, DATA_KEYS, warehouse)
    customer_keys = _customer_keys(spark, keys_path, master, list(todo))
    addresses = _addresses_of(spark, warehouse, customer_keys)
    tombstones: list[tuple[Subject, tuple[str, str]]] = []
    for customer in todo:
        tombstones.append((Subject(customer[0], CUSTOMER, customer[1]), customer))
        tombstones.extend((master.address_subject(address), customer) for address in sorted(addresses.get(customer, ())))
    _tombstone(spark, keys_path, [subject for subject, _ in tombstones], datetime.now(timezone.utc))
    # When the keys left the table's current version: what VACUUM's cutoff is compared with.
    commit = spark.sql(f"DESCRIBE HISTORY {quoted_path(keys_path)} LIMIT 1").collect()[0]
    version, erased_at = commit["version"], commit["timestamp"]
    per_customer = {customer: sum(1 for _, owner in tombstones if owner == customer) for customer in todo}
    rows = spark.createDataFrame(
        [
            (r.tenant_id, r.customer_id, r.requested_at, r.source, r.request_event_id, erased_at, per_customer[key], version, None)
            for key, r in todo.items()
        ],
        ERASURE_LOG.ddl,
    )
    insert_new(spark, rows, log_path, ("tenant_id", "customer_id"))
    return [Erasure(request, per_customer[key]) for key, request in todo.items()]


def erasure_requests_in_bronze(
    spark: SparkSession, warehouse: str, after: int | None = None, upto: int | None = None
) -> list[ErasureRequest]:
    """`CustomerErasureRequested` events in bronze whose customer is not in the erasure log yet: among the
    events landed by the commits after version `after` up to `upto`, or in all of bronze (`after` None,
    or when the change feed cannot tell)."""
    from jobs.incremental import bronze_changes

    changes = bronze_changes(spark, warehouse, after, upto) if after is not None and upto is not None else None
    landed = read_table(spark, BRONZE_EVENTS, warehouse) if changes is None else changes
    customer_id = F.coalesce(
        F.get_json_object("data", "$.customer_id"), F.regexp_extract("stream_id", r"^customer-(.+)$", 1)
    )
    events = (
        landed.filter(F.col("event_type") == ERASURE_EVENT)
        .select("tenant_id", customer_id.alias("customer_id"), F.col("occurred_at").alias("requested_at"), "event_id")
        .filter(F.col("customer_id") != "")
    )
    logged = read_table(spark, ERASURE_LOG, warehouse).select("tenant_id", "customer_id")
    pending = events.join(logged, on=["tenant_id", "customer_id"], how="left_anti").collect()
    if changes is not None:
        changes.unpersist()
    return [ErasureRequest(r["tenant_id"], r["customer_id"], r["requested_at"], SOURCE_EVENT, r["event_id"]) for r in pending]


def apply_erasure_events(spark: SparkSession, warehouse: str, master: MasterKey) -> list[Erasure]:
    """Honour the erasure requests landed since the last pass (all of bronze's on the first), then
    record the bronze version this pass read up to. A pass stopped before its record is redone whole
    by the next (erasing is idempotent)."""
    from jobs.incremental import bronze_version

    upto = bronze_version(spark, warehouse)
    checks_path = ensure_table(spark, ERASURE_CHECKS, warehouse)
    after = spark.read.format("delta").load(checks_path).agg(F.max("bronze_version")).first()[0]
    if after == upto:  # nothing landed since the last pass
        return []
    if after is not None and after > upto:  # bronze was made anew since: its versions count from 0 again
        after = None
    requests = erasure_requests_in_bronze(spark, warehouse, after, upto)
    erased = erase(spark, warehouse, master, requests)
    row = spark.createDataFrame([(upto, len(requests), datetime.now(timezone.utc))], ERASURE_CHECKS.ddl)
    write(spark, row, checks_path, "append")
    return erased


def personal_values(spark: SparkSession, warehouse: str, master: MasterKey, tenant_id: str, customer_id: str) -> set[str]:
    """Every personal value and address of a customer that bronze still holds readable (empty once
    erased): what an operator answering an access request, or a test, reads."""
    keys = _customer_keys(spark, ensure_table(spark, DATA_KEYS, warehouse), master, [(tenant_id, customer_id)])
    return _addresses_of(spark, warehouse, keys).get((tenant_id, customer_id), set())


def _customer_keys(
    spark: SparkSession, keys_path: str, master: MasterKey, customers: list[tuple[str, str]]
) -> dict[tuple[str, str], DataKey]:
    """The live data keys of these customers (customers without one, or already erased, are left out)."""
    wanted = spark.createDataFrame([(t, CUSTOMER, c) for t, c in customers], "tenant_id STRING, kind STRING, subject STRING")
    rows = (
        spark.read.format("delta").load(keys_path)
        .join(F.broadcast(wanted), on=["tenant_id", "kind", "subject"], how="inner")
        .filter(F.col("wrapped_key").isNotNull())
        .select("tenant_id", "subject", "key_id", "wrapped_key")
        .collect()
    )
    return {
        (row["tenant_id"], row["subject"]): DataKey(row["key_id"], master.unwrap(row["key_id"], bytes(row["wrapped_key"])))
        for row in rows
    }


def personal_rows(events: DataFrame) -> DataFrame:
    """The events (bronze rows) that hold an encrypted value, as PERSONAL_EVENTS keeps them."""
    holds = F.col("data").contains(TOKEN_PREFIX) | F.col("metadata").contains(TOKEN_PREFIX)
    return events.filter(holds).select(*_PERSONAL_COLUMNS)


def ensure_personal_events(spark: SparkSession, warehouse: str) -> str:
    """PERSONAL_EVENTS' path. A warehouse whose bronze was landed before the table existed (or whose
    table was deleted) gets it in one commit, from one scan of bronze, before anything else may read it."""
    path = PERSONAL_EVENTS.path(warehouse)
    bronze = read_table(spark, BRONZE_EVENTS, warehouse)
    # One commit, that creates the table with every personal row of bronze in it (nothing if it exists).
    personal_rows(bronze).write.format("delta").mode("ignore").save(path)
    return path


def _addresses_of(spark: SparkSession, warehouse: str, keys: dict[tuple[str, str], DataKey]) -> dict[tuple[str, str], set[str]]:
    """Every value and e-mail address held under these customers' keys, anywhere in bronze (searched in
    PERSONAL_EVENTS, its events that hold encrypted values) or in quarantine."""
    if not keys:
        return {}
    owner_of = {key.key_id: customer for customer, key in keys.items()}
    tenants = sorted({tenant for tenant, _ in keys})
    # One expression whatever the number of keys (a first landing may honour a thousand requests): a
    # search per key would cost a thousand passes over each text.
    pattern = TOKEN_PREFIX + "(" + "|".join(sorted(owner_of)) + "):"
    texts: list[str] = []
    personal = spark.read.format("delta").load(ensure_personal_events(spark, warehouse))
    for table, columns in ((personal, ("data", "metadata")), (read_table(spark, QUARANTINE, warehouse), ("raw_text", "reason"))):
        if "tenant_id" in table.columns:  # data keys belong to one tenant each
            table = table.filter(F.col("tenant_id").isin(tenants))
        holds = reduce(lambda a, b: a | b, [F.col(column).rlike(pattern) for column in columns])
        hits = table.select(*columns).filter(holds).collect()  # one scan of the table
        texts.extend(row[column] for row in hits for column in columns if row[column] is not None)
    found: dict[tuple[str, str], set[str]] = {}
    for text in texts:
        for key_id, body in tokens_in(text):
            if key_id not in owner_of:
                continue
            value = keys[owner_of[key_id]].decrypt(body)
            # The value itself (a personal field without a customer is keyed by it) and any address in it.
            found.setdefault(owner_of[key_id], set()).update({str(value), *addresses_in(str(value))})
    return found


def _tombstone(spark: SparkSession, keys_path: str, subjects: list[Subject], erased_at: datetime) -> None:
    """One commit: each subject's key deleted (its row kept, key NULL), or a tombstone inserted."""
    unique = sorted({(s.tenant_id, s.kind, s.subject) for s in subjects})
    rows = spark.createDataFrame(
        [(new_key()[0], t, k, s, None, erased_at, erased_at) for t, k, s in unique], DATA_KEYS.ddl
    )
    view = "_erasure_tombstones"
    rows.createOrReplaceTempView(view)
    spark.sql(
        f"MERGE INTO {quoted_path(keys_path)} t USING {view} s "
        "ON t.tenant_id = s.tenant_id AND t.kind = s.kind AND t.subject = s.subject "
        "WHEN MATCHED AND t.wrapped_key IS NOT NULL THEN UPDATE SET wrapped_key = NULL, erased_at = s.erased_at "
        "WHEN NOT MATCHED THEN INSERT *"
    )
    spark.catalog.dropTempView(view)


def _anyone_erased(spark: SparkSession, warehouse: str) -> bool:
    """Whether the erasure log exists: `erase` creates it before logging anyone. Asked of the file system
    the warehouse is on (jobs/storage.py): a local check would answer "nobody" for any other, and
    erasures would then neither reach the marts nor ever be marked physical."""
    return storage.is_dir(spark, f"{ERASURE_LOG.path(warehouse)}/_delta_log")


def mark_physical(spark: SparkSession, warehouse: str, vacuumed_before: datetime, earliest_keys_version: int) -> int:
    """Erasures whose key files VACUUM has deleted (erased before its cutoff) and whose older key-table
    versions the log cleanup has removed: `physical_at` is set now. Returns how many."""
    log_path = ERASURE_LOG.path(warehouse)
    if not _anyone_erased(spark, warehouse):
        return 0
    pending = (
        spark.read.format("delta").load(log_path)
        .filter(F.col("physical_at").isNull() & (F.col("erased_at") <= F.lit(vacuumed_before)) & (F.col("keys_table_version") <= earliest_keys_version))
        .count()
    )
    if pending:
        # The session's time zone is UTC (jobs/spark.py), so a TIMESTAMP literal is read as UTC.
        cutoff = vacuumed_before.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        spark.sql(
            f"UPDATE {quoted_path(log_path)} SET physical_at = current_timestamp() "
            f"WHERE physical_at IS NULL AND erased_at <= TIMESTAMP '{cutoff}' "
            f"AND keys_table_version <= {int(earliest_keys_version)}"
        )
    return pending


def erasure_summary(spark: SparkSession, warehouse: str) -> DataFrame:
    """The erasure log for `status`: one row per erased customer, newest first, with its state."""
    return (
        read_table(spark, ERASURE_LOG, warehouse)
        .withColumn("state", F.when(F.col("physical_at").isNull(), "pending_physical").otherwise("physical"))
        .select("tenant_id", "customer_id", "source", "requested_at", "erased_at", "physical_at", "state")
        .orderBy(F.desc("erased_at"), "tenant_id", "customer_id")
    )


def with_erasures_outside_the_event_log(spark: SparkSession, warehouse: str, erasure_events: DataFrame) -> DataFrame:
    """Silver's `CustomerErasureRequested` rows plus one per erasure requested outside the event log
    (`erase`), shaped like them, so that every projection (customer_360's `is_erased`) sees both.
    Columns an event would have and a command has not (stream version, source file, ...) are null;
    `occurred_at` is 1970-01-01 and `recorded_at` the request's time."""
    if not _anyone_erased(spark, warehouse):
        return erasure_events
    requested = read_table(spark, ERASURE_LOG, warehouse).filter(F.col("source") == SOURCE_CLI)
    known = {
        "event_id": F.concat(F.lit("erasure-log:"), "tenant_id", F.lit(":"), "customer_id"),
        "tenant_id": F.col("tenant_id"),
        "stream_id": F.concat(F.lit("customer-"), "customer_id"),
        "stream_type": F.lit("customer"),
        "event_type": F.lit(ERASURE_EVENT),
        "schema_version": F.lit(1),
        # A request from outside the event log has no place on the events' timeline, and an erasure
        # holds for every as-of time: marts keep events up to their as-of time, so it goes first.
        "occurred_at": F.lit("1970-01-01 00:00:00").cast("timestamp"),
        "recorded_at": F.col("requested_at"),
        "customer_id": F.col("customer_id"),
    }
    shaped = requested.select(
        *(known.get(field.name, F.lit(None)).cast(field.dataType).alias(field.name) for field in erasure_events.schema.fields)
    )
    return erasure_events.unionByName(shaped)
