"""`python -m benchmarks [--sizes 2.5M,5M,10M] [--hourly-fraction 0.01] [--hourly-runs 3] [--out FILE] ...`
(make bench)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from benchmarks.harness import THREE_MARTS, Options, configure_logging, run, sizes_argument
from jobs.config import PROJECT_ROOT, ConfigError


def main(argv: list[str] | None = None) -> int:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time landing, a full rebuild, an hourly run per history size, and DuckDB's three marts "
        "(issue #8). Long: hours at the default sizes on two cores.",
    )
    parser.add_argument("--sizes", type=sizes_argument, default=defaults.sizes,
                        help="history sizes in events, comma-separated (2500000 or 2.5M; default 2.5M,5M,10M)")
    parser.add_argument("--hourly-fraction", type=float, default=defaults.hourly_fraction,
                        help="the hourly batch, as a fraction of the smallest history (default 0.01)")
    parser.add_argument("--hourly-of", choices=("smallest", "each"), default=defaults.hourly_of,
                        help="the batch is a fraction of the smallest history, the same at every size (default), "
                        "or of each history")
    parser.add_argument("--hourly-runs", type=int, default=defaults.hourly_runs,
                        help="successive hourly runs per size, each with the next batch; the median one is the "
                        "size's figure (default 3)")
    parser.add_argument("--tenants", type=int, default=defaults.tenants, help="simulated merchants (default 4)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--start-date", type=date.fromisoformat, default=defaults.start_date)
    parser.add_argument("--workdir", type=Path, default=defaults.workdir,
                        help="simulated export, landing files and DuckDB's output (default .cache/bench)")
    parser.add_argument("--warehouse-root",
                        help="one warehouse per size under it (default: the workdir when the configuration's "
                        "warehouse is local, else beside it: s3a://lakehouse/warehouse -> s3a://lakehouse/warehouse-bench)")
    parser.add_argument("--out", type=Path, default=defaults.out,
                        help="JSON results (default benchmarks/results/latest.json)")
    parser.add_argument("--env", choices=("local", "ci", "cluster"),
                        help="configuration overlay (default: LAKEHOUSE_ENV, then local)")
    parser.add_argument("--cluster-state", type=Path, default=defaults.cluster_state,
                        help="the state folder of `make cluster-up` (default .cache/cluster): when the configuration's "
                        "master is that cluster's, its processes' memory is sampled with the driver's")
    parser.add_argument("--marts", type=_marts,
                        help="build only these marts, comma-separated (default: marts.enabled in conf/); must include "
                        "orders, basket_daily and customer_360. Partial figures: for quick checks, not the issue's")
    parser.add_argument("--event-log", type=Path,
                        help="write Spark's event log into this folder, for python -m benchmarks.stage_profile "
                        "(where each phase's time went: the driver or the task slots)")
    parser.add_argument("--keep", action="store_true", help="keep the export and each size's warehouse")
    parser.add_argument("--sample-seconds", type=float, default=defaults.sample_seconds,
                        help="memory sampling interval (default 0.25)")
    args = parser.parse_args(argv)
    if not 0 < args.hourly_fraction <= 1:
        parser.error(f"--hourly-fraction must be in (0, 1], got {args.hourly_fraction}")
    if args.hourly_runs < 1:
        parser.error(f"--hourly-runs must be at least 1, got {args.hourly_runs}")
    if args.tenants < 1:
        parser.error(f"--tenants must be at least 1, got {args.tenants}")
    options = Options(
        sizes=args.sizes,
        hourly_fraction=args.hourly_fraction,
        hourly_of=args.hourly_of,
        hourly_runs=args.hourly_runs,
        tenants=args.tenants,
        seed=args.seed,
        start_date=args.start_date,
        workdir=_absolute(args.workdir),
        warehouse_root=args.warehouse_root,
        cluster_state=_absolute(args.cluster_state),
        out=_absolute(args.out),
        env=args.env,
        keep=args.keep,
        sample_seconds=args.sample_seconds,
        marts=args.marts,
        event_log=_absolute(args.event_log) if args.event_log else None,
    )
    configure_logging()
    try:
        run(options)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    return 0


def _marts(text: str) -> tuple[str, ...]:
    from jobs.marts import MART_NAMES

    marts = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in marts if name not in MART_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown mart(s) {', '.join(unknown)}; marts: {', '.join(MART_NAMES)}")
    missing = [name for name in THREE_MARTS if name not in marts]
    if missing:
        raise argparse.ArgumentTypeError(f"the DuckDB comparison needs {', '.join(missing)} too")
    return marts


def _absolute(path: Path) -> Path:
    """Relative paths are relative to the project folder, like conf/'s."""
    return path if path.is_absolute() else PROJECT_ROOT / path


if __name__ == "__main__":
    sys.exit(main())
