"""customer_segments, one row per tenant, segment and member customer, as of the run."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation

from jobs.marts.contract import MartContract
from jobs.segments import CHANNELS


def expectations(contract: MartContract) -> list[Expectation]:
    return [
        # Segment names as conf/segments.yaml allows them (jobs/segments.py).
        gxe.ExpectColumnValuesToMatchRegex(column="segment", regex="^[a-z][a-z0-9_]*$"),
        gxe.ExpectColumnValuesToBeInSet(column="channel", value_set=list(CHANNELS)),
        # Membership is that of one run: one as-of time for the whole table.
        gxe.ExpectColumnUniqueValueCountToBeBetween(column="as_of", min_value=0, max_value=1),
    ]
