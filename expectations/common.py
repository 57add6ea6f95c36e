"""What every mart promises by its contract alone: its columns, its key, its non-null columns."""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation, UnexpectedRowsExpectation
from great_expectations.expectations.expectation_configuration import parse_result_format

from jobs.marts.contract import MartContract


class UnexpectedRowsWithExamples(UnexpectedRowsExpectation):
    """GX's UnexpectedRowsExpectation that also returns a few offending rows with SUMMARY.

    GX fetches the offending rows for every result format but returns them only with COMPLETE,
    which for the column expectations would mean listing every unexpected value of the table.
    """

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: Any = None,
    ) -> dict:
        result = super()._validate(metrics, runtime_configuration, execution_engine)
        summary = result.get("result")  # absent with BOOLEAN_ONLY
        if result["success"] or summary is None or "details" in summary:
            return result
        result_format = parse_result_format(self._get_result_format(runtime_configuration))
        examples = metrics["unexpected_rows_query.table"][: result_format["partial_unexpected_count"]]
        summary["details"] = {"unexpected_rows": examples}
        return result


def table_expectations(contract: MartContract) -> list[Expectation]:
    """Exactly the contract's columns in order; a unique key; no nulls outside `nullable`.

    The key's columns are checked not null like every other column the contract does not declare
    nullable (basket_daily's key holds `channel_source`, null for a session without a source).
    """
    return [
        gxe.ExpectTableColumnsToMatchOrderedList(column_list=list(contract.column_names)),
        _key_is_unique(contract.key),
        *(
            gxe.ExpectColumnValuesToNotBeNull(column=name)
            for name in contract.column_names
            if name not in contract.nullable
        ),
    ]


def rows_satisfy(contract: MartContract, rule: str, *, shown: tuple[str, ...]) -> Expectation:
    """Every row satisfies `rule`, a Spark SQL boolean expression; a row where it is null fails too.

    Failures quote the offending rows by their key and the `shown` columns.
    """
    columns = ", ".join(dict.fromkeys((*contract.key, *shown)))
    return UnexpectedRowsWithExamples(
        unexpected_rows_query=f"SELECT {columns} FROM {{batch}} WHERE NOT COALESCE({rule}, FALSE)",
        description=rule,
    )


def _key_is_unique(key: tuple[str, ...]) -> Expectation:
    if len(key) == 1:
        return gxe.ExpectColumnValuesToBeUnique(column=key[0])
    return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(key))
