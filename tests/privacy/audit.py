"""Reading every file of a warehouse as an auditor would: Parquet decoded, everything else as bytes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq


def _flatten(value) -> Iterator[str | bytes]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _flatten(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _flatten(item)
    elif isinstance(value, bytes):
        yield value
    elif value is not None:
        yield str(value)


def parquet_values(path: Path) -> Iterator[str | bytes]:
    """Every value of every column (nested ones included) of a Parquet file, decoded."""
    table = pq.read_table(path)
    for column in table.columns:
        for value in column.to_pylist():
            yield from _flatten(value)


def every_file(root: Path) -> Iterator[tuple[Path, bytes, list[str | bytes]]]:
    """(path, raw bytes, decoded values) of every file under root; decoded values only for Parquet."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        values = list(parquet_values(path)) if path.suffix == ".parquet" else []
        yield path, raw, values


def forms_of(secret: str) -> set[str]:
    """The ways a string can be written down that a search should catch (all compared lowercased)."""
    forms = {secret, json.dumps(secret)[1:-1], secret.replace("@", "%40"), secret.replace("@", "\\u0040")}
    return {form.lower() for form in forms}


def key_forms(key: bytes) -> dict[str, set[bytes]]:
    """The needles for a binary secret (a key): its bytes, and its base64 and hex texts in any case."""
    text_forms = {base64.b64encode(key), base64.urlsafe_b64encode(key), key.hex().encode()}
    return {"key (text forms)": {form.lower() for form in text_forms} | text_forms, "key (bytes)": {key}}


def occurrences(root: Path, secrets: dict[str, set[bytes]], extra_texts: dict[str, str] = {}) -> list[str]:
    """Where any form of any secret occurs: in raw bytes, in decoded Parquet values, or in extra texts
    (logs, command output). `secrets` maps a label to the byte strings to look for (lowercase text forms
    are matched case-insensitively)."""
    found = []
    for path, raw, values in every_file(root):
        haystacks = [raw, raw.lower()] + [v if isinstance(v, bytes) else v.encode("utf-8", "replace").lower() for v in values]
        for label, needles in secrets.items():
            if any(needle in haystack for needle in needles for haystack in haystacks):
                found.append(f"{label} in {path.relative_to(root)}")
    for name, text in extra_texts.items():
        lowered = text.encode("utf-8", "replace").lower()
        for label, needles in secrets.items():
            if any(needle in lowered or needle in text.encode() for needle in needles):
                found.append(f"{label} in {name}")
    return found
