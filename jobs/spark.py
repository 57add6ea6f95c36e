"""The one Spark session factory: Delta enabled, UTC, settings from configuration."""

from __future__ import annotations

import fcntl
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping

from jobs.config import ConfigError, Settings, read_secret

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


def hadoop_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Hadoop settings read from the environment (`spark.hadoop_conf_from_env`), e.g. S3 keys."""
    secrets = {}
    for key, env_name in settings.spark.hadoop_conf_from_env.items():
        try:
            secrets[key] = read_secret(env_name, environ)
        except ConfigError:
            raise ConfigError(f"environment variable {env_name} is not set (named by spark.hadoop_conf_from_env."
                              f"{key} of the {settings.env} configuration)") from None
    return secrets


def get_spark(settings: Settings) -> "SparkSession":
    """Return the process's Spark session, creating it on first use."""
    from pyspark.sql import SparkSession

    secrets = hadoop_secrets(settings)  # a missing variable stops the command before Spark starts
    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    with _fetching_packages(settings.spark.ivy_dir):
        session = builder.getOrCreate()
    set_hadoop_secrets(session, secrets)
    return session


@contextmanager
def _fetching_packages(ivy_dir: str) -> Iterator[None]:
    """Hold the ivy folder's lock while Spark starts: a JVM's start fetches `spark.jars.packages` missing
    from that folder, and two processes fetching the same package at once (parallel Airflow tasks or
    tests on a fresh machine) can each write the same jar. Starts on one machine take turns; the lock
    goes with the process."""
    folder = Path(ivy_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".fetch.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def set_hadoop_secrets(session: "SparkSession", secrets: dict[str, str]) -> None:
    """Set `hadoop_secrets` on the running session's Hadoop configuration (also used by the BI endpoint,
    which builds its session itself).

    Set on the running JVM, not passed as spark.hadoop.* settings: pyspark starts the driver JVM with
    every setting on its command line, which any user of the machine can read. Tasks get them with
    the Hadoop configuration Spark ships with each job."""
    hadoop_conf = session.sparkContext._jsc.hadoopConfiguration()
    for key, value in secrets.items():
        hadoop_conf.set(key, value)
