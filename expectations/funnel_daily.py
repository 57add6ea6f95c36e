"""funnel_daily, one row per tenant and session date."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation

from expectations.common import rows_satisfy
from jobs.marts.contract import MartContract

STEPS = ("sessions_with_view", "with_add_to_cart", "with_order", "with_valid_order")


def expectations(contract: MartContract) -> list[Expectation]:
    return [
        # A date has a row only when it has a known session.
        gxe.ExpectColumnValuesToBeBetween(column="sessions", min_value=1),
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in STEPS),
        # The steps are not nested (an add without a view is possible); each counts sessions of the
        # day, and a valid order is an order, so only these orderings hold by definition.
        *(
            rows_satisfy(contract, f"{step} <= sessions", shown=("sessions", step))
            for step in ("sessions_with_view", "with_add_to_cart")
        ),
        rows_satisfy(
            contract,
            "with_valid_order <= with_order AND with_order <= sessions",
            shown=("sessions", "with_order", "with_valid_order"),
        ),
    ]
