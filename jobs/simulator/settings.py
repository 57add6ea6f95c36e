"""Settings of the event simulator: frozen dataclasses with demo defaults, built from a mapping (the
`simulator:` section of `conf/`) and turned back into one.

Every instance is valid: `__post_init__` checks types and ranges, so settings built in code fail as
early as settings read from YAML. Errors are `ValueError`s that name the key path and the reason.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any, Callable, Mapping

from jobs.simulator.catalog import SWITCHABLE_VERSIONS

# Major units per EUR, for the prices of tenants that sell in another currency.
FX_PER_EUR: Mapping[str, float] = MappingProxyType(
    {"EUR": 1.0, "GBP": 0.86, "USD": 1.08, "CHF": 0.95, "SEK": 11.3, "DKK": 7.46, "NOK": 11.6, "PLN": 4.3}
)


class SettingsError(ValueError):
    """A bad simulator setting; `key` is its dotted path, e.g. `anomalies.broken_line_rate`."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"simulator setting {key!r}: {reason}")
        self.key = key
        self.reason = reason

    def under(self, parent: str) -> "SettingsError":
        """The same error one level down, e.g. `broken_line_rate` under `anomalies`."""
        if self.key == "(root)":
            return SettingsError(parent, self.reason)
        separator = "" if self.key.startswith("[") else "."
        return SettingsError(f"{parent}{separator}{self.key}", self.reason)


# --- field checks -------------------------------------------------------------------------------

Check = Callable[[Any], "str | None"]  # returns why the value is bad, or None


def _rate(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else f"must be a rate between 0 and 1, got {value!r}"


def _positive(value: int) -> str | None:
    return None if value >= 1 else f"must be at least 1, got {value!r}"


def _non_negative(value: int | None) -> str | None:
    return None if value is None or value >= 0 else f"must be 0 or more, got {value!r}"


def _at_most(limit: int) -> Check:
    def check(value: int) -> str | None:
        return None if 1 <= value <= limit else f"must be between 1 and {limit}, got {value!r}"

    return check


def _currencies(value: tuple[str, ...]) -> str | None:
    if not value:
        return "must name at least one currency"
    unknown = [code for code in value if code not in FX_PER_EUR]
    return f"unsupported currency {unknown[0]!r}; known: {', '.join(FX_PER_EUR)}" if unknown else None


def _checked(default: Any, check: Check | None = None, **kwargs: Any) -> Any:
    return field(default=default, metadata={"check": check}, **kwargs)


def _validate_fields(instance: Any) -> None:
    """Type and range checks of every field, by its annotation and its `check` metadata."""
    hints = typing.get_type_hints(type(instance))
    for spec in dataclasses.fields(instance):
        value = getattr(instance, spec.name)
        normalised = _typed(spec.name, value, hints[spec.name])
        if normalised is not value:
            object.__setattr__(instance, spec.name, normalised)
        check = spec.metadata.get("check")
        problem = check(normalised) if check else None
        if problem:
            raise SettingsError(spec.name, problem)


def _typed(key: str, value: Any, hint: Any) -> Any:
    """The value if it has the annotated type (an int is accepted, as float, for a float field)."""
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise SettingsError(key, f"must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise SettingsError(key, f"must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise SettingsError(key, f"must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str) and value:
            return value
        raise SettingsError(key, f"must be a non-empty string, got {value!r}")
    if hint == (int | None):
        return None if value is None else _typed(key, value, int)
    if hint == tuple[str, ...]:
        if isinstance(value, (list, tuple)):
            return tuple(_typed(f"{key}[{i}]", item, str) for i, item in enumerate(value))
        raise SettingsError(key, f"must be a list of strings, got {value!r}")
    return value  # nested settings and structured fields validate themselves


def _reject_unknown_keys(cls: type, mapping: Any, extra: tuple[str, ...] = ()) -> None:
    if not isinstance(mapping, Mapping):
        raise SettingsError("(root)", f"must be a mapping, got {type(mapping).__name__}")
    known = {spec.name for spec in dataclasses.fields(cls)} | set(extra)
    for key in mapping:
        if key not in known:
            raise SettingsError(str(key), f"unknown key; known keys: {', '.join(sorted(known))}")


def _plain(value: Any) -> Any:
    """A YAML/JSON-friendly copy: tuples become lists, nested settings mappings."""
    if hasattr(value, "to_mapping"):
        return value.to_mapping()
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


# --- nested settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BehaviourSettings:
    """How visitors, customers and orders behave. Probabilities are per session unless said otherwise."""

    new_visitor_share: float = _checked(0.6, _rate)  # web sessions of first-time visitors
    order_rate: float = _checked(0.035, _rate)  # base order probability of a session (x channel, customer, experiment)
    abandoned_cart_rate: float = _checked(0.15, _rate)  # sessions without an order that still fill a cart
    registration_rate: float = _checked(0.04, _rate)  # anonymous browsing sessions that register (buyers always do)
    item_removal_rate: float = _checked(0.2, _rate)  # carts with a CartItemRemoved
    over_removal_share: float = _checked(0.1, _rate)  # removals taking out more units than were added
    promotion_rate: float = _checked(0.2, _rate)  # orders with a PromotionApplied
    cancel_before_confirmation_rate: float = _checked(0.03, _rate)  # orders cancelled unconfirmed
    cancel_after_confirmation_rate: float = _checked(0.04, _rate)  # confirmed orders cancelled before shipping
    refund_rate: float = _checked(0.08, _rate)  # delivered orders refunded
    partial_refund_share: float = _checked(0.4, _rate)  # refunds of less than the whole order
    offline_order_share: float = _checked(0.06, _rate)  # phone/marketplace orders (no session, no cart) per web order
    email_change_rate: float = _checked(0.003, _rate)  # per known customer and day
    consent_change_rate: float = _checked(0.004, _rate)  # per known customer and day
    erasure_rate: float = _checked(0.002, _rate)  # per known customer and day
    email_campaign_interval_days: int = _checked(3, _positive)  # a newsletter to consenting customers every n days
    email_open_rate: float = _checked(0.3, _rate)  # per recipient
    email_click_rate: float = _checked(0.25, _rate)  # per opener; a click starts a newsletter/email session
    clock_skew_rate: float = _checked(0.01, _rate)  # events whose producer clock is off (legal disorder)
    max_clock_skew_minutes: int = _checked(5, _at_most(60))  # how far off, at most

    def __post_init__(self) -> None:
        _validate_fields(self)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> "BehaviourSettings":
        _reject_unknown_keys(cls, mapping)
        return cls(**mapping)

    def to_mapping(self) -> dict[str, Any]:
        return {spec.name: _plain(getattr(self, spec.name)) for spec in dataclasses.fields(self)}


@dataclass(frozen=True)
class AnomalySettings:
    """Deliberate contract-edge cases, each at its own rate (see the key list in the module docs)."""

    exact_duplicate_rate: float = _checked(0.005, _rate)  # events delivered again, byte-identical
    conflicting_duplicate_rate: float = _checked(0.002, _rate)  # events delivered again with other content
    late_event_rate: float = _checked(0.005, _rate)  # events recorded 25 h to max_late_days days after they occurred
    max_late_days: int = _checked(3, _at_most(30))
    broken_line_rate: float = _checked(0.002, _rate)  # events followed by a broken copy (bad JSON, types, fields)
    erased_email_broken_line_rate: float = _checked(0.5, _rate)  # erasures preceded by a broken line with the email
    unknown_event_type_rate: float = _checked(0.002, _rate)  # events followed by one of a type not in the catalog
    future_schema_version_rate: float = _checked(0.01, _rate)  # events of 5 types sent in newest version + 1

    def __post_init__(self) -> None:
        _validate_fields(self)
        redelivery = self.exact_duplicate_rate + self.conflicting_duplicate_rate + self.broken_line_rate
        if redelivery > 1.0:
            # One draw per written event decides among the three, so they must fit in one unit.
            raise SettingsError(
                "exact_duplicate_rate",
                f"exact_duplicate_rate + conflicting_duplicate_rate + broken_line_rate must be at most 1, got {redelivery}",
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> "AnomalySettings":
        _reject_unknown_keys(cls, mapping)
        return cls(**mapping)

    def to_mapping(self) -> dict[str, Any]:
        return {spec.name: _plain(getattr(self, spec.name)) for spec in dataclasses.fields(self)}


_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _pairs(key: str, value: Any) -> tuple[tuple[str, float], ...]:
    """{name: number} as a tuple of pairs (hashable, order kept)."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        items = [tuple(p) for p in value]
    else:
        raise SettingsError(key, f"must be a mapping of name to number, got {value!r}")
    pairs = []
    for name, number in items:
        if not isinstance(name, str) or not _SLUG.match(name):
            raise SettingsError(key, f"names must be lower-case slugs, got {name!r}")
        pairs.append((name, _typed(f"{key}.{name}", number, float)))
    if len({name for name, _ in pairs}) != len(pairs):
        raise SettingsError(key, "names must be unique")
    return tuple(pairs)


@dataclass(frozen=True)
class ExperimentSettings:
    """An A/B test decided by a feature flag per visitor (`anonymous_id`), with a true effect."""

    experiment_id: str = "checkout-redesign"
    # Variant name -> split weight (normalised); `control` is the baseline and must be present.
    variants: tuple[tuple[str, float], ...] = (("control", 0.5), ("new_checkout", 0.5))
    # "relative": order probability x (1 + effect); "absolute": order probability + effect.
    effect_kind: str = "relative"
    effects: tuple[tuple[str, float], ...] = (("new_checkout", 0.25),)
    exposure_rate: float = _checked(0.4, _rate)
    contamination_rate: float = _checked(0.01, _rate)
    start_day: int = _checked(0, _non_negative)
    end_day: int | None = _checked(None, _non_negative)

    def __post_init__(self) -> None:
        _validate_fields(self)
        if not _SLUG.match(self.experiment_id):
            raise SettingsError("experiment_id", f"must be a lower-case slug, got {self.experiment_id!r}")
        object.__setattr__(self, "variants", _pairs("variants", self.variants))
        object.__setattr__(self, "effects", _pairs("effects", self.effects))
        names = [name for name, _ in self.variants]
        if "control" not in names or len(names) < 2:
            raise SettingsError("variants", f"must include 'control' and at least one other variant, got {names}")
        if any(weight <= 0 for _, weight in self.variants):
            raise SettingsError("variants", "split weights must be positive")
        if self.effect_kind not in ("relative", "absolute"):
            raise SettingsError("effect_kind", f"must be 'relative' or 'absolute', got {self.effect_kind!r}")
        for name, effect in self.effects:
            if name == "control" or name not in names:
                raise SettingsError("effects", f"{name!r} is not a treated variant of this experiment")
            if not (-1.0 < effect <= 10.0 if self.effect_kind == "relative" else -1.0 <= effect <= 1.0):
                raise SettingsError(f"effects.{name}", f"{effect} is out of range for a {self.effect_kind} effect")
        if self.end_day is not None and self.end_day <= self.start_day:
            raise SettingsError("end_day", f"must be after start_day ({self.start_day}), got {self.end_day}")

    @property
    def split(self) -> tuple[tuple[str, float], ...]:
        """Variants with weights normalised to shares that sum to 1."""
        total = sum(weight for _, weight in self.variants)
        return tuple((name, weight / total) for name, weight in self.variants)

    def effect_of(self, variant: str) -> float:
        return dict(self.effects).get(variant, 0.0)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> "ExperimentSettings":
        _reject_unknown_keys(cls, mapping)
        return cls(**mapping)

    def to_mapping(self) -> dict[str, Any]:
        mapping = {spec.name: _plain(getattr(self, spec.name)) for spec in dataclasses.fields(self)}
        mapping["variants"] = dict(self.variants)
        mapping["effects"] = dict(self.effects)
        return mapping


DEFAULT_EXPERIMENTS: tuple[ExperimentSettings, ...] = (
    ExperimentSettings(),
    ExperimentSettings(
        experiment_id="free-shipping-banner",
        variants=(("control", 0.5), ("banner_top", 0.25), ("banner_cart", 0.25)),
        effect_kind="absolute",
        effects=(("banner_top", 0.01), ("banner_cart", -0.005)),
        exposure_rate=0.25,
        contamination_rate=0.02,
        start_day=3,
    ),
)


@dataclass(frozen=True)
class SchemaSwitch:
    """From `starts` on (a UTC date, or a number of days after the run's start date) the producers
    of `event_type` write `schema_version`."""

    event_type: str
    schema_version: int
    starts: int | date

    def __post_init__(self) -> None:
        key = f"{self.event_type}.{self.schema_version}"
        if self.event_type not in SWITCHABLE_VERSIONS:
            raise SettingsError(
                self.event_type, f"has a single schema version; types with switches: {', '.join(SWITCHABLE_VERSIONS)}"
            )
        if self.schema_version not in SWITCHABLE_VERSIONS[self.event_type]:
            raise SettingsError(
                key, f"{self.event_type} has no schema version {self.schema_version} to switch to "
                f"(switchable: {list(SWITCHABLE_VERSIONS[self.event_type])})"
            )
        if isinstance(self.starts, bool) or not isinstance(self.starts, (int, date)):
            raise SettingsError(key, f"must be a date (YYYY-MM-DD) or a day offset, got {self.starts!r}")
        if isinstance(self.starts, int) and self.starts < 0:
            raise SettingsError(key, f"a day offset must be 0 or more, got {self.starts}")

    def start_date(self, run_start: date) -> date:
        return run_start + timedelta(days=self.starts) if isinstance(self.starts, int) else self.starts


# Offsets fit a three-week demo: OrderCreated v1 for the first week, v2 the second, v3 the third.
DEFAULT_SCHEMA_SWITCHES: tuple[SchemaSwitch, ...] = (
    SchemaSwitch("CustomerRegistered", 2, 9),
    SchemaSwitch("CartItemAdded", 2, 5),
    SchemaSwitch("OrderCreated", 2, 7),
    SchemaSwitch("OrderCreated", 3, 14),
)


def _parse_switch_start(key: str, value: Any) -> int | date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise SettingsError(key, f"must be a date (YYYY-MM-DD) or a day offset, got {value!r}") from None
    return value


def _parse_switches(value: Any, defaults: tuple[SchemaSwitch, ...]) -> tuple[SchemaSwitch, ...]:
    """{type: {version: date or offset}}; a type named replaces its default switches, others keep theirs."""
    if isinstance(value, (list, tuple)) and all(isinstance(s, SchemaSwitch) for s in value):
        return tuple(value)
    if not isinstance(value, Mapping):
        raise SettingsError("(root)", f"must be a mapping of event type to {{version: date}}, got {value!r}")
    named: list[SchemaSwitch] = []
    for event_type, versions in value.items():
        if not isinstance(versions, Mapping):
            raise SettingsError(str(event_type), f"must be a mapping of version to date, got {versions!r}")
        for version, starts in versions.items():
            key = f"{event_type}.{version}"
            try:
                number = int(version)
            except (TypeError, ValueError):
                raise SettingsError(key, f"schema version must be an integer, got {version!r}") from None
            named.append(SchemaSwitch(str(event_type), number, _parse_switch_start(key, starts)))
    kept = [switch for switch in defaults if switch.event_type not in value]
    return tuple(kept + named)


def _check_switches(switches: tuple[SchemaSwitch, ...]) -> None:
    seen: dict[tuple[str, int], SchemaSwitch] = {}
    for switch in switches:
        if not isinstance(switch, SchemaSwitch):
            raise SettingsError("(root)", f"must hold SchemaSwitch entries, got {switch!r}")
        if (switch.event_type, switch.schema_version) in seen:
            raise SettingsError(f"{switch.event_type}.{switch.schema_version}", "is given twice")
        seen[(switch.event_type, switch.schema_version)] = switch
    check_switch_order(switches, date(2000, 1, 1), only_comparable=True)


def check_switch_order(switches: tuple[SchemaSwitch, ...], run_start: date, only_comparable: bool = False) -> None:
    """A newer schema version may not start before an older one of the same type."""
    by_type: dict[str, list[SchemaSwitch]] = {}
    for switch in switches:
        by_type.setdefault(switch.event_type, []).append(switch)
    for event_type, listed in by_type.items():
        listed.sort(key=lambda s: s.schema_version)
        for older, newer in zip(listed, listed[1:]):
            if only_comparable and type(older.starts) is not type(newer.starts):
                continue  # an offset and a date compare only once the start date is known
            if newer.start_date(run_start) < older.start_date(run_start):
                raise SettingsError(
                    f"schema_switch_dates.{event_type}.{newer.schema_version}",
                    f"starts {_when(newer, run_start, only_comparable)}, before version {older.schema_version} "
                    f"({_when(older, run_start, only_comparable)})",
                )


def _when(switch: SchemaSwitch, run_start: date, as_given: bool) -> str:
    if as_given and isinstance(switch.starts, int):
        return f"on day {switch.starts}"
    return switch.start_date(run_start).isoformat()


# --- the settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatorSettings:
    """Everything `simulate` can be told besides days, tenants, seed and start date."""

    events_per_tenant_per_day: int = _checked(1000, _positive)  # about; weekdays and chance vary it
    products_per_tenant: int = _checked(120, _at_most(100_000))
    # Bounded memory: past these, a random known customer/visitor is forgotten for a new one.
    max_customers_per_tenant: int = _checked(10_000, _positive)
    max_visitors_per_tenant: int = _checked(20_000, _positive)
    # Tenant i uses tenant_currencies[i % n] for v2+ amounts (v1 amounts are EUR by contract).
    tenant_currencies: tuple[str, ...] = _checked(("EUR", "GBP", "EUR", "EUR"), _currencies)
    max_events_per_file: int = _checked(100_000, _positive)  # lines per hour file before a new part starts
    # {event type: {version: "YYYY-MM-DD" or days after start_date}}: when producers switch versions.
    schema_switch_dates: tuple[SchemaSwitch, ...] = DEFAULT_SCHEMA_SWITCHES
    behaviour: BehaviourSettings = field(default_factory=BehaviourSettings)
    anomalies: AnomalySettings = field(default_factory=AnomalySettings)
    experiments: tuple[ExperimentSettings, ...] = DEFAULT_EXPERIMENTS

    def __post_init__(self) -> None:
        _validate_fields(self)
        for name, cls in (("behaviour", BehaviourSettings), ("anomalies", AnomalySettings)):
            if not isinstance(getattr(self, name), cls):
                raise SettingsError(name, f"must be {cls.__name__}, got {getattr(self, name)!r}")
        try:
            _check_switches(tuple(self.schema_switch_dates))
        except SettingsError as error:
            raise error.under("schema_switch_dates") if not error.key.startswith("schema_switch_dates") else error
        object.__setattr__(self, "schema_switch_dates", tuple(self.schema_switch_dates))
        experiments = tuple(self.experiments)
        for index, experiment in enumerate(experiments):
            if not isinstance(experiment, ExperimentSettings):
                raise SettingsError(f"experiments[{index}]", f"must be ExperimentSettings, got {experiment!r}")
        ids = [experiment.experiment_id for experiment in experiments]
        if len(set(ids)) != len(ids):
            raise SettingsError("experiments", f"experiment ids must be unique, got {ids}")
        object.__setattr__(self, "experiments", experiments)

    def currency_of_tenant(self, tenant_index: int) -> str:
        return self.tenant_currencies[tenant_index % len(self.tenant_currencies)]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> "SimulatorSettings":
        """Settings from a mapping with the field names as keys (nested mappings for nested settings);
        missing keys keep their defaults, unknown keys are rejected."""
        mapping = {} if mapping is None else mapping
        _reject_unknown_keys(cls, mapping)
        values: dict[str, Any] = dict(mapping)
        nested = {"behaviour": BehaviourSettings, "anomalies": AnomalySettings}
        for name, nested_cls in nested.items():
            if name in values:
                values[name] = _nested(name, values[name], nested_cls.from_mapping)
        if "schema_switch_dates" in values:
            values["schema_switch_dates"] = _nested(
                "schema_switch_dates", values["schema_switch_dates"], lambda v: _parse_switches(v, DEFAULT_SCHEMA_SWITCHES)
            )
        if "experiments" in values:
            experiments = values["experiments"]
            if not isinstance(experiments, (list, tuple)):
                raise SettingsError("experiments", f"must be a list of experiments, got {experiments!r}")
            values["experiments"] = tuple(
                _nested(f"experiments[{i}]", experiment, ExperimentSettings.from_mapping)
                for i, experiment in enumerate(experiments)
            )
        return cls(**values)

    def to_mapping(self) -> dict[str, Any]:
        mapping = {spec.name: _plain(getattr(self, spec.name)) for spec in dataclasses.fields(self)}
        switches: dict[str, dict[int, Any]] = {}
        for switch in self.schema_switch_dates:
            starts = switch.starts.isoformat() if isinstance(switch.starts, date) else switch.starts
            switches.setdefault(switch.event_type, {})[switch.schema_version] = starts
        mapping["schema_switch_dates"] = switches
        return mapping


def _nested(key: str, value: Any, build: Callable[[Any], Any]) -> Any:
    if isinstance(value, (BehaviourSettings, AnomalySettings, ExperimentSettings)):
        return value
    try:
        return build(value)
    except SettingsError as error:
        raise error.under(key) from None
