"""Keys and free ports for the local clusters of these tests (scale_out/local_cluster.py)."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from jobs.config import PROJECT_ROOT, Settings, load_settings
from scale_out import local_cluster
from scale_out.local_cluster import Layout

# Throw-away keys for servers that live only on the loopback address for one test module.
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-only-for-these-tests"
KEYS = {local_cluster.ACCESS_KEY_ENV: ACCESS_KEY, local_cluster.SECRET_KEY_ENV: SECRET_KEY}


@dataclass
class RunningCluster:
    layout: Layout
    pids: list[int]
    messages: list[str]  # what `up` said
    up_seconds: float


def settings_on(server: RunningCluster, warehouse: str, **overlay) -> Settings:
    """The `cluster` configuration pointed at this test's s3proxy: what a job or Airflow task would load."""
    spark = {"extra_conf": {"spark.hadoop.fs.s3a.endpoint": server.layout.s3_endpoint}}
    return load_settings("cluster", warehouse=warehouse, overrides={"spark": spark, **overlay})


def cluster_conf(folder: Path, layout, marts: tuple[str, ...] | None) -> Path:
    """The project's configuration, with the cluster overlay pointing at this test's master and S3 server,
    and `marts` enabled in both overlays (None: as configured)."""
    shutil.copytree(PROJECT_ROOT / "conf", folder)
    for name in ("cluster.yaml", "ci.yaml"):
        overlay = yaml.safe_load((folder / name).read_text())
        if name == "cluster.yaml":
            overlay["spark"]["master"] = layout.master_url
            overlay["spark"]["extra_conf"]["spark.hadoop.fs.s3a.endpoint"] = layout.s3_endpoint
        if marts is not None:
            overlay["marts"] = {**overlay.get("marts", {}), "enabled": list(marts)}
        (folder / name).write_text(yaml.safe_dump(overlay))
    return folder


def free_layout(state_dir, *, spark: bool = True) -> Layout:
    """Ports nobody listens on: master, its UI, the two workers' UIs (UI + 1, + 2) and S3 (only S3 without
    `spark`); below Linux's ephemeral range (32768 and up), so no outgoing connection takes one between
    this check and `up`."""
    for _ in range(100):
        master, webui, s3 = random.randrange(20000, 24000), random.randrange(24000, 28000), random.randrange(28000, 32000)
        layout = Layout(state_dir=state_dir, master_port=master, webui_port=webui, s3_port=s3, spark=spark)
        if all(local_cluster.port_is_free(port) for port in layout.ports):
            return layout
    raise RuntimeError("no free ports found")
