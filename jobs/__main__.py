"""`python -m jobs <command>`: the operator interface (see README)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from jobs.config import ConfigError, Settings, load_settings
from jobs.marts import MART_NAMES  # names only; imports no Spark
from jobs.orchestration import ParamError  # imports no Spark

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
    except ParamError as error:
        # A wrong argument (a backfill range, its marts), refused before anything ran: a usage error.
        print(f"refused: {error}", file=sys.stderr)
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

    build = command("build", _build, "bring silver up to date and stage every enabled mart for a run")
    build.add_argument("--run-id", required=True)
    build.add_argument("--full", action="store_true", help="rebuild silver and every mart from all events")
    validate = command("validate", _validate, "validate a run's staged marts (Great Expectations)")
    validate.add_argument("--run-id", required=True)
    publish = command("publish", _publish, "publish a run's validated marts to gold")
    publish.add_argument("--run-id", required=True)

    run = command("run", _run, "land, build, validate and publish once")
    run.add_argument("--landing", type=Path, help="folder of event files (default: landing.folder in conf/)")
    run.add_argument("--run-id")
    run.add_argument("--full", action="store_true", help="rebuild silver and every mart from all events")

    backfill = command(
        "backfill", _backfill, "restate the marts' days in a range from all events, validate and publish"
    )
    backfill.add_argument("--start", required=True, type=dt.date.fromisoformat, help="first UTC day (YYYY-MM-DD)")
    backfill.add_argument("--end", required=True, type=dt.date.fromisoformat, help="last UTC day, inclusive")
    backfill.add_argument("--marts", type=lambda text: [m.strip() for m in text.split(",") if m.strip()], help="comma-separated (default: every enabled mart)")
    backfill.add_argument("--run-id")

    replay = command(
        "replay", _replay, "rebuild the marts as of a time into <warehouse>/replays/ (published marts untouched)"
    )
    replay.add_argument("--as-of", required=True, type=dt.datetime.fromisoformat, help="ISO-8601 with offset, e.g. 2026-01-20T00:00:00+00:00")

    maintain = command("maintain", _maintain, "OPTIMIZE and VACUUM every Delta table of the warehouse")
    maintain.add_argument("--retention-hours", type=int, help="hours of old files to keep (default: conf maintenance.retention_hours)")
    maintain.add_argument("--force", action="store_true", help="allow a retention below maintenance.min_retention_hours")

    rollback = command(
        "rollback", _rollback, "restore a published mart to an earlier logged publication (a new Delta commit, logged)"
    )
    rollback.add_argument("mart", choices=MART_NAMES, metavar="MART", help=f"one of: {', '.join(MART_NAMES)}")
    rollback.add_argument("--to", type=int, required=True, dest="to_version", metavar="VERSION",
                          help="the Delta table version of a logged publication (python -m jobs status lists them)")
    rollback.add_argument("--major", type=_positive_int, help="the contract major version's table (default: the current contract's)")

    serve = command("serve", _serve, "serve the published marts to BI tools over the HiveServer2 protocol (until stopped)")
    serve.add_argument("--host", help="address to listen on (default: serve.host in conf/)")
    serve.add_argument("--port", type=_positive_int, help="port to listen on (default: serve.port in conf/)")

    bi_login = command("bi-login", _bi_login, "add or replace a BI login (user -> tenant) in serve.credentials_file")
    bi_login.add_argument("--user", required=True)
    bi_login.add_argument("--tenant", required=True, help="the tenant_id whose rows this login reads")
    bi_login.add_argument("--password-stdin", action="store_true", help="read the password from standard input instead of a prompt")

    export = command("export", _export, "write a Hyper, Parquet or CSV snapshot of published marts")
    export.add_argument("marts", nargs="+", metavar="MART", help="published table names, e.g. orders basket_daily")
    export.add_argument("--format", required=True, choices=("hyper", "parquet", "csv"))
    export.add_argument("--tenant", help="only this tenant's rows")
    export.add_argument("--version", type=int, help="a published Delta table version (default: the latest publication)")
    export.add_argument("--out", type=Path, required=True, help="folder to write into")


    erase = command("erase", _erase, "erase a customer's personal data (a request from outside the event log)")
    erase.add_argument("--tenant", required=True)
    erase.add_argument("--customer", required=True)

    command("status", _status, "show publications, rollbacks, the landing ledger and erasures")
    command("demo", _demo, f"simulate three weeks of two tenants into {DEMO_DIR}/ and publish the marts")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _writing(settings: Settings, *groups: str):
    """Hold the writer leases of the table groups a command writes (jobs/writer_lock.py)."""
    from jobs.writer_lock import holding

    return holding(settings, groups)


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

    with _writing(settings, "bronze"):
        pipeline.land(settings, args.landing or Path(settings.landing.folder), args.run_id or pipeline.new_run_id())


def _build(settings: Settings, args) -> None:
    from jobs import pipeline

    with _writing(settings, "marts"):
        pipeline.build(settings, args.run_id, full=args.full)


def _validate(settings: Settings, args) -> None:
    from jobs import pipeline

    with _writing(settings, "marts"):
        pipeline.validate(settings, args.run_id)


def _publish(settings: Settings, args) -> None:
    from jobs import pipeline

    with _writing(settings, "marts"):
        pipeline.publish(settings, args.run_id)


def _run(settings: Settings, args) -> None:
    from jobs import pipeline

    with _writing(settings, "bronze", "marts"):
        pipeline.run(settings, args.landing or Path(settings.landing.folder), args.run_id, full=args.full)


def _backfill(settings: Settings, args) -> None:
    from jobs import pipeline
    from jobs.orchestration import backfill_request

    # The same checks as the backfill DAG's params, before anything starts.
    request = backfill_request(settings, args.start, args.end, args.marts)
    run_id = args.run_id or pipeline.new_run_id()
    with _writing(settings, "marts"):
        pipeline.backfill(settings, run_id, request.start, request.end, list(request.marts))
        pipeline.validate(settings, run_id)
        pipeline.publish(settings, run_id)


def _replay(settings: Settings, args) -> None:
    from jobs import pipeline

    with _writing(settings, "marts"):
        replayed = pipeline.replay(settings, args.as_of)
    for mart, path in replayed.items():
        print(f"{mart}: {path}")


def _maintain(settings: Settings, args) -> None:
    from jobs.maintenance import maintain

    with _writing(settings, "bronze", "marts"):
        tables = maintain(settings, args.retention_hours, force=args.force)
    print(f"maintained {len(tables)} tables under {settings.warehouse}")


def _rollback(settings: Settings, args) -> None:
    from jobs.publications import rollback

    entry = rollback(settings, args.mart, args.to_version, args.major)
    if entry is not None:
        print(f"{entry.table.sql_name}: version {args.to_version} restored as version {entry.table_version} ({entry.row_count} rows)")


def _serve(settings: Settings, args) -> None:
    import dataclasses

    from jobs.bi.server import serve

    listen = {key: value for key, value in (("host", args.host), ("port", args.port)) if value is not None}
    serve(dataclasses.replace(settings, serve=dataclasses.replace(settings.serve, **listen)))


def _bi_login(settings: Settings, args) -> None:
    import getpass

    from jobs.bi.logins import hash_password, write_login

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(f"password for {args.user}: ")
    path = write_login(Path(settings.serve.credentials_file), hash_password(args.user, args.tenant, password))
    print(f"login {args.user} reads tenant {args.tenant}'s rows; saved in {path} (restart serve to use it)")


def _export(settings: Settings, args) -> None:
    from jobs.bi.export import export

    extracts = export(settings, args.marts, args.format, args.out, tenant=args.tenant, version=args.version)
    for extract in extracts:
        print(f"{args.out / extract.file}: {extract.rows} rows of {extract.table} version {extract.table_version}")


def _erase(settings: Settings, args) -> None:
    from jobs.privacy.cli import erase_customer

    # It writes what landing writes (the keys table; bronze/personal_events on an older warehouse).
    with _writing(settings, "bronze"):
        message = erase_customer(settings, args.tenant, args.customer)
    print(message)


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
    with _writing(settings, "bronze", "marts"):
        pipeline.run(settings, landing)
    print_demo_summary(settings)


if __name__ == "__main__":
    sys.exit(main())
