"""Simulator settings: demo defaults, built from a mapping (conf/ YAML), rejected with the key named."""

from __future__ import annotations

from datetime import date

import pytest

from jobs.simulator import ExperimentSettings, SchemaSwitch, SimulatorSettings, simulate
from jobs.simulator.settings import check_switch_order


def test_default_settings_survive_a_round_trip_through_a_mapping() -> None:
    settings = SimulatorSettings()
    assert SimulatorSettings.from_mapping(settings.to_mapping()) == settings


def test_to_mapping_uses_only_plain_yaml_types() -> None:
    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, (str, int)) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(item) for item in value)
        return value is None or isinstance(value, (str, int, float, bool))

    mapping = SimulatorSettings().to_mapping()
    assert plain(mapping)
    assert mapping["schema_switch_dates"]["OrderCreated"] == {2: 7, 3: 14}
    assert mapping["experiments"][0]["variants"] == {"control": 0.5, "new_checkout": 0.5}


def test_an_empty_or_missing_mapping_gives_the_defaults() -> None:
    assert SimulatorSettings.from_mapping({}) == SimulatorSettings()
    assert SimulatorSettings.from_mapping(None) == SimulatorSettings()


def test_nested_keys_override_only_what_they_name() -> None:
    settings = SimulatorSettings.from_mapping({"anomalies": {"broken_line_rate": 0.001}, "behaviour": {"order_rate": 1}})
    assert settings.anomalies.broken_line_rate == 0.001
    assert settings.anomalies.exact_duplicate_rate == SimulatorSettings().anomalies.exact_duplicate_rate
    assert settings.behaviour.order_rate == 1.0 and isinstance(settings.behaviour.order_rate, float)


def test_schema_switch_dates_accept_dates_and_day_offsets_and_keep_other_types_defaults() -> None:
    settings = SimulatorSettings.from_mapping(
        {"schema_switch_dates": {"OrderCreated": {2: "2026-01-10", "3": date(2026, 1, 20)}}}
    )
    switches = {(s.event_type, s.schema_version): s.start_date(date(2026, 1, 1)) for s in settings.schema_switch_dates}
    assert switches[("OrderCreated", 2)] == date(2026, 1, 10)
    assert switches[("OrderCreated", 3)] == date(2026, 1, 20)
    assert switches[("CartItemAdded", 2)] == date(2026, 1, 6)  # default: 5 days after the start


def test_a_type_given_no_switches_stays_at_version_one() -> None:
    settings = SimulatorSettings.from_mapping({"schema_switch_dates": {"CartItemAdded": {}}})
    assert "CartItemAdded" not in {switch.event_type for switch in settings.schema_switch_dates}


def test_experiments_are_read_from_a_list_of_mappings() -> None:
    settings = SimulatorSettings.from_mapping({"experiments": [
        {"experiment_id": "hero-banner", "variants": {"control": 2, "big": 1, "small": 1},
         "effect_kind": "absolute", "effects": {"big": 0.02}},
    ]})
    (experiment,) = settings.experiments
    assert experiment.split == (("control", 0.5), ("big", 0.25), ("small", 0.25))
    assert experiment.effect_of("big") == 0.02 and experiment.effect_of("small") == 0.0


@pytest.mark.parametrize(
    ("mapping", "key", "reason"),
    [
        ({"events_per_day": 10}, "events_per_day", "unknown key"),
        ({"anomalies": {"broken_rate": 0.1}}, "anomalies.broken_rate", "unknown key"),
        ({"anomalies": {"broken_line_rate": 1.5}}, "anomalies.broken_line_rate", "between 0 and 1"),
        ({"anomalies": {"late_event_rate": "often"}}, "anomalies.late_event_rate", "must be a number"),
        ({"events_per_tenant_per_day": 0}, "events_per_tenant_per_day", "at least 1"),
        ({"events_per_tenant_per_day": 10.5}, "events_per_tenant_per_day", "integer"),
        ({"events_per_tenant_per_day": True}, "events_per_tenant_per_day", "integer"),
        ({"behaviour": {"max_clock_skew_minutes": 90}}, "behaviour.max_clock_skew_minutes", "between 1 and 60"),
        ({"behaviour": []}, "behaviour", "must be a mapping"),
        ({"tenant_currencies": ["EUR", "XYZ"]}, "tenant_currencies", "unsupported currency"),
        ({"schema_switch_dates": {"OrderCreated": {4: 3}}}, "schema_switch_dates.OrderCreated.4", "no schema version 4"),
        ({"schema_switch_dates": {"OrderConfirmed": {2: 3}}}, "schema_switch_dates.OrderConfirmed", "single schema version"),
        ({"schema_switch_dates": {"OrderCreated": {2: "soon"}}}, "schema_switch_dates.OrderCreated.2", "YYYY-MM-DD"),
        ({"schema_switch_dates": {"OrderCreated": {2: 10, 3: 5}}}, "schema_switch_dates.OrderCreated.3", "before version 2"),
        ({"experiments": [{"experiment_id": "x", "variants": {"a": 1, "b": 1}}]}, "experiments[0].variants", "'control'"),
        ({"experiments": [{"experiment_id": "x", "effects": {"control": 0.1}}]}, "experiments[0].effects", "not a treated"),
        ({"experiments": [{"experiment_id": "x", "effect_kind": "huge"}]}, "experiments[0].effect_kind", "relative"),
        ({"experiments": [{"experiment_id": "x", "colour": "red"}]}, "experiments[0].colour", "unknown key"),
        ({"experiments": [{"experiment_id": "x"}, {"experiment_id": "x"}]}, "experiments", "unique"),
        ({"experiments": [{"experiment_id": "x", "start_day": 5, "end_day": 5}]}, "experiments[0].end_day", "after start_day"),
    ],
)
def test_a_bad_setting_is_rejected_with_its_key_and_the_reason(mapping: dict, key: str, reason: str) -> None:
    with pytest.raises(ValueError) as raised:
        SimulatorSettings.from_mapping(mapping)
    message = str(raised.value)
    assert f"'{key}'" in message and reason in message, message


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match="broken_line_rate"):
        SimulatorSettings.from_mapping({}).anomalies.__class__(broken_line_rate=-0.1)
    with pytest.raises(ValueError, match="variants"):
        ExperimentSettings(variants=(("treatment", 1.0),))


def test_a_switch_date_mixing_offsets_and_dates_is_checked_once_the_start_is_known(tmp_path) -> None:
    switches = (SchemaSwitch("OrderCreated", 2, 10), SchemaSwitch("OrderCreated", 3, date(2026, 1, 3)))
    settings = SimulatorSettings(schema_switch_dates=switches)  # fine until a start date is given
    check_switch_order(switches, date(2025, 12, 1))
    with pytest.raises(ValueError, match="OrderCreated.3"):
        simulate(tmp_path, days=1, tenants=1, seed=1, start_date=date(2026, 1, 1), settings=settings)
    assert not any(tmp_path.iterdir())
