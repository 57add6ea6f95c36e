"""`python -m jobs <command>`: the operator interface (see README)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from jobs.config import ConfigError, Settings, load_settings

log = logging.getLogger("jobs")

DEMO_DIR = Path("demo")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        settings = load_settings(args.env, warehouse=args.warehouse)
        return args.command(settings, args) or 0
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - the CLI's last word: a readable message, not a trace
        if getattr(args, "verbose", False):
            raise
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1


def _configure_logging() -> None:
    """The project's progress at INFO; libraries (GX, py4j) only when they warn."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    log.setLevel(logging.INFO)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobs",
        description="Event-sourced e-commerce events to validated marketing marts (Delta Lake).",
        epilog="Every command also takes --env, --warehouse and --verbose; `python -m jobs COMMAND --help` for more.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env", choices=("local", "ci", "cluster"), help="configuration overlay (default: LAKEHOUSE_ENV or local)")
    common.add_argument("--warehouse", help="where the Delta tables live (default: LAKEHOUSE_WAREHOUSE, then conf/)")
    common.add_argument("--verbose", action="store_true", help="show full tracebacks")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def command(name: str, function, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(command=function)
        return sub

    command("setup", _setup, "fetch Delta's JVM packages once (make does this) and check Spark starts")

    simulate = command("simulate", _simulate, "write simulated event files (the events.md contract)")
    simulate.add_argument("--out", type=Path, required=True, help="folder to write into")
    simulate.add_argument("--days", type=_positive_int, default=21)
    simulate.add_argument("--tenants", type=_positive_int, default=2)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--start-date", type=dt.date.fromisoformat, default=dt.date(2026, 1, 5), help="first simulated day (YYYY-MM-DD)")
    simulate.add_argument("--gzip", action="store_true", help="write .ndjson.gz files")

    land = command("land", _land, "land new files of a folder into bronze (idempotent)")
    land.add_argument("--landing", type=Path, help="folder of event files (default: landing.folder in conf/)")
    land.add_argument("--run-id")

    build = command("build", _build, "rebuild silver and stage every enabled mart for a run")
    build.add_argument("--run-id", required=True)
    validate = command("validate", _validate, "validate a run's staged marts (Great Expectations)")
    validate.add_argument("--run-id", required=True)
    publish = command("publish", _publish, "publish a run's validated marts to gold")
    publish.add_argument("--run-id", required=True)

    run = command("run", _run, "land, build, validate and publish once")
    run.add_argument("--landing", type=Path, help="folder of event files (default: landing.folder in conf/)")
    run.add_argument("--run-id")

    replay = command(
        "replay", _replay, "rebuild the marts as of a time into <warehouse>/replays/ (published marts untouched)"
    )
    replay.add_argument("--as-of", required=True, type=dt.datetime.fromisoformat, help="ISO-8601 with offset, e.g. 2026-01-20T00:00:00+00:00")

    maintain = command("maintain", _maintain, "OPTIMIZE and VACUUM every Delta table of the warehouse")
    maintain.add_argument("--retention-hours", type=int, help="hours of old files to keep (default: conf maintenance.retention_hours)")
    maintain.add_argument("--force", action="store_true", help="allow a retention below maintenance.min_retention_hours")

    erase = command("erase", _erase, "erase a customer's personal data (a request from outside the event log)")
    erase.add_argument("--tenant", required=True)
    erase.add_argument("--customer", required=True)

    command("status", _status, "show publications, the landing ledger and erasures")
    command("demo", _demo, f"simulate three weeks of two tenants into {DEMO_DIR}/ and publish the marts")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _setup(settings: Settings, args) -> None:
    from jobs.spark import get_spark

    spark = get_spark(settings)
    print(f"Spark {spark.version} with Delta is ready ({settings.spark.ivy_dir})")


def _simulate(settings: Settings, args) -> None:
    from jobs.simulator import SimulatorSettings, simulate

    summary = simulate(
        args.out,
        days=args.days,
        tenants=args.tenants,
        seed=args.seed,
        start_date=args.start_date,
        settings=SimulatorSettings.from_mapping(settings.simulator),
        compress=args.gzip,
        progress=log.info,
    )
    print(f"wrote {summary.events_written} events in {len(summary.files)} files under {args.out}")


def _land(settings: Settings, args) -> None:
    from jobs import pipeline

    pipeline.land(settings, args.landing or Path(settings.landing.folder), args.run_id or pipeline.new_run_id())


def _build(settings: Settings, args) -> None:
    from jobs import pipeline

    pipeline.build(settings, args.run_id)


def _validate(settings: Settings, args) -> None:
    from jobs import pipeline

    pipeline.validate(settings, args.run_id)


def _publish(settings: Settings, args) -> None:
    from jobs import pipeline

    pipeline.publish(settings, args.run_id)


def _run(settings: Settings, args) -> None:
    from jobs import pipeline

    pipeline.run(settings, args.landing or Path(settings.landing.folder), args.run_id)


def _replay(settings: Settings, args) -> None:
    from jobs import pipeline

    for mart, path in pipeline.replay(settings, args.as_of).items():
        print(f"{mart}: {path}")


def _maintain(settings: Settings, args) -> None:
    from jobs.maintenance import maintain

    tables = maintain(settings, args.retention_hours, force=args.force)
    print(f"maintained {len(tables)} tables under {settings.warehouse}")


def _erase(settings: Settings, args) -> None:
    from jobs.privacy.cli import erase_customer

    print(erase_customer(settings, args.tenant, args.customer))


def _status(settings: Settings, args) -> None:
    from jobs.status import print_status

    print_status(settings)


def _demo(settings: Settings, args) -> None:
    import dataclasses

    from jobs import pipeline
    from jobs.simulator import SimulatorSettings, simulate
    from jobs.status import print_demo_summary

    landing = (DEMO_DIR / "landing").resolve()
    if args.warehouse is None:
        settings = dataclasses.replace(settings, warehouse=str((DEMO_DIR / "warehouse").resolve()))
    if landing.is_dir() and any(landing.rglob("*.ndjson*")):
        # The simulator never rewrites a day; a second demo lands the same files (adding nothing).
        log.info("reusing the simulated events under %s (delete it to simulate again)", landing)
    else:
        log.info("simulating 21 days of 2 tenants into %s", landing)
        simulate(
            landing,
            days=21,
            tenants=2,
            seed=7,
            start_date=dt.date(2026, 1, 5),
            settings=SimulatorSettings.from_mapping(settings.simulator),
            progress=log.info,
        )
    pipeline.run(settings, landing)
    print_demo_summary(settings)


if __name__ == "__main__":
    sys.exit(main())
