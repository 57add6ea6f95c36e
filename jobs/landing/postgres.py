"""Landing from an event-store table in PostgreSQL, read incrementally by global position over Spark JDBC.

Each chunk of rows read (in position order, at most `batch_size` rows) is one unit of the ledger,
`postgres:<source name>:<first position>-<last position>`, landed through the same path as a file:
every row is checked against the envelope contract, so a bad row is quarantined with its reason and
its position as line number, and rows read = landed + duplicates + quarantined.

Where to resume is read from the ledger, never kept elsewhere: after the highest last position of
this source's chunks. A rerun therefore reads nothing new, and rows appended since are read next.
A run stopped between a chunk's bronze and ledger commits reads the same rows again as the same
chunk, which the common landing path counts as landed, not as duplicates.

A database that goes away mid-landing (stopped, or silent behind a dropped network) ends the run with
`PostgresReadError` naming the source and the position it stopped after, within the connect and read
timeouts (the JDBC driver waits for ever for an answer to a query by default, so a server that stops
answering would hang the run). The chunks landed before stay landed; the next run resumes after them.

Which column holds which envelope field is configuration (`columns`: SQL expressions, so a cast or a
`jsonb_build_object` is a mapping too), with named Python functions (`transforms`) for what SQL
says badly, such as turning Marten's snake_case event type alias back into the catalog's name.
See docs/sources.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from jobs.events import ENVELOPE_FIELDS  # a plain tuple; imports no Spark

# Spark and the landing path are imported where used: jobs.config imports the settings class above
# without starting anything heavy.
if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from jobs.landing.files import LandingReport, ParsedSource, Progress
    from jobs.landing.parse import ParsedEvent, Rejection

# Fields that the database holds as JSON (json/jsonb arrive as text over JDBC).
JSON_FIELDS = ("data", "metadata")

SOURCE_PREFIX = "postgres"
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# Microseconds and an offset: what the envelope contract asks of a timestamp.
_ISO_TIMESTAMP = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"


@dataclass(frozen=True)
class PostgresSourceSettings:
    """One event-store table (or view, or join) in PostgreSQL, as configuration describes it."""

    # Names this source's chunks in the ledger (`postgres:<source_name>:<first>-<last>`); never rename a
    # source that has landed, or it starts again from the beginning.
    source_name: str
    url: str  # jdbc:postgresql://host:port/database
    # What follows FROM: a table, a view, or a join (then qualify the columns in `columns` and `where`).
    table: str
    user: str
    # The NAME of the environment variable holding the password; "" for none. Secrets never sit in conf/.
    password_env: str = ""
    # Envelope field -> SQL expression, for the fields whose column is not named like the field.
    columns: dict[str, str] = field(default_factory=dict)
    # Envelope field -> name of a function of TRANSFORMS, applied in Python after reading.
    transforms: dict[str, str] = field(default_factory=dict)
    # An extra SQL condition on the rows to land, e.g. `type <> 'tombstone'` or a high-water mark.
    where: str = ""
    # Rows per chunk: bounds what the driver holds at once; each chunk is one landing commit set.
    batch_size: int = 50_000
    # Seconds to open a connection and log in, and seconds to wait for any reply while reading: past
    # them the run fails naming the source instead of hanging on a server that stopped answering.
    connect_timeout_seconds: int = 30
    read_timeout_seconds: int = 300

    def __post_init__(self) -> None:
        problems = []
        if not _SOURCE_NAME.match(self.source_name):
            problems.append(f"source_name {self.source_name!r} must be letters, digits, '_', '.' or '-'")
        if not self.url.startswith("jdbc:postgresql:"):
            problems.append(f"url {self.url!r} must start with jdbc:postgresql:")
        if not self.table.strip():
            problems.append("table is empty")
        for setting, names in (("columns", self.columns), ("transforms", self.transforms)):
            unknown = sorted(set(names) - set(ENVELOPE_FIELDS))
            if unknown:
                fields = ", ".join(ENVELOPE_FIELDS)
                problems.append(f"{setting} names unknown envelope field(s) {unknown}; fields: {fields}")
        unknown_functions = sorted(set(self.transforms.values()) - set(TRANSFORMS))
        if unknown_functions:
            functions = ", ".join(TRANSFORMS)
            problems.append(f"transforms names unknown function(s) {unknown_functions}; functions: {functions}")
        for name in ("batch_size", "connect_timeout_seconds", "read_timeout_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if problems:
            raise ValueError(f"postgres source {self.source_name!r}: " + "; ".join(problems))

    @property
    def server(self) -> str:
        """The URL without its properties (`?…` may hold credentials): what error messages name."""
        return self.url.split("?", 1)[0]

    def column_expressions(self) -> dict[str, str]:
        """Every envelope field's SQL expression: the configured ones, else the column of the field's name."""
        return {name: self.columns.get(name, name) for name in ENVELOPE_FIELDS}

    def password(self, environ: Mapping[str, str]) -> str | None:
        """The password, looked up by name in the environment the configuration loader was given."""
        if not self.password_env:
            return None
        if self.password_env not in environ:
            raise ValueError(
                f"postgres source {self.source_name!r}: environment variable {self.password_env} is not set"
            )
        return environ[self.password_env]


def marten_type_alias(alias: Any) -> Any:
    """Marten's `type` column (`order_created`, the snake_case alias of the .NET class name) as the
    catalog's event type (`OrderCreated`). Aliases of types the catalog does not know are PascalCased
    word by word, so they are kept and reported as unknown types under a readable name."""
    if not isinstance(alias, str):
        return alias
    known = _catalog_by_marten_alias().get(alias)
    if known:
        return known
    return "".join(word[:1].upper() + word[1:] for word in alias.split("_"))


def dotnet_type_name(dotnet_type: Any) -> Any:
    """Marten's `mt_dotnet_type` (`Shop.Events.OrderCreated, Shop.Events`) as the class name alone;
    a nested class (`Outer+Inner`) gives the inner name."""
    if not isinstance(dotnet_type, str):
        return dotnet_type
    return re.split(r"[.+]", dotnet_type.split(",", 1)[0].strip())[-1]


def _marten_alias(type_name: str) -> str:
    # Marten splits the class name before each capital that starts a word, then lowers it:
    # OrderCreated -> order_created, AEvent -> a_event.
    return re.sub(r"(?<!^)([A-Z][a-z]|(?<=[a-z0-9])[A-Z])", r"_\1", type_name).lower()


@cache
def _catalog_by_marten_alias() -> dict[str, str]:
    from jobs.events.catalog import CATALOG

    return {_marten_alias(name): name for name in CATALOG}

# Functions `transforms` may name: each takes one value read from the database and returns the envelope's.
TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "marten_type_alias": marten_type_alias,
    "dotnet_type_name": dotnet_type_name,
}


def land_postgres(
    spark: "SparkSession",
    warehouse: str,
    source: PostgresSourceSettings,
    run_id: str,
    *,
    password: str | None = None,
    progress: "Progress" = lambda message: None,
    master_key: bytes | None = None,
) -> "LandingReport":
    """Land the rows appended to the source's table since the last landed chunk, chunk by chunk
    (personal data encrypted on the way, as for files: `jobs.landing.files.land_chunks`)."""
    from jobs.landing.files import land_chunks

    after = last_landed_position(spark, warehouse, source.source_name)
    progress(f"landing {source.source_name} from PostgreSQL after global position {after}")
    return land_chunks(
        spark, warehouse, _chunks(spark, source, password, after), run_id, progress=progress, master_key=master_key
    )


def last_landed_position(spark: "SparkSession", warehouse: str, source_name: str) -> int:
    """The highest last position of this source's chunks in the ledger; -1 when none has landed."""
    from pyspark.sql import functions as F

    from jobs.tables import LANDING_LEDGER, read_table

    prefix = f"{SOURCE_PREFIX}:{source_name}:"
    pattern = "^" + re.escape(prefix) + r"(\d+)-(\d+)$"
    last = (
        read_table(spark, LANDING_LEDGER, warehouse)
        .filter(F.col("source_file").startswith(prefix))
        .select(F.max(F.regexp_extract("source_file", pattern, 2).cast("bigint")).alias("last_position"))
        .first()["last_position"]
    )
    return -1 if last is None else int(last)


def chunk_query(source: PostgresSourceSettings, after: int) -> str:
    """The rows after a position, in position order, at most one chunk of them, as envelope columns."""
    expressions = source.column_expressions()
    position = f"({expressions['global_position']})"
    select = ",\n  ".join(f'{expression} AS "{name}"' for name, expression in expressions.items())
    condition = f"{position} > {int(after)}" + (f"\n  AND ({source.where})" if source.where.strip() else "")
    return (
        f"SELECT\n  {select}\nFROM {source.table}\nWHERE {condition}\n"
        f"ORDER BY {position}\nLIMIT {int(source.batch_size)}"
    )


def read_chunk(spark: "SparkSession", source: PostgresSourceSettings, password: str | None, after: int) -> "DataFrame":
    """One chunk as a DataFrame of envelope columns, timestamps already rendered as ISO-8601 text."""
    reader = (
        spark.read.format("jdbc")
        .option("url", source.url)
        # Without it, DriverManager may not find the driver Spark loaded from spark.jars.packages.
        .option("driver", "org.postgresql.Driver")
        .option("query", chunk_query(source, after))
        .option("user", source.user)
        .option("fetchsize", min(source.batch_size, 10_000))
        # PgJDBC's properties, in seconds; by default a query that gets no answer waits for ever.
        .option("connectTimeout", source.connect_timeout_seconds)
        .option("loginTimeout", source.connect_timeout_seconds)
        .option("socketTimeout", source.read_timeout_seconds)
    )
    if password is not None:
        reader = reader.option("password", password)
    return reader.load().transform(with_timestamps_as_text)


def with_timestamps_as_text(frame: "DataFrame") -> "DataFrame":
    """Timestamp columns as ISO-8601 text with offset (UTC, the session time zone), like a file line."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType, TimestampType

    def as_text(name: str, data_type: Any) -> "Column":
        if isinstance(data_type, TimestampNTZType):
            # A timestamp without time zone is read as UTC.
            return F.date_format(F.col(name).cast("timestamp"), _ISO_TIMESTAMP).alias(name)
        if isinstance(data_type, TimestampType):
            return F.date_format(F.col(name), _ISO_TIMESTAMP).alias(name)
        return F.col(name)

    return frame.select(*(as_text(f.name, f.dataType) for f in frame.schema.fields))


class PostgresReadError(RuntimeError):
    """The source could not be read (down, silent past the timeouts, refusing the login or the query)."""


def _chunks(
    spark: "SparkSession", source: PostgresSourceSettings, password: str | None, after: int
) -> Iterator[list["ParsedSource"]]:
    # Lazy: the next chunk is read only once the one before has landed, so one chunk is held at a time.
    while True:
        try:
            rows = [row.asDict() for row in read_chunk(spark, source, password, after).collect()]
        except Exception as error:  # noqa: BLE001 - Py4J's and Spark's wrappers of the driver's error
            landed = f"every row up to position {after} is landed" if after >= 0 else "no row of it is landed yet"
            raise PostgresReadError(
                f"postgres source {source.source_name!r} ({source.server}): reading the rows after global "
                f"position {after} failed: {_java_causes(error)}. {landed.capitalize()}; land again once the "
                "database answers, and it resumes there"
            ) from error
        if not rows:
            return
        chunk = parse_rows(source, rows)
        yield [chunk]
        after = max(row["global_position"] for row in rows)


def _java_causes(error: BaseException) -> str:
    """The JVM exception chain under a Py4J or PySpark error, without Spark's own wrappers (whose
    messages repeat the whole stack): e.g. `PSQLException: Connection to host:port refused …`."""
    java = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    causes = []
    try:
        while java is not None and len(causes) < 10:
            causes.append(str(java.toString()).splitlines()[0][:300])
            java = java.getCause()
    except Exception:  # noqa: BLE001 - the JVM may be gone too; the Python message still says something
        pass
    own = [cause for cause in causes if not cause.startswith("org.apache.spark.")]
    if own or causes:
        return " <- ".join(dict.fromkeys(own or causes))
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def parse_rows(source: PostgresSourceSettings, rows: list[dict[str, Any]]) -> "ParsedSource":
    """Rows of one chunk (envelope columns as read) as one ledger unit of parsed events and rejections."""
    from jobs.landing.files import ParsedSource
    from jobs.landing.parse import ParsedEvent

    if not all(isinstance(row["global_position"], int) for row in rows):
        # Resuming and naming chunks rely on it: a configuration error, not a bad row.
        raise TypeError(f"postgres source {source.source_name!r}: the global_position expression must give integers")
    rows = sorted(rows, key=lambda row: row["global_position"])
    first, last = rows[0]["global_position"], rows[-1]["global_position"]
    events, rejections = [], []
    for row in rows:
        outcome = parse_row(source, row)
        (events if isinstance(outcome, ParsedEvent) else rejections).append(outcome)
    return ParsedSource(f"{SOURCE_PREFIX}:{source.source_name}:{first}-{last}", events, rejections, len(rows), None)


def parse_row(source: PostgresSourceSettings, row: dict[str, Any]) -> "ParsedEvent | Rejection":
    """One row checked against the envelope contract, its position as line number, the row as JSON text."""
    from jobs.landing.parse import Rejection, parse_event

    event = {name: _plain(row[name]) for name in ENVELOPE_FIELDS}
    position = event["global_position"]
    bad_json = None
    for name in JSON_FIELDS:
        if isinstance(event[name], str):
            try:
                event[name] = json.loads(event[name])
            except ValueError as error:
                bad_json = bad_json or f"invalid_json: {name}: {error}"
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
    if bad_json:
        return Rejection(position, bad_json, text, event["event_id"] if isinstance(event["event_id"], str) else None)
    for name, function in source.transforms.items():
        event[name] = TRANSFORMS[function](event[name])
    return parse_event(event, line_number=position, text=text)


def _plain(value: Any) -> Any:
    # numeric columns arrive as Decimal; the envelope wants JSON numbers.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
