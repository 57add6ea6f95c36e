"""The marts, in build order (a mart may read marts listed before it)."""

from __future__ import annotations

from types import ModuleType

# Every mart of the spec, in build order; `marts.enabled` in conf/ chooses which a run builds.
MART_NAMES = (
    "orders",
    "basket_daily",
    "customer_360",
    "customer_segments",
    "segment_sizes_daily",
    "cart_abandonment_daily",
    "product_sales_daily",
    "funnel_daily",
    "campaign_performance",
    "marketing_kpis_daily",
    "experiment_results",
)


def mart_module(name: str) -> ModuleType:
    import importlib

    if name not in MART_NAMES:
        raise KeyError(f"unknown mart {name!r}; marts: {', '.join(MART_NAMES)}")
    return importlib.import_module(f"jobs.marts.{name}")
