"""The one configuration entry point: `conf/base.yaml` plus an environment overlay, validated on load.

Nothing else in the project reads environment variables or configuration files. The environment is
chosen by `LAKEHOUSE_ENV` (`local` by default); `LAKEHOUSE_WAREHOUSE` overrides `warehouse`,
`LAKEHOUSE_BI_CREDENTIALS` overrides `serve.credentials_file`, and `LAKEHOUSE_CONF_DIR` points at
another configuration folder (default: the project's `conf/`). Marketers' segments live apart, in
`<conf>/segments.yaml`, and are checked on every load.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from jobs.landing.postgres import PostgresSourceSettings  # plain settings; imports no Spark
from jobs.segments import Segment, SegmentError  # imports no Spark until a check runs

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONF_DIR = PROJECT_ROOT / "conf"
ENVIRONMENTS = ("local", "ci", "cluster")


class ConfigError(ValueError):
    """A configuration file or value is wrong; the message names the key and the files."""


@dataclass(frozen=True)
class SparkSettings:
    master: str
    app_name: str
    driver_memory: str
    shuffle_partitions: int
    packages: tuple[str, ...]
    jars_excludes: tuple[str, ...]
    ivy_dir: str
    extra_conf: dict[str, str] = field(default_factory=dict)
    # Hadoop settings whose values are secrets (object-store keys), by the NAME of the environment
    # variable holding each; set on the running session (jobs/spark.py), never in conf/ or on a command line.
    hadoop_conf_from_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LandingSettings:
    folder: str
    file_patterns: tuple[str, ...]
    # Event-store tables in PostgreSQL (jobs/landing/postgres.py, docs/sources.md).
    postgres_sources: tuple[PostgresSourceSettings, ...] = ()


@dataclass(frozen=True)
class ValidationSettings:
    data_docs_dir: str
    max_failed_examples: int


@dataclass(frozen=True)
class MartSettings:
    enabled: tuple[str, ...]


@dataclass(frozen=True)
class MaintenanceSettings:
    retention_hours: int
    min_retention_hours: int


@dataclass(frozen=True)
class PublicationSettings:
    # How long a superseded major version of a mart stays supported (jobs/publications.py).
    major_version_support_days: int

    def __post_init__(self) -> None:
        if self.major_version_support_days < 0:
            raise ValueError(f"major_version_support_days must be 0 or more, got {self.major_version_support_days}")


@dataclass(frozen=True)
class ExperimentSettings:
    # The planned traffic split per experiment id (variant -> weight, any positive numbers), against
    # which experiment_results tests for a sample-ratio mismatch; an experiment not named: equal split.
    splits: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for experiment_id, split in self.splits.items():
            if len(split) < 2:
                raise ValueError(f"experiments.splits.{experiment_id} needs at least two variants, got {split}")
            for variant, weight in split.items():
                if not weight > 0:
                    raise ValueError(f"experiments.splits.{experiment_id}.{variant} must be above 0, got {weight}")


@dataclass(frozen=True)
class WriterLockSettings:
    # How long a writer's lease lasts without renewal: a run that dies without releasing it blocks
    # other writers this long at most. Each step of a run renews it.
    lease_minutes: int = 360
    # How long a writer waits for another one to finish before it fails, naming the holder.
    wait_minutes: int = 120

    def __post_init__(self) -> None:
        if self.lease_minutes < 1 or self.wait_minutes < 0:
            raise ValueError(f"writer_lock: lease_minutes must be at least 1 and wait_minutes at least 0, got {self}")


@dataclass(frozen=True)
class ServeSettings:
    """`python -m jobs serve`: the SQL endpoint BI tools connect to (jobs/bi/server.py)."""

    host: str = "127.0.0.1"
    port: int = 10000
    refresh_seconds: int = 60
    # BI logins (user, tenant, password hash); never inside the project folder.
    credentials_file: str = "~/.config/lakehouse/bi_logins.yaml"
    driver_memory: str = "2g"

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"serve.port must be between 1 and 65535, got {self.port}")
        if self.refresh_seconds < 1:
            raise ValueError(f"serve.refresh_seconds must be at least 1, got {self.refresh_seconds}")


@dataclass(frozen=True)
class PrivacySettings:
    """Where the master key comes from (docs/privacy.md). Only names of variables and a path sit in
    conf/; the key itself never does."""

    # Environment variable holding the master key itself (32 bytes, base64).
    master_key_env: str = "LAKEHOUSE_MASTER_KEY"
    # Environment variable holding the path of a file that holds the master key (base64 text).
    master_key_file_env: str = "LAKEHOUSE_MASTER_KEY_FILE"
    # When neither variable is set: this key file, generated on first use (local runs, tests, the demo).
    # "" refuses to run without a configured key.
    local_key_file: str = ""


@dataclass(frozen=True)
class Settings:
    env: str
    warehouse: str
    spark: SparkSettings
    landing: LandingSettings
    validation: ValidationSettings
    marts: MartSettings
    maintenance: MaintenanceSettings
    publication: PublicationSettings
    simulator: dict[str, Any] = field(default_factory=dict)
    experiments: ExperimentSettings = field(default_factory=ExperimentSettings)
    # From <conf>/segments.yaml (load_segments), not from base.yaml.
    segments: tuple[Segment, ...] = ()
    writer_lock: WriterLockSettings = field(default_factory=WriterLockSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    def table_path(self, layer: str, name: str) -> str:
        """Where a Delta table lives: `<warehouse>/<layer>/<name>`."""
        return f"{self.warehouse.rstrip('/')}/{layer}/{name}"

    @property
    def data_docs_dir(self) -> str:
        """Great Expectations Data Docs: relative to the warehouse unless absolute."""
        configured = self.validation.data_docs_dir
        if "://" in configured or Path(configured).is_absolute():
            return configured
        return f"{self.warehouse.rstrip('/')}/{configured}"


def load_settings(
    env: str | None = None,
    *,
    warehouse: str | None = None,
    conf_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read base + overlay, apply explicit overrides, validate, and resolve relative paths.

    Precedence, lowest first: base file, overlay file, environment variables, explicit arguments.
    """
    environ = os.environ if environ is None else environ
    env = env or environ.get("LAKEHOUSE_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {env!r}: choose one of {', '.join(ENVIRONMENTS)}")
    conf_dir = _conf_dir(conf_dir, environ)
    files = [conf_dir / "base.yaml", conf_dir / f"{env}.yaml"]
    merged: dict[str, Any] = {}
    for path in files:
        merged = _deep_merge(merged, _read_yaml(path))
    if environ.get("LAKEHOUSE_WAREHOUSE"):
        merged["warehouse"] = environ["LAKEHOUSE_WAREHOUSE"]
    if warehouse:
        merged["warehouse"] = warehouse
    if environ.get("LAKEHOUSE_BI_CREDENTIALS"):
        merged.setdefault("serve", {})
        merged["serve"] = {**merged["serve"], "credentials_file": environ["LAKEHOUSE_BI_CREDENTIALS"]}
    if overrides:
        merged = _deep_merge(merged, dict(overrides))
    if "segments" in merged:
        raise ConfigError(f"segments are defined in {conf_dir / 'segments.yaml'}, not in {', '.join(map(str, files))}")
    merged["env"] = env
    origin = " + ".join(str(p.relative_to(conf_dir.parent)) if p.is_relative_to(conf_dir.parent) else str(p) for p in files)
    settings = _build(Settings, merged, "", origin)
    _check_marts(settings, origin)
    _check_sources(settings, origin)
    _check_simulator(settings, origin)
    settings = dataclasses.replace(settings, segments=load_segments(conf_dir))
    return _resolve_paths(settings)


def load_segments(conf_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[Segment, ...]:
    """The segments of `<conf>/segments.yaml`, each checked against customer_360's contract without
    Spark (jobs/segments.py); the DAG file calls this at parse time. Raises ConfigError naming the
    file, the segment and the problem."""
    from jobs.segments import contract_columns, parse_definitions

    path = _conf_dir(conf_dir, os.environ if environ is None else environ) / "segments.yaml"
    try:
        return parse_definitions(_read_yaml(path), contract_columns())
    except SegmentError as error:
        raise ConfigError(f"{error} (in {path})") from error


def _conf_dir(conf_dir: Path | None, environ: Mapping[str, str]) -> Path:
    if conf_dir:
        return conf_dir
    return Path(environ["LAKEHOUSE_CONF_DIR"]) if environ.get("LAKEHOUSE_CONF_DIR") else DEFAULT_CONF_DIR


def read_secret(env_name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret that configuration names by its environment variable (secrets never sit in conf/)."""
    if not env_name:
        return None
    environ = os.environ if environ is None else environ
    if env_name not in environ:
        raise ConfigError(f"environment variable {env_name} is not set (named by a password_env setting)")
    return environ[env_name]


class MasterKeyMissing(ConfigError):
    """No master key is configured, so personal data cannot be encrypted; nothing was written."""


def read_master_key(settings: Settings, environ: Mapping[str, str] | None = None) -> bytes:
    """The master key that wraps every data key: from `privacy.master_key_env`, else the file named by
    `privacy.master_key_file_env`, else `privacy.local_key_file` (made on first use). Error messages
    name the source, never the key."""
    from jobs.privacy.crypto import decode_master_key, new_master_key_text

    environ = os.environ if environ is None else environ
    privacy = settings.privacy
    if environ.get(privacy.master_key_env):
        return decode_master_key(environ[privacy.master_key_env], f"environment variable {privacy.master_key_env}")
    if environ.get(privacy.master_key_file_env):
        path = Path(environ[privacy.master_key_file_env])
        if not path.is_file():
            raise MasterKeyMissing(f"{privacy.master_key_file_env} names {path}, which is not a file")
        return decode_master_key(path.read_text(encoding="ascii"), f"file {path} ({privacy.master_key_file_env})")
    if privacy.local_key_file:
        path = Path(privacy.local_key_file)
        if not path.is_absolute():
            path = PROJECT_ROOT / path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created readable by its owner only, and never inside the repository's tracked files.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as key_file:
                key_file.write(new_master_key_text() + "\n")
        return decode_master_key(path.read_text(encoding="ascii"), f"file {path} (privacy.local_key_file)")
    raise MasterKeyMissing(
        f"no master key: set {privacy.master_key_env} (base64 of 32 bytes) or {privacy.master_key_file_env} "
        f"(a file holding it); personal fields cannot be encrypted without it, so nothing was written"
    )


def _check_sources(settings: Settings, origin: str) -> None:
    names = [source.source_name for source in settings.landing.postgres_sources]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"landing.postgres_sources: source_name {repeated[0]!r} is used twice (in {origin})")


def _check_simulator(settings: Settings, origin: str) -> None:
    from jobs.simulator import SimulatorSettings  # standard library only

    try:
        SimulatorSettings.from_mapping(settings.simulator)
    except ValueError as error:
        raise ConfigError(f"{error} (in {origin})") from error


def _check_marts(settings: Settings, origin: str) -> None:
    from jobs.marts import MART_NAMES  # plain names; importing it starts no Spark

    unknown = [name for name in settings.marts.enabled if name not in MART_NAMES]
    if unknown:
        raise ConfigError(f"marts.enabled names unknown mart(s) {unknown} (in {origin}); marts: {', '.join(MART_NAMES)}")


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"configuration file {path} is missing")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level, not {type(content).__name__}")
    return content


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build(cls: type, raw: Any, prefix: str, origin: str) -> Any:
    """Build a settings dataclass from a mapping, refusing unknown, missing and mistyped keys."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, got {raw!r} (in {origin})")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]} (in {origin}); known keys here: {', '.join(sorted(fields))}"
        )
    values = {}
    for name, spec in fields.items():
        key = f"{prefix}{name}"
        if name not in raw:
            if spec.default is not dataclasses.MISSING or spec.default_factory is not dataclasses.MISSING:
                continue
            raise ConfigError(f"missing key {key} (in {origin})")
        values[name] = _coerce(hints[name], raw[name], key, origin)
    try:
        return cls(**values)
    except ConfigError:
        raise
    except ValueError as error:  # a settings class's own checks (__post_init__)
        raise ConfigError(f"{where}: {error} (in {origin})") from error


def _coerce(hint: Any, value: Any, key: str, origin: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{key}.", origin)
    container = typing.get_origin(hint)
    if container is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r} (in {origin})")
        (item_hint, _ellipsis) = typing.get_args(hint)
        return tuple(_coerce(item_hint, item, f"{key}[{i}]", origin) for i, item in enumerate(value))
    if container is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r} (in {origin})")
        key_hint, value_hint = typing.get_args(hint)
        if value_hint is Any:
            return dict(value)
        return {str(k): _coerce(value_hint, v, f"{key}.{k}", origin) for k, v in value.items()}
    if isinstance(hint, types.UnionType):
        raise TypeError(f"settings field {key} uses a union type, which the loader does not support")
    expected = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[hint]
    # bool is a subclass of int in Python: `shuffle_partitions: true` must not pass as 1.
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{key} must be {expected}, got {value!r} (in {origin})")
    if hint is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{key} must be {expected}, got {value!r} (in {origin})")
    if hint in (str, bool) and not isinstance(value, hint):
        raise ConfigError(f"{key} must be {expected}, got {value!r} (in {origin})")
    if hint is int and key.endswith(("partitions", "examples")) and value < 1:
        raise ConfigError(f"{key} must be at least 1, got {value} (in {origin})")
    return float(value) if hint is float else value


def _resolve_paths(settings: Settings) -> Settings:
    """Relative local paths are relative to the project root, so commands work from any folder."""

    def resolve(path: str) -> str:
        if "://" in path or Path(path).is_absolute():
            return path
        return str((PROJECT_ROOT / path).resolve())

    return dataclasses.replace(
        settings,
        warehouse=resolve(settings.warehouse),
        spark=dataclasses.replace(settings.spark, ivy_dir=resolve(settings.spark.ivy_dir)),
        landing=dataclasses.replace(settings.landing, folder=resolve(settings.landing.folder)),
        serve=dataclasses.replace(settings.serve, credentials_file=str(Path(settings.serve.credentials_file).expanduser().absolute())),
    )
