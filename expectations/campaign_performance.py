"""campaign_performance, one row per tenant and campaign: counts, rates, amounts and ROMI agree."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation

from expectations.common import rows_satisfy
from jobs.marts.contract import MartContract

# Rates and ROMI are doubles from Spark's division; recomputed here, they may differ in the last bits.
RELATIVE_TOLERANCE = 1e-9
COUNTS = ("recipients", "opens", "openers", "clicks", "clickers", "attributed_orders", "cost_cents")
RATES = ("open_rate", "click_rate")


def expectations(contract: MartContract) -> list[Expectation]:
    return [
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in COUNTS),
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0, max_value=1) for name in RATES),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex="^[A-Z]{3}$"),
        # Amounts in another currency are added as recorded and counted (jobs/marts/currency.py).
        gxe.ExpectColumnValuesToBeBetween(column="amounts_in_other_currencies", min_value=0),
        rows_satisfy(
            contract,
            "currency IS NOT NULL OR (cost_cents = 0 AND attributed_orders = 0 AND attributed_revenue_cents = 0)",
            shown=("currency", "cost_cents", "attributed_orders", "attributed_revenue_cents"),
        ),
        rows_satisfy(
            contract, "openers <= opens AND clickers <= clicks", shown=("opens", "openers", "clicks", "clickers")
        ),
        rows_satisfy(
            contract,
            "attributed_orders > 0 OR attributed_revenue_cents = 0",
            shown=("attributed_orders", "attributed_revenue_cents"),
        ),
        rows_satisfy(
            contract,
            "IF(recipients > 0,"
            f" abs(open_rate - openers / recipients) <= {RELATIVE_TOLERANCE}"
            f" AND abs(click_rate - clickers / recipients) <= {RELATIVE_TOLERANCE},"
            " open_rate IS NULL AND click_rate IS NULL)",
            shown=("recipients", "openers", "clickers", "open_rate", "click_rate"),
        ),
        # try_divide: a zero cost gives null instead of failing the query (ANSI mode).
        rows_satisfy(
            contract,
            "IF(cost_cents = 0, romi IS NULL,"
            " abs(romi - try_divide(attributed_revenue_cents - cost_cents, cost_cents))"
            f" <= {RELATIVE_TOLERANCE} * greatest(1, abs(romi)))",
            shown=("attributed_revenue_cents", "cost_cents", "romi"),
        ),
    ]
