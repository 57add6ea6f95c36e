"""The marts, in build order (a mart may read marts listed before it)."""

from __future__ import annotations

from types import ModuleType

MART_NAMES = ("orders", "basket_daily")


def mart_module(name: str) -> ModuleType:
    import importlib

    if name not in MART_NAMES:
        raise KeyError(f"unknown mart {name!r}; marts: {', '.join(MART_NAMES)}")
    return importlib.import_module(f"jobs.marts.{name}")
