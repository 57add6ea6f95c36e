"""experiment_results, one row per tenant, experiment and variant: counts, rates and tests against control."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation

from expectations.common import rows_satisfy
from jobs.marts.contract import MartContract

COUNTS = ("visitors", "converters", "revenue_cents", "amounts_in_other_currencies", "contaminated_visitors")
PROBABILITIES = ("conversion_rate", "p_value", "srm_p_value", "expected_share")
COMPARISON = ("uplift_absolute", "uplift_relative", "uplift_ci95_low", "uplift_ci95_high", "p_value")
# Rates are doubles from Python's division of the same integers; allow for the last bits only.
TOLERANCE = 1e-12


def expectations(contract: MartContract) -> list[Expectation]:
    return [
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in COUNTS),
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0, max_value=1) for name in PROBABILITIES),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex="^[A-Z]{3}$"),
        rows_satisfy(contract, "is_control = (variant = 'control')", shown=("variant", "is_control")),
        rows_satisfy(contract, "converters <= visitors", shown=("visitors", "converters")),
        # Rates are defined exactly when there are visitors.
        rows_satisfy(
            contract,
            "IF(visitors > 0, abs(conversion_rate - converters / visitors) <= "
            f"{TOLERANCE} AND abs(revenue_per_visitor_cents - revenue_cents / visitors) <= {TOLERANCE} * greatest(1, revenue_cents),"
            " conversion_rate IS NULL AND revenue_per_visitor_cents IS NULL)",
            shown=("visitors", "converters", "conversion_rate", "revenue_cents", "revenue_per_visitor_cents"),
        ),
        # Control is not compared with itself.
        rows_satisfy(
            contract,
            "NOT is_control OR (" + " AND ".join(f"{name} IS NULL" for name in COMPARISON) + ")",
            shown=("variant", *COMPARISON),
        ),
        rows_satisfy(
            contract,
            "uplift_absolute IS NULL OR (uplift_ci95_low <= uplift_absolute AND uplift_absolute <= uplift_ci95_high)",
            shown=("uplift_absolute", "uplift_ci95_low", "uplift_ci95_high"),
        ),
    ]
