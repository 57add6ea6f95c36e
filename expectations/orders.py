"""orders, one row per tenant and order: its status, source, amounts and flags agree with the spec."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation

from expectations.common import rows_satisfy
from jobs.marts.contract import MartContract

# Written from the spec (marts.md), not imported from the job, so a job that drifts is caught.
STATUSES = ("created", "confirmed", "paid", "shipped", "delivered", "cancelled", "refunded")
ORDER_SOURCES = ("web", "mobile_app", "marketplace", "phone", "unknown")
NON_NEGATIVE = ("gross_cents", "discount_cents", "refunded_cents", "items_count", "units")


def expectations(contract: MartContract) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        gxe.ExpectColumnValuesToBeInSet(column="order_source", value_set=list(ORDER_SOURCES)),
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in NON_NEGATIVE),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex="^[A-Z]{3}$"),
        rows_satisfy(
            contract,
            "net_cents = gross_cents - discount_cents",
            shown=("gross_cents", "discount_cents", "net_cents"),
        ),
        # Only valid orders carry revenue; refunds lower it, they do not lower net_cents.
        rows_satisfy(
            contract,
            "revenue_cents = IF(is_valid, net_cents - refunded_cents, 0)",
            shown=("is_valid", "net_cents", "refunded_cents", "revenue_cents"),
        ),
        rows_satisfy(
            contract,
            "is_valid OR NOT is_first_valid_order",
            shown=("is_valid", "is_first_valid_order"),
        ),
    ]
