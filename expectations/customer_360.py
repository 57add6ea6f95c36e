"""customer_360, one row per tenant and customer: counts, windows, amounts and RFM scores agree."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation

from expectations.common import rows_satisfy
from jobs.marts.contract import MartContract

# avg_basket_cents is a double from Spark's avg(): products with it may differ in the last bits.
RELATIVE_TOLERANCE = 1e-9
COUNTS = ("valid_orders", "valid_orders_30d", "valid_orders_90d", "valid_orders_365d", "days_since_last_order")
SCORES = ("recency_score", "frequency_score", "monetary_score")
# Null exactly when the customer has no valid order (written from the spec, not from the job).
NULL_WITHOUT_VALID_ORDERS = (
    "currency", "avg_basket_cents", "first_valid_order_date", "last_valid_order_date", "days_since_last_order", *SCORES,
)


def expectations(contract: MartContract) -> list[Expectation]:
    return [
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in COUNTS),
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=1, max_value=5) for name in SCORES),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex="^[A-Z]{3}$"),
        # Amounts in another currency are added as recorded and counted (jobs/marts/currency.py): the
        # latest valid order names the currency, so at most all the others are in another one.
        rows_satisfy(
            contract,
            "amounts_in_other_currencies >= 0 AND amounts_in_other_currencies <= greatest(valid_orders - 1, 0)",
            shown=("currency", "valid_orders", "amounts_in_other_currencies"),
        ),
        rows_satisfy(
            contract,
            "valid_orders_30d <= valid_orders_90d AND valid_orders_90d <= valid_orders_365d"
            " AND valid_orders_365d <= valid_orders",
            shown=("valid_orders_30d", "valid_orders_90d", "valid_orders_365d", "valid_orders"),
        ),
        rows_satisfy(
            contract,
            "IF(valid_orders > 0, "
            + " AND ".join(f"{name} IS NOT NULL" for name in NULL_WITHOUT_VALID_ORDERS)
            + ", "
            + " AND ".join(f"{name} IS NULL" for name in NULL_WITHOUT_VALID_ORDERS)
            + ")",
            shown=("valid_orders", *NULL_WITHOUT_VALID_ORDERS),
        ),
        rows_satisfy(
            contract,
            "valid_orders > 0 OR (revenue_cents = 0 AND revenue_90d_cents = 0)",
            shown=("valid_orders", "revenue_cents", "revenue_90d_cents"),
        ),
        rows_satisfy(
            contract,
            "first_valid_order_date IS NULL OR first_valid_order_date <= last_valid_order_date",
            shown=("first_valid_order_date", "last_valid_order_date"),
        ),
        # Revenue is net minus refunds, so it never exceeds the net total, avg_basket * valid orders.
        rows_satisfy(
            contract,
            "avg_basket_cents IS NULL OR revenue_cents <= avg_basket_cents * valid_orders"
            f" + {RELATIVE_TOLERANCE} * greatest(1, abs(avg_basket_cents * valid_orders))",
            shown=("valid_orders", "revenue_cents", "avg_basket_cents"),
        ),
        # Acquisition and country come from the registration only.
        rows_satisfy(
            contract,
            "registered_at IS NOT NULL OR (acquisition_source IS NULL AND acquisition_medium IS NULL"
            " AND acquisition_campaign IS NULL AND country IS NULL)",
            shown=("registered_at", "acquisition_source", "country"),
        ),
    ]
