"""A/B experiments in the simulated history: the configured split, contamination and true effect."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from jobs.simulator import ExperimentSettings, SimulatorSettings, simulate
from jobs.simulator.world import pick_variant, with_experiment_effect

DOUBLED = {"experiment_id": "doubled", "variants": {"control": 0.7, "treatment": 0.3}, "effect_kind": "relative",
           "effects": {"treatment": 1.0}, "exposure_rate": 1.0, "contamination_rate": 0.05}
LOWERED = {"experiment_id": "lowered", "variants": {"control": 0.5, "fewer": 0.5}, "effect_kind": "absolute",
           "effects": {"fewer": -0.05}, "exposure_rate": 1.0, "contamination_rate": 0.0}


def test_a_relative_effect_multiplies_and_an_absolute_effect_adds_within_0_and_1() -> None:
    relative = ExperimentSettings(effect_kind="relative", effects=(("new_checkout", 0.5),))
    absolute = ExperimentSettings(effect_kind="absolute", effects=(("new_checkout", -0.05),))
    assert with_experiment_effect(0.04, relative, "new_checkout") == pytest.approx(0.06)
    assert with_experiment_effect(0.04, relative, "control") == 0.04
    assert with_experiment_effect(0.04, absolute, "new_checkout") == 0.0
    assert with_experiment_effect(0.9, ExperimentSettings(effects=(("new_checkout", 0.5),)), "new_checkout") == 1.0


def test_variants_take_their_share_of_the_unit_interval() -> None:
    experiment = ExperimentSettings(variants=(("control", 2.0), ("a", 1.0), ("b", 1.0)), effects=())
    assert [pick_variant(experiment, draw) for draw in (0.0, 0.49, 0.5, 0.74, 0.75, 0.999)] == [
        "control", "control", "a", "a", "b", "b"]


def visitors_of(out_dir: Path, experiment: dict) -> dict[str, dict]:
    """anonymous id -> {"variants": [...in exposure order], "converted": bool} for a run with one experiment."""
    settings = SimulatorSettings.from_mapping({
        "events_per_tenant_per_day": 4000,
        "behaviour": {"order_rate": 0.08},
        "experiments": [experiment],
        "anomalies": {name: 0.0 for name in SimulatorSettings().anomalies.to_mapping() if name.endswith("_rate")},
    })
    simulate(out_dir, days=8, tenants=1, seed=5, start_date=date(2026, 2, 2), settings=settings)
    events = [json.loads(line) for path in sorted(out_dir.rglob("*.ndjson")) for line in path.read_text().splitlines()]
    events.sort(key=lambda event: event["global_position"])
    visitor_of_session = {e["data"]["session_id"]: e["data"]["anonymous_id"] for e in events
                          if e["event_type"] == "SessionStarted"}
    converted = {visitor_of_session[e["data"]["session_id"]] for e in events
                 if e["event_type"] == "OrderCreated" and e["data"]["session_id"] in visitor_of_session}
    visitors: dict[str, dict] = {}
    for event in events:
        if event["event_type"] == "ExperimentExposed":
            data = event["data"]
            seen = visitors.setdefault(data["anonymous_id"], {"variants": [], "converted": data["anonymous_id"] in converted})
            if data["variant"] not in seen["variants"]:
                seen["variants"].append(data["variant"])
    return visitors


@pytest.fixture(scope="module")
def doubled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    return visitors_of(tmp_path_factory.mktemp("doubled"), DOUBLED)


@pytest.fixture(scope="module")
def lowered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    return visitors_of(tmp_path_factory.mktemp("lowered"), LOWERED)


def conversion_rate(visitors: dict[str, dict], variant: str) -> float:
    clean = [v for v in visitors.values() if v["variants"] == [variant]]
    return sum(v["converted"] for v in clean) / len(clean)


def test_visitors_are_split_as_configured(doubled: dict[str, dict]) -> None:
    clean = [v["variants"][0] for v in doubled.values() if len(v["variants"]) == 1]
    assert len(clean) > 1000
    assert clean.count("treatment") / len(clean) == pytest.approx(0.3, abs=0.04)


def test_a_configured_share_of_visitors_sees_both_variants(doubled: dict[str, dict], lowered: dict[str, dict]) -> None:
    assert sum(len(v["variants"]) > 1 for v in doubled.values()) / len(doubled) == pytest.approx(0.05, abs=0.025)
    assert all(len(v["variants"]) == 1 for v in lowered.values())


def test_a_relative_effect_shows_in_visitor_conversion(doubled: dict[str, dict]) -> None:
    # The order probability of each treated session doubles; per visitor, who may come back and
    # convert anyway, the ratio is a little lower.
    assert 1.5 < conversion_rate(doubled, "treatment") / conversion_rate(doubled, "control") < 2.1


def test_an_absolute_effect_shows_in_visitor_conversion(lowered: dict[str, dict]) -> None:
    # Minus 5 points on a base of about 9 % per session.
    assert 0.3 < conversion_rate(lowered, "fewer") / conversion_rate(lowered, "control") < 0.75
