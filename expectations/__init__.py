"""Expectation suites for the marts: the checks every contract implies, plus each mart's own.

`expectations/<mart>.py` mirrors `jobs/marts/<mart>.py` and holds what the spec says of that mart.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import great_expectations as gx

from expectations.common import share_row_counts, table_expectations
from jobs.marts.contract import MartContract

if TYPE_CHECKING:
    from expectations.reconciliation import ReconciliationSuite


def suite_for(contract: MartContract | ReconciliationSuite) -> gx.ExpectationSuite:
    """A new suite for the contract's major version: common checks first, then the mart's own.

    A run's reconciliation checks (expectations/reconciliation.py) bring their own suite.
    """
    if not isinstance(contract, MartContract):
        return contract.suite()
    try:
        mart = importlib.import_module(f"expectations.{contract.name}")
    except ModuleNotFoundError as error:
        if error.name != f"expectations.{contract.name}":
            raise
        raise LookupError(f"mart {contract.name!r} has no expectations/{contract.name}.py") from error
    return gx.ExpectationSuite(
        name=suite_name(contract),
        expectations=share_row_counts([*table_expectations(contract), *mart.expectations(contract)]),
        notes=f"Grain: {contract.grain}. Key: {', '.join(contract.key)}.",
        meta={"mart": contract.name, "contract_version": contract.version},
    )


def suite_name(contract: MartContract) -> str:
    """One suite per major version: two majors of a mart are published, and validated, side by side."""
    return f"{contract.name}_v{contract.major_version}"
