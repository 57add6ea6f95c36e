"""Each one-step upcaster alone, and each chain from v1 to the newest version."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F

from jobs.events.catalog import CATALOG
from jobs.upcasting import steps
from jobs.upcasting.chain import upcast_payload


def _payload(spark, event_name, version, data):
    ddl = CATALOG[event_name].schemas[version]
    return spark.createDataFrame([(json.dumps(data),)], "data string").select(F.from_json("data", ddl).alias("p"))


@pytest.mark.parametrize(
    ("amount", "cents"),
    [("145.1", 14510), ("0.005", 1), ("10.004", 1000), ("19.99", 1999), ("0.1", 10), ("1e2", 10000)],
)
def test_amounts_in_major_units_become_the_nearest_cent(spark, amount, cents):
    frame = spark.createDataFrame([(f'{{"unit_price": {amount}}}',)], "data string")
    value = frame.select(steps.to_cents(F.from_json("data", "unit_price DECIMAL(38,10)")["unit_price"])).first()[0]
    assert value == cents


@pytest.mark.parametrize(
    ("referrer", "source", "medium"),
    [
        ("https://www.Google.com/search?q=x", "google.com", "referral"),
        ("http://news.example.org:8080/a", "news.example.org", "referral"),
        (None, "direct", "none"),
        ("", "direct", "none"),
        ("not a url", "unknown", "referral"),
    ],
)
def test_customer_registered_v1_to_v2_derives_the_acquisition_from_the_referrer(spark, referrer, source, medium):
    frame = _payload(spark, "CustomerRegistered", 1, {"customer_id": "c1", "email": "a@b.c", "country": "FR", "referrer": referrer})
    row = frame.select(steps.customer_registered_v1_to_v2(F.col("p")).alias("p")).first()["p"]
    assert (row["acquisition"]["source"], row["acquisition"]["medium"], row["acquisition"]["campaign"]) == (source, medium, None)
    assert (row["customer_id"], row["email"], row["country"]) == ("c1", "a@b.c", "FR")


def test_cart_item_added_v1_to_v2_converts_the_unit_price_and_sets_eur(spark):
    data = {"cart_id": "k", "session_id": "s", "customer_id": None, "product_id": "p", "category": "c", "quantity": 3, "unit_price": 9.99}
    row = _payload(spark, "CartItemAdded", 1, data).select(steps.cart_item_added_v1_to_v2(F.col("p")).alias("p")).first()["p"]
    assert row.asDict() == {**{k: v for k, v in data.items() if k != "unit_price"}, "unit_price_cents": 999, "currency": "EUR"}


def test_order_created_v1_to_v2_converts_items_and_total(spark):
    data = {"order_id": "o", "cart_id": "k", "customer_id": "c", "session_id": "s",
            "items": [{"product_id": "p", "category": "x", "quantity": 2, "unit_price": 145.1}], "total": 290.2}
    row = _payload(spark, "OrderCreated", 1, data).select(steps.order_created_v1_to_v2(F.col("p")).alias("p")).first()["p"]
    assert row["total_cents"] == 29020 and row["currency"] == "EUR"
    assert row["items"][0].asDict() == {"product_id": "p", "category": "x", "quantity": 2, "unit_price_cents": 14510}


def test_order_created_v2_to_v3_sets_an_unknown_order_source(spark):
    data = {"order_id": "o", "cart_id": "k", "customer_id": "c", "session_id": None, "items": [], "total_cents": 0, "currency": "GBP"}
    row = _payload(spark, "OrderCreated", 2, data).select(steps.order_created_v2_to_v3(F.col("p")).alias("p")).first()["p"]
    assert row["order_source"] == "unknown" and row["currency"] == "GBP"


def test_the_order_created_chain_from_v1_gives_the_v3_shape(spark):
    data = {"order_id": "o", "cart_id": "k", "customer_id": "c", "session_id": "s",
            "items": [{"product_id": "p", "category": "x", "quantity": 1, "unit_price": 5}], "total": 5}
    frame = _payload(spark, "OrderCreated", 1, data).select(upcast_payload(F.col("p"), CATALOG["OrderCreated"], 1).alias("p"))
    newest = _payload(spark, "OrderCreated", 3, {}).schema["p"].dataType
    assert [f.name for f in frame.schema["p"].dataType.fields] == [f.name for f in newest.fields]
    assert frame.first()["p"]["total_cents"] == 500


def test_every_event_type_has_an_upcaster_for_every_version_but_the_newest():
    for event_type in CATALOG.values():
        assert sorted(event_type.upcasters) == list(range(1, event_type.newest_version))
