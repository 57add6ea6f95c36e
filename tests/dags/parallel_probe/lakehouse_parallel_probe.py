"""Test-only DAG (tests/dags/test_airflow_postgres.py): two tasks that can only both succeed side by side.

Each task records when it starts, then waits for the other's start mark; run one after the other,
the first would wait in vain and fail. Each also records the Spark master a job started by it would get
from the project's configuration (without starting Spark).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from airflow.sdk import dag, task

WAIT_FOR_PARTNER_S = 60


@task(retries=0)
def meet(name: str, partner: str, params=None) -> None:
    folder = Path(params["folder"])
    started_at = time.time()
    (folder / f"{name}.started").write_text(str(started_at))
    deadline = started_at + WAIT_FOR_PARTNER_S
    while not (folder / f"{partner}.started").exists():
        if time.time() > deadline:
            raise RuntimeError(f"{partner} did not start within {WAIT_FOR_PARTNER_S} s of {name}: no parallelism")
        time.sleep(0.2)
    from jobs.config import load_settings

    spark_master = load_settings().spark.master
    record = {"started_at": started_at, "ended_at": time.time(), "pid": os.getpid(), "spark_master": spark_master}
    (folder / f"{name}.json").write_text(json.dumps(record))


@dag(
    schedule=None,
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    params={"folder": ""},
    tags=["lakehouse", "test"],
    doc_md=__doc__,
)
def lakehouse_parallel_probe():
    meet.override(task_id="left")("left", "right")
    meet.override(task_id="right")("right", "left")


lakehouse_parallel_probe()
