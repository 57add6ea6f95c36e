"""BI logins for the SQL endpoint: user name -> tenant and a PBKDF2-SHA256 hash of the password.

They live in a YAML file outside the project folder (`serve.credentials_file`, or
`LAKEHOUSE_BI_CREDENTIALS`), written by `python -m jobs bi-login`; passwords are never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from jobs.config import PROJECT_ROOT, ConfigError

DEFAULT_ITERATIONS = 600_000
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class Login:
    user: str
    tenant_id: str
    salt_hex: str
    iterations: int
    hash_hex: str

    def matches(self, password: str) -> bool:
        presented = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(self.salt_hex), self.iterations)
        return hmac.compare_digest(presented.hex(), self.hash_hex)


def hash_password(user: str, tenant_id: str, password: str, iterations: int = DEFAULT_ITERATIONS) -> Login:
    for what, value in (("user name", user), ("tenant id", tenant_id)):
        if not _NAME.match(value):
            raise ValueError(f"{what} {value!r} must be 1-64 letters, digits or _ . @ -")
    if len(password) < 12:
        raise ValueError("a BI password needs at least 12 characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return Login(user, tenant_id, salt.hex(), iterations, digest.hex())


def check_location(path: Path) -> Path:
    """The credentials file never sits inside the project folder, so it can never be committed."""
    path = path.expanduser().absolute()
    if path.resolve().is_relative_to(PROJECT_ROOT):
        raise ConfigError(
            f"serve.credentials_file {path} is inside the project folder {PROJECT_ROOT}: keep BI logins outside it "
            "(e.g. ~/.config/lakehouse/bi_logins.yaml, or set LAKEHOUSE_BI_CREDENTIALS)"
        )
    return path


def read_logins(path: Path) -> dict[str, Login]:
    path = check_location(path)
    if not path.exists():
        raise ConfigError(f"no BI logins: {path} does not exist; create one with `python -m jobs bi-login --user U --tenant T`")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        logins = {
            user: Login(user, str(entry["tenant"]), *_parse_hash(entry["password_pbkdf2"]))
            for user, entry in (content.get("logins") or {}).items()
        }
    except (yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: not a BI logins file ({type(error).__name__}: {error}); see `python -m jobs bi-login --help`") from error
    if not logins:
        raise ConfigError(f"no BI logins in {path}; create one with `python -m jobs bi-login --user U --tenant T`")
    return logins


def write_login(path: Path, login: Login) -> Path:
    """Add or replace one login; the file is readable by its owner only."""
    path = check_location(path)
    logins = read_logins(path) if path.exists() else {}
    logins[login.user] = login
    content = {
        "logins": {
            user: {"tenant": entry.tenant_id, "password_pbkdf2": f"pbkdf2_sha256${entry.iterations}${entry.salt_hex}${entry.hash_hex}"}
            for user, entry in sorted(logins.items())
        }
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# BI logins for `python -m jobs serve` (written by `python -m jobs bi-login`; no passwords, only hashes)\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(header + yaml.safe_dump(content, sort_keys=True))
    os.chmod(path, 0o600)
    return path


def _parse_hash(text: str) -> tuple[str, int, str]:
    scheme, iterations, salt_hex, hash_hex = text.split("$")
    if scheme != "pbkdf2_sha256":
        raise ValueError(f"unknown password scheme {scheme!r}")
    bytes.fromhex(salt_hex), bytes.fromhex(hash_hex)
    return salt_hex, int(iterations), hash_hex
