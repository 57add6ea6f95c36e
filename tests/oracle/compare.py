"""A published mart against the oracle's rows: the same keys, and the same value in every column the
oracle computes (floats to 1e-9 relative, timestamps as UTC instants)."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Sequence

from pyspark.sql import DataFrame


def differences(mart: DataFrame, expected: Sequence[dict], key: Sequence[str], limit: int = 10) -> list[str]:
    """What differs between the mart's rows and `expected` (compared on `expected`'s columns), at most
    `limit` lines; empty when they agree."""
    columns = sorted({name for row in expected for name in row}) or list(key)
    missing = [name for name in columns if name not in mart.columns]
    if missing:
        return [f"the mart has no column {', '.join(missing)}"]
    got = {_key(row, key): row for row in (r.asDict() for r in mart.select(*columns).collect())}
    want = {_key(row, key): row for row in expected}
    lines = [f"only in the mart: {k}" for k in sorted(got.keys() - want.keys(), key=repr)]
    lines += [f"only in the oracle: {k}" for k in sorted(want.keys() - got.keys(), key=repr)]
    for k in sorted(got.keys() & want.keys(), key=repr):
        for name in columns:
            if name in key or name not in want[k]:
                continue
            if not _same(got[k][name], want[k][name]):
                lines.append(f"{k} {name}: mart {got[k][name]!r}, oracle {want[k][name]!r}")
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


def _key(row: dict, key: Sequence[str]) -> tuple:
    return tuple(_normal(row[name]) for name in key)


def _normal(value: Any) -> Any:
    """Timestamps as aware UTC instants: Spark hands them back naive, in the machine's local time."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    return value


def _same(got: Any, want: Any) -> bool:
    got, want = _normal(got), _normal(want)
    if got is None or want is None:
        return got is None and want is None
    if isinstance(want, float) or isinstance(got, float):
        return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9)
    return got == want
