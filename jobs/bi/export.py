"""`python -m jobs export`: a Tableau Hyper extract, or a Parquet or CSV snapshot, of a published
version of one or more marts, optionally limited to one tenant.

The version is a Delta table version the publication log records for the table (default: its latest
publication), read by Delta time travel, so an extract always holds validated, published rows.
Each file is named `<table>-v<table version>[-tenant-<tenant>].<format>`; `export.json` beside the
files says what each holds.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from pyspark.sql import functions as F

from jobs.bi.catalog import publication_versions, published_tables
from jobs.config import Settings
from jobs.spark import get_spark

log = logging.getLogger("jobs")
FORMATS = ("hyper", "parquet", "csv")


class ExportError(ValueError):
    """An unknown mart, tenant or version, or a request that cannot be met; the message says which."""


@dataclass(frozen=True)
class Extract:
    table: str
    mart: str
    contract_version: str
    table_version: int
    tenant_id: str | None
    rows: int
    file: str


def export(
    settings: Settings,
    tables: list[str],
    fmt: str,
    out: Path,
    *,
    tenant: str | None = None,
    version: int | None = None,
    progress: Callable[[str], None] = log.info,
) -> list[Extract]:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if version is not None and len(tables) != 1:
        raise ExportError("--version names one table's version: export one mart at a time with it")
    spark = get_spark(settings)
    published = {table.sql_name: table for table in published_tables(spark, settings)}
    unknown = [name for name in tables if name not in published]
    if unknown:
        raise ExportError(f"no published mart named {', '.join(unknown)}; published: {', '.join(sorted(published)) or 'none yet'}")
    frames = {}
    for name in tables:
        table = published[name]
        chosen = table.table_version if version is None else version
        if chosen not in publication_versions(spark, settings, name):
            versions = ", ".join(map(str, publication_versions(spark, settings, name)))
            raise ExportError(f"{name} has no published version {chosen}; published versions: {versions}")
        frame = spark.read.format("delta").option("versionAsOf", chosen).load(table.table_path)
        if tenant is not None:
            frame = frame.filter(F.col("tenant_id") == F.lit(tenant))
        frames[name] = (table, chosen, frame.toArrow())
    if tenant is not None and not any(arrow.num_rows for _table, _version, arrow in frames.values()):
        raise ExportError(f"tenant {tenant!r} has no rows in {', '.join(tables)} at the version(s) asked for")

    out.mkdir(parents=True, exist_ok=True)
    extracts = []
    for name, (table, chosen, arrow) in frames.items():
        stem = f"{name}-v{chosen}" + (f"-tenant-{tenant}" if tenant is not None else "")
        target = out / f"{stem}.{fmt}"
        _WRITERS[fmt](arrow, target)
        extracts.append(Extract(name, table.mart, table.contract_version, chosen, tenant, arrow.num_rows, target.name))
        progress(f"wrote {target}: {arrow.num_rows} rows of {name} version {chosen}")
    manifest = out / "export.json"
    manifest.write_text(json.dumps([asdict(extract) for extract in extracts], indent=2) + "\n")
    return extracts


def _write_parquet(arrow, target: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(arrow, target)


def _write_csv(arrow, target: Path) -> None:
    import pyarrow.csv as pcsv

    pcsv.write_csv(arrow, target)


def _write_hyper(arrow, target: Path) -> None:
    """Hyper reads the Parquet snapshot itself, keeping its types; the table is "Extract"."Extract",
    the name Tableau opens by default."""
    import tempfile

    from tableauhyperapi import Connection, CreateMode, HyperProcess, Telemetry, escape_string_literal

    with tempfile.TemporaryDirectory(prefix="hyper-export-") as scratch:
        parquet = Path(scratch) / "snapshot.parquet"
        _write_parquet(arrow, parquet)
        target.unlink(missing_ok=True)
        parameters = {"log_dir": scratch}
        with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters=parameters) as hyper:
            with Connection(hyper.endpoint, str(target), CreateMode.CREATE_AND_REPLACE) as connection:
                connection.catalog.create_schema("Extract")
                connection.execute_command(
                    f'CREATE TABLE "Extract"."Extract" AS (SELECT * FROM external({escape_string_literal(str(parquet))}))'
                )


_WRITERS = {"hyper": _write_hyper, "parquet": _write_parquet, "csv": _write_csv}
