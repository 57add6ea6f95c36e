"""basket_daily against rows worked out by hand from tests.histories.shop_history."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from jobs.marts import basket_daily
from tests.histories import as_of

AS_OF = as_of("2026-01-06T12:00:00+00:00")
JAN_5, JAN_6 = dt.date(2026, 1, 5), dt.date(2026, 1, 6)

# (tenant, date, channel source, order source, currency, valid orders, revenue, net, discount, avg basket, avg units,
#  amounts in other currencies)
EXPECTED = [
    # o1 (2500, 2 units) + o2 (4000 - 500 promotion, 1 unit); o3 is cancelled, o6 never confirmed.
    ("t1", JAN_5, "google", "unknown", "EUR", 2, 6000, 6000, 500, 3000.0, 1.5, 0),
    # o4 is refunded in full: revenue 0, but the refund does not lower the average basket.
    ("t1", JAN_5, "unknown", "phone", "EUR", 1, 0, 1000, 0, 1000.0, 1.0, 0),
    ("t1", JAN_6, "unknown", "mobile_app", "EUR", 1, 2000, 2000, 0, 2000.0, 4.0, 0),
    ("t2", JAN_5, "unknown", "web", "GBP", 1, 999, 999, 0, 999.0, 1.0, 0),
]



def test_basket_daily_matches_the_rows_worked_out_by_hand(spark, shop_sources):
    actual = basket_daily.build(shop_sources, AS_OF)
    expected = spark.createDataFrame(EXPECTED, actual.schema)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_day_without_valid_orders_has_no_row(spark, shop_sources):
    only_invalid = shop_sources["orders"].filter("order_id in ('o3', 'o6')")
    assert basket_daily.build({"orders": only_invalid}, AS_OF).count() == 0
