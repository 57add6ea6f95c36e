"""The one Spark session factory: Delta enabled, UTC, settings from configuration."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from jobs.config import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_conf(settings: Settings) -> dict[str, str]:
    """Every Spark setting the project uses, in one place (also used to start Spark servers)."""
    spark = settings.spark
    conf = {
        "spark.app.name": spark.app_name,
        "spark.master": spark.master,
        "spark.driver.memory": spark.driver_memory,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.jars.packages": ",".join(spark.packages),
        "spark.jars.excludes": ",".join(spark.jars_excludes),
        "spark.jars.ivy": spark.ivy_dir,
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        # Marts are dated in UTC; the session time zone decides what to_date() means.
        "spark.sql.session.timeZone": "UTC",
        # Tables are addressed by path; no Hive metastore or derby files in the working folder.
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": f"{settings.warehouse.rstrip('/')}/_spark_sql",
        # Python workers run the interpreter of the job (the project's venv), not whatever is on PATH.
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
    }
    conf.update(spark.extra_conf)
    return conf


def get_spark(settings: Settings) -> "SparkSession":
    """Return the process's Spark session, creating it on first use."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
