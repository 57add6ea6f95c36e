"""BI logins: hashes only, in a file outside the project, chosen by configuration or the environment."""

from __future__ import annotations

import stat

import pytest

from jobs.__main__ import main
from jobs.bi.logins import hash_password, read_logins, write_login
from jobs.config import PROJECT_ROOT, ConfigError, load_settings


def test_a_login_file_keeps_a_hash_that_checks_the_password_and_never_the_password(tmp_path):
    path = write_login(tmp_path / "logins.yaml", hash_password("shop_one_bi", "t1", "correct horse battery", iterations=1000))

    text = path.read_text()
    login = read_logins(path)["shop_one_bi"]
    assert "correct horse battery" not in text and login.tenant_id == "t1"
    assert login.matches("correct horse battery") and not login.matches("correct horse batter")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_login_file_inside_the_project_is_refused():
    with pytest.raises(ConfigError, match="inside the project folder"):
        write_login(PROJECT_ROOT / "bi_logins.yaml", hash_password("u", "t1", "correct horse battery", iterations=1000))
    assert not (PROJECT_ROOT / "bi_logins.yaml").exists()


def test_a_missing_login_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match="python -m jobs bi-login"):
        read_logins(tmp_path / "none.yaml")


def test_short_passwords_and_odd_names_are_refused():
    with pytest.raises(ValueError, match="12 characters"):
        hash_password("u", "t1", "short")
    with pytest.raises(ValueError, match="user name"):
        hash_password("u'; DROP", "t1", "correct horse battery")


def test_the_environment_chooses_the_login_file_and_the_cli_writes_it(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere" / "logins.yaml"
    monkeypatch.setenv("LAKEHOUSE_BI_CREDENTIALS", str(path))
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("correct horse battery staple\n"))

    assert load_settings("ci").serve.credentials_file == str(path)
    assert main(["bi-login", "--user", "shop_two_bi", "--tenant", "t2", "--password-stdin", "--env", "ci"]) == 0
    assert read_logins(path)["shop_two_bi"].matches("correct horse battery staple")


def test_the_endpoint_binds_to_localhost_unless_configured_otherwise():
    settings = load_settings("ci")
    assert settings.serve.host == "127.0.0.1"
    with pytest.raises(ConfigError, match="serve.port"):
        load_settings("ci", overrides={"serve": {"port": 70000}})
