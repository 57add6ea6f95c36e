"""marketing_kpis_daily, one row per tenant and UTC date: counts, amounts and ratios agree."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation

from expectations.common import rows_satisfy
from jobs.marts.contract import MartContract

# Averages and ratios are doubles computed by Spark; recomputed here, they may differ in the last bits.
RELATIVE_TOLERANCE = 1e-9
COUNTS = ("sessions", "visitors", "valid_orders", "new_customers", "spend_cents", "avg_basket_cents", "cac_cents")


def expectations(contract: MartContract) -> list[Expectation]:
    return [
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in COUNTS),
        # Not at most 1: orders without a session count, and an order may follow its session's day.
        gxe.ExpectColumnValuesToBeBetween(column="conversion_rate", min_value=0),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex="^[A-Z]{3}$"),
        # Amounts in another currency are added as recorded and counted (jobs/marts/currency.py).
        gxe.ExpectColumnValuesToBeBetween(column="amounts_in_other_currencies", min_value=0),
        rows_satisfy(
            contract,
            "currency IS NOT NULL OR (valid_orders = 0 AND spend_cents = 0)",
            shown=("currency", "valid_orders", "spend_cents"),
        ),
        rows_satisfy(
            contract,
            "visitors <= sessions AND (visitors = 0) = (sessions = 0)",
            shown=("sessions", "visitors"),
        ),
        # Revenue is net minus refunds: it never exceeds the net total, avg_basket * valid orders.
        rows_satisfy(
            contract,
            "IF(valid_orders = 0, avg_basket_cents IS NULL AND revenue_cents = 0,"
            " revenue_cents <= avg_basket_cents * valid_orders"
            f" + {RELATIVE_TOLERANCE} * greatest(1, abs(avg_basket_cents * valid_orders)))",
            shown=("valid_orders", "revenue_cents", "avg_basket_cents"),
        ),
        rows_satisfy(
            contract,
            "IF(sessions = 0, conversion_rate IS NULL,"
            f" abs(conversion_rate - valid_orders / sessions) <= {RELATIVE_TOLERANCE} * greatest(1, conversion_rate))",
            shown=("sessions", "valid_orders", "conversion_rate"),
        ),
        rows_satisfy(
            contract,
            "IF(new_customers = 0, cac_cents IS NULL,"
            f" abs(cac_cents - spend_cents / new_customers) <= {RELATIVE_TOLERANCE} * greatest(1, cac_cents))",
            shown=("spend_cents", "new_customers", "cac_cents"),
        ),
    ]
