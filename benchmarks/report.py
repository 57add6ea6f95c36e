"""What a benchmark run reports: the machine, the figures, the issue's targets (#8) with pass/miss and
margin, a printed table, and the JSON document."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from benchmarks.memory import gib

GIB = 2**30
# How a build's silver summary starts (jobs/silver.py): the rest of the build is marts. The harness
# times silver by it, the stage profile splits builds at it.
SILVER = "silver ("


def machine_info() -> dict[str, Any]:
    """Cores, memory, CPU model and load, read from the OS (Linux /proc where it has them)."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": _cpuinfo_field("model name"),
        "memory_bytes": _meminfo_bytes("MemTotal"),
        "memory_available_bytes_at_start": _meminfo_bytes("MemAvailable"),
        "os": f"{platform.system()} {platform.release()}",
        "load_average_at_start": _load_average(),
    }
    return info


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("pyspark", "delta-spark", "great-expectations", "deltalake", "duckdb", "pyarrow", "psutil"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    found["java"] = _java_version()
    return found


def git_state(root: Path) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "modified_files": None if status is None else len(status.splitlines())}


def _cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() == name:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _meminfo_bytes(name: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _java_version() -> str | None:
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stderr or done.stdout).splitlines()
    return lines[0].strip() if lines else None


# --- figures and targets -----------------------------------------------------------------------


def figures(sizes: list[dict[str, Any]], pipeline_peak: int, overall_peak: int) -> dict[str, Any]:
    """The headline figures from the per-size results (smallest and largest history of the run)."""
    if not sizes:
        return {}
    smallest, largest = sizes[0], sizes[-1]
    landing = min(sizes, key=lambda s: s["land_history"]["events_per_second"])
    hourly_small, hourly_large = smallest["hourly"]["total_seconds"], largest["hourly"]["total_seconds"]
    return {
        "smallest_history_events": smallest["history"]["events_landed"],
        "largest_history_events": largest["history"]["events_landed"],
        "landing_events_per_second": landing["land_history"]["events_per_second"],
        "landing_events_per_second_at_history": landing["history"]["events_landed"],
        "full_rebuild_seconds": largest["full_rebuild"]["total_seconds"],
        "full_build_seconds": largest["full_rebuild"]["build_seconds"],
        "hourly_seconds_smallest": hourly_small,
        "hourly_seconds_largest": hourly_large,
        "hourly_growth": (hourly_large / hourly_small - 1) if len(sizes) > 1 else None,
        "hourly_to_full_rebuild": hourly_large / largest["full_rebuild"]["total_seconds"],
        "spark_three_marts_seconds": largest["spark_three_marts"]["build_seconds"],
        "duckdb_three_marts_seconds": largest["duckdb"]["total_seconds"],
        "spark_to_duckdb": largest["spark_three_marts"]["build_seconds"] / largest["duckdb"]["total_seconds"],
        "peak_memory_bytes": pipeline_peak,
        "peak_memory_bytes_whole_run": overall_peak,
    }


@dataclass(frozen=True)
class Target:
    key: str
    description: str
    figure: str  # key in figures
    limit: float
    at_most: bool  # True: value <= limit passes; False: value >= limit passes
    show: Callable[[float], str]

    def evaluate(self, figures: dict[str, Any], sizes: list[dict[str, Any]]) -> dict[str, Any]:
        value = figures.get(self.figure)
        row: dict[str, Any] = {
            "target": self.key,
            "description": self.description.format(**_size_names(sizes)),
            "figure": self.figure,
            "limit": self.limit,
            "comparison": "<=" if self.at_most else ">=",
            "value": value,
        }
        if value is None:
            return {**row, "status": "n/a", "margin": None, "margin_pct": None,
                    "note": "needs at least two history sizes" if self.figure == "hourly_growth" else "not measured"}
        margin = self.limit - value if self.at_most else value - self.limit
        return {
            **row,
            "status": "pass" if margin >= 0 else "miss",
            "margin": margin,  # in the figure's unit: headroom if >= 0, shortfall if < 0
            "margin_pct": 100 * margin / self.limit,
        }


def _size_names(sizes: list[dict[str, Any]]) -> dict[str, str]:
    if not sizes:
        return {"smallest": "?", "largest": "?"}
    return {"smallest": short_count(sizes[0]["target_events"]), "largest": short_count(sizes[-1]["target_events"])}


TARGETS = (
    Target("hourly_growth", "hourly run grows at most 20% from {smallest} to {largest} events of history",
           "hourly_growth", 0.20, True, lambda v: f"{100 * v:+.1f}%"),
    Target("hourly_vs_full", "hourly run at most 25% of a full rebuild at {largest}",
           "hourly_to_full_rebuild", 0.25, True, lambda v: f"{100 * v:.1f}%"),
    Target("spark_vs_duckdb", "full rebuild of orders, basket_daily, customer_360 at most 3x DuckDB at {largest}",
           "spark_to_duckdb", 3.0, True, lambda v: f"{v:.2f}x"),
    Target("landing", "landing at least 100k events per second (slowest history landing)",
           "landing_events_per_second", 100_000, False, lambda v: f"{v:,.0f} ev/s"),
    Target("peak_memory", "peak memory at most 8 GB (Python + Spark JVM, pipeline steps)",
           "peak_memory_bytes", 8 * GIB, True, gib),
)


def evaluate_targets(figures: dict[str, Any], sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [target.evaluate(figures, sizes) for target in TARGETS]


# --- printing -----------------------------------------------------------------------------------


def short_count(n: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if n >= scale:
            text = f"{n / scale:.2f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return str(n)


def sizes_table(sizes: list[dict[str, Any]]) -> str:
    header = ("history", "landed", "land ev/s", "full build", "full total", "3 marts", "DuckDB", "hourly",
              "(land/build/valid./publ.)", "hourly runs", "peak")
    rows = [header]
    for s in sizes:
        hourly = s["hourly"]
        rows.append((
            short_count(s["target_events"]),
            f"{s['history']['events_landed']:,}",
            f"{s['land_history']['events_per_second']:,.0f}",
            f"{s['full_rebuild']['build_seconds']:.1f}s",
            f"{s['full_rebuild']['total_seconds']:.1f}s",
            f"{s['spark_three_marts']['build_seconds']:.1f}s",
            f"{s['duckdb']['total_seconds']:.1f}s",
            f"{hourly['total_seconds']:.1f}s",
            "/".join(f"{hourly[f'{step}_seconds']:.0f}" for step in ("land", "build", "validate", "publish")),
            _runs(hourly),
            gib(s["peak_memory_bytes"]),
        ))
    return _table(rows)


def _runs(hourly: dict[str, Any]) -> str:
    """Every hourly run's total, in the order they ran; the median one (the size's figure) marked."""
    runs = hourly.get("runs") or [hourly]
    return " ".join(f"{run['total_seconds']:.0f}{'*' if run.get('run') == hourly.get('run') else ''}" for run in runs)


def targets_table(targets: list[dict[str, Any]]) -> str:
    shown = {target.key: target.show for target in TARGETS}
    rows = [("target (issue #8)", "value", "limit", "result", "margin")]
    for row in targets:
        show = shown[row["target"]]
        limit = f"{'≤' if row['comparison'] == '<=' else '≥'} {show(row['limit'])}"
        if row["status"] == "n/a":
            rows.append((row["description"], "n/a", limit, "n/a", row.get("note", "")))
            continue
        value = show(row["value"])
        word = "headroom" if row["margin"] >= 0 else ("over" if row["comparison"] == "<=" else "short")
        margin = f"{_plain(abs(row['margin']), row['target'])} {word} ({abs(row['margin_pct']):.0f}% of the limit)"
        rows.append((row["description"], value, limit, row["status"].upper(), margin))
    return _table(rows)


def _plain(amount: float, target: str) -> str:
    if target in ("hourly_growth", "hourly_vs_full"):
        return f"{100 * amount:.1f} points"
    if target == "spark_vs_duckdb":
        return f"{amount:.2f}x"
    if target == "landing":
        return f"{amount:,.0f} ev/s"
    return gib(amount)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_json(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(document, indent=2, default=str) + "\n")
    partial.replace(path)
