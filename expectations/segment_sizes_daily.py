"""segment_sizes_daily, one row per tenant, as-of date and segment: its size at that day's last run."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation

from expectations.common import rows_satisfy
from jobs.marts.contract import MartContract
from jobs.segments import CHANNELS


def expectations(contract: MartContract) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToBeBetween(column="customers", min_value=0),
        gxe.ExpectColumnValuesToMatchRegex(column="segment", regex="^[a-z][a-z0-9_]*$"),
        gxe.ExpectColumnValuesToBeInSet(column="channel", value_set=list(CHANNELS)),
        # A day's row is the one of that day's (UTC) last run.
        rows_satisfy(contract, "as_of_date = to_date(as_of)", shown=("as_of",)),
    ]
