"""The configuration entry point: base + overlay, validated with messages naming the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jobs.config import DEFAULT_CONF_DIR, ConfigError, load_settings


@pytest.fixture
def conf_dir(tmp_path) -> Path:
    copy = tmp_path / "conf"
    shutil.copytree(DEFAULT_CONF_DIR, copy)
    return copy


@pytest.mark.parametrize("env", ["local", "ci", "cluster"])
def test_every_environment_loads_and_validates(env):
    settings = load_settings(env, environ={})
    assert settings.env == env and settings.spark.packages


def test_the_overlay_changes_only_what_it_names():
    local, ci = load_settings("local", environ={}), load_settings("ci", environ={})
    assert ci.spark.shuffle_partitions != local.spark.shuffle_partitions
    assert ci.spark.packages == local.spark.packages


def test_the_environment_variable_chooses_the_warehouse_and_the_argument_wins_over_it():
    assert load_settings("ci", environ={"LAKEHOUSE_WAREHOUSE": "/data/wh"}).warehouse == "/data/wh"
    assert load_settings("ci", warehouse="/other", environ={"LAKEHOUSE_WAREHOUSE": "/data/wh"}).warehouse == "/other"


def test_an_unknown_environment_is_refused():
    with pytest.raises(ConfigError, match="unknown environment 'prod'"):
        load_settings("prod", environ={})


def test_an_unknown_key_is_refused_with_its_name(conf_dir):
    (conf_dir / "ci.yaml").write_text("spark:\n  shufle_partitions: 2\n")
    with pytest.raises(ConfigError, match=r"unknown key spark\.shufle_partitions"):
        load_settings("ci", conf_dir=conf_dir, environ={})


def test_a_wrong_type_is_refused_with_the_key_and_the_value(conf_dir):
    (conf_dir / "ci.yaml").write_text("spark:\n  shuffle_partitions: four\n")
    with pytest.raises(ConfigError, match=r"spark\.shuffle_partitions must be an integer, got 'four'"):
        load_settings("ci", conf_dir=conf_dir, environ={})


def test_a_boolean_is_not_taken_for_a_number(conf_dir):
    (conf_dir / "ci.yaml").write_text("spark:\n  shuffle_partitions: true\n")
    with pytest.raises(ConfigError, match="must be an integer"):
        load_settings("ci", conf_dir=conf_dir, environ={})


def test_a_missing_key_is_refused(conf_dir):
    base = (conf_dir / "base.yaml").read_text().replace("  app_name: lakehouse\n", "")
    (conf_dir / "base.yaml").write_text(base)
    with pytest.raises(ConfigError, match=r"missing key spark\.app_name"):
        load_settings("ci", conf_dir=conf_dir, environ={})


def test_an_unknown_mart_is_refused_before_anything_runs(conf_dir):
    (conf_dir / "ci.yaml").write_text("marts:\n  enabled: [orders, basket_weekly]\n")
    with pytest.raises(ConfigError, match="basket_weekly"):
        load_settings("ci", conf_dir=conf_dir, environ={})


def test_relative_paths_are_relative_to_the_project_not_the_working_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = load_settings("ci", environ={})
    assert settings.warehouse == str(DEFAULT_CONF_DIR.parent / "warehouse")


def test_a_bad_simulator_setting_is_refused_on_load_naming_its_key(conf_dir):
    (conf_dir / "ci.yaml").write_text("simulator:\n  anomalies:\n    broken_line_rate: 1.5\n")
    with pytest.raises(ConfigError, match=r"anomalies\.broken_line_rate.*between 0 and 1"):
        load_settings("ci", conf_dir=conf_dir, environ={})


def test_the_simulator_defaults_shown_in_base_yaml_are_the_real_defaults():
    import yaml

    from jobs.simulator import SimulatorSettings

    commented = (DEFAULT_CONF_DIR / "base.yaml").read_text().split("simulator: {}\n", 1)[1]
    shown = yaml.safe_load("\n".join(line[1:] for line in commented.splitlines() if line.startswith("#")))
    assert SimulatorSettings.from_mapping(shown).to_mapping() == SimulatorSettings().to_mapping()


def test_a_postgres_source_is_read_from_configuration_with_its_mapping(conf_dir):
    (conf_dir / "ci.yaml").write_text(
        "landing:\n  postgres_sources:\n    - source_name: store\n      url: jdbc:postgresql://127.0.0.1:5432/shop\n"
        "      table: events\n      user: lakehouse\n      password_env: STORE_PASSWORD\n"
        "      columns: {event_id: id}\n"
    )
    (source,) = load_settings("ci", conf_dir=conf_dir, environ={}).landing.postgres_sources
    assert (source.source_name, source.password_env, source.columns) == ("store", "STORE_PASSWORD", {"event_id": "id"})


def test_a_source_name_used_twice_is_refused(conf_dir):
    entry = "    - {source_name: store, url: 'jdbc:postgresql://h/db', table: events, user: u}\n"
    (conf_dir / "ci.yaml").write_text("landing:\n  postgres_sources:\n" + entry + entry)
    with pytest.raises(ConfigError, match="source_name 'store' is used twice"):
        load_settings("ci", conf_dir=conf_dir, environ={})


def test_a_secret_is_read_from_the_environment_variable_the_configuration_names():
    from jobs.config import read_secret

    assert read_secret("STORE_PASSWORD", environ={"STORE_PASSWORD": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="STORE_PASSWORD is not set"):
        read_secret("STORE_PASSWORD", environ={})


def test_a_negative_support_period_for_old_major_versions_is_refused(conf_dir):
    (conf_dir / "ci.yaml").write_text("publication:\n  major_version_support_days: -1\n")
    with pytest.raises(ConfigError, match=r"publication: major_version_support_days must be 0 or more, got -1"):
        load_settings("ci", conf_dir=conf_dir, environ={})
