"""Published marts for the BI tests, once per test run, into a warehouse of its own (read only): the shop
history with two carts, an experiment's visitors and a customer who never buys, run through the pipeline
with every mart; then a later order, run with `orders` alone, so that `orders` has a second publication
(the other marts stay at their first: which run each table shows is told per table).

Under pytest-xdist (`make test`) the BI modules land on both workers; the first worker to need the
warehouse builds it under a file lock in the run's shared temporary folder and the other reads it: one
build instead of two, each minutes of two pipeline runs on two shared cores."""

from __future__ import annotations

import dataclasses
import fcntl
import shutil
from dataclasses import dataclass

import pytest

from tests.histories import History, shop_history


@dataclass(frozen=True)
class Published:
    settings: object
    first_versions: dict[str, int]  # table version of each mart's first publication
    latest_versions: dict[str, int]


# The marts of the second run: one is enough to give a table two publications, and a run of every mart
# would cost a minute more on two cores, during which the other test worker waits for this warehouse.
SECOND_RUN_MARTS = ("orders",)


def _extra_order() -> History:
    """A later order, o8 (t1), for the second run."""
    extra = History()
    extra.add(
        "OrderCreated", "order-o8",
        {"order_id": "o8", "cart_id": "k-o8", "customer_id": "c8", "session_id": None,
         "items": [{"product_id": "p8", "category": "misc", "quantity": 4, "unit_price_cents": 250}],
         "total_cents": 1000, "currency": "EUR", "order_source": "web"},
        "2026-01-07T09:00:00Z", schema_version=3, event_id="ev-extra-1",
    )
    extra.add("OrderConfirmed", "order-o8", {"order_id": "o8"}, "2026-01-07T09:01:00Z", event_id="ev-extra-2")
    return extra


def _extra_activity() -> History:
    """What the shop history lacks for some marts to have rows: carts, experiment visitors, a registration."""
    extra = History()
    # Carts, so cart_abandonment_daily has rows for each tenant.
    for tenant, cart in (("t1", "k-x1"), ("t2", "k-x2")):
        extra.add(
            "CartItemAdded", f"cart-{cart}",
            {"cart_id": cart, "session_id": None, "customer_id": None, "product_id": "p1", "category": "misc",
             "quantity": 1, "unit_price_cents": 700, "currency": "EUR"},
            "2026-01-07T08:00:00Z", tenant_id=tenant, schema_version=2, event_id=f"ev-cart-{tenant}",
        )
    # Two visitors of an experiment, one per variant (experiment_results; c8 orders o8 later), and a
    # customer who registers and never buys (customer_segments: registered_never_bought).
    for number, (variant, customer) in enumerate((("control", None), ("new_checkout", "c8"))):
        extra.add(
            "ExperimentExposed", f"session-x{number}",
            {"experiment_id": "checkout-redesign", "variant": variant, "session_id": f"x{number}",
             "anonymous_id": f"anon-x{number}", "customer_id": customer},
            "2026-01-07T08:30:00Z", event_id=f"ev-exposed-{number}",
        )
    extra.add(
        "CustomerRegistered", "customer-c20",
        {"customer_id": "c20", "email": "newcomer@example.com", "country": "FR", "referrer": None},
        "2026-01-07T07:00:00Z", event_id="ev-registered-c20",
    )
    return extra


def _versions(spark, settings, run_id=None) -> dict[str, int]:
    """Each mart's published table version in a run; without a run, its latest publication's."""
    versions: dict[str, int] = {}
    for row in spark.read.format("delta").load(f"{settings.warehouse}/meta/publications").collect():
        if run_id is None or row["run_id"] == run_id:
            versions[row["mart"]] = max(versions.get(row["mart"], -1), row["table_version"])
    return versions


@pytest.fixture(scope="session")
def published(spark, settings, tmp_path_factory, worker_id) -> Published:
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent  # the folder of this run that every xdist worker's own folder is in
    folder = root / "bi-published"
    run_settings = dataclasses.replace(settings, warehouse=str(folder / "warehouse"))
    with open(root / "bi-published.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when a killed worker dies
        if not (folder / "built").exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker killed mid-build left
            _build(run_settings, folder)
            (folder / "built").touch()
    return Published(run_settings, _versions(spark, run_settings, "first"), _versions(spark, run_settings))


def _build(run_settings, folder) -> None:
    from jobs import pipeline

    shop_history().write(folder / "landing" / "day1")
    _extra_activity().write(folder / "landing" / "day1", name="activity.ndjson")
    pipeline.run(run_settings, folder / "landing", run_id="first")
    _extra_order().write(folder / "landing" / "day2")
    second = dataclasses.replace(run_settings, marts=dataclasses.replace(run_settings.marts, enabled=SECOND_RUN_MARTS))
    pipeline.run(second, folder / "landing", run_id="second")
