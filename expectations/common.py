"""What every mart promises by its contract alone: its columns, its key, its non-null columns; and the
expectation for rules a row must satisfy, whose rules of one suite are counted in one Spark job."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import great_expectations.expectations as gxe
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.core.result_format import ResultFormat
from great_expectations.execution_engine import SparkDFExecutionEngine
from great_expectations.expectations import Expectation
from great_expectations.expectations.expectation import BatchExpectation
from great_expectations.expectations.expectation_configuration import parse_result_format
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider
from great_expectations.expectations.registry import get_metric_kwargs
from great_expectations.validator.metric_configuration import MetricConfiguration
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.marts.contract import MartContract

_COUNTS = "row_conditions.counts"
_EXAMPLES = "row_conditions.examples"


class ExpectRowsToSatisfy(BatchExpectation):
    """No row of the batch meets `unexpected_when`, a Spark SQL condition; a failure quotes a few
    offending rows by their `shown` columns.

    GX's UnexpectedRowsExpectation runs two queries per expectation (the rows, then their count),
    each its own Spark job: a run's 12 suites hold 43 such rules, 86 jobs. Here every expectation of a suite asks for
    one metric, the count of rows meeting each of `suite_conditions` (all the suite's conditions,
    set by `share_row_counts`), which GX resolves once for the suite, in one aggregation; the rows
    are fetched only for a failure's report.
    """

    unexpected_when: str
    shown: list[str]
    suite_conditions: list[str] = []

    domain_keys: ClassVar[tuple[str, ...]] = ("batch_id",)
    success_keys: ClassVar[tuple[str, ...]] = ("unexpected_when", "shown", "suite_conditions")

    def get_validation_dependencies(self, execution_engine: Any = None, runtime_configuration: dict | None = None):
        dependencies = super().get_validation_dependencies(execution_engine, runtime_configuration)
        domain = get_metric_kwargs(_COUNTS, self.configuration, runtime_configuration)["metric_domain_kwargs"]
        conditions = list(dict.fromkeys([*self.suite_conditions, self.unexpected_when]))
        dependencies.set_metric_configuration(
            _COUNTS, MetricConfiguration(_COUNTS, domain, {"conditions": conditions})
        )
        result_format = parse_result_format(self._get_result_format(runtime_configuration))
        if result_format["result_format"] != ResultFormat.BOOLEAN_ONLY:
            examples = {
                "condition": self.unexpected_when,
                "columns": list(self.shown),
                "limit": result_format["partial_unexpected_count"],
            }
            dependencies.set_metric_configuration(_EXAMPLES, MetricConfiguration(_EXAMPLES, domain, examples))
        return dependencies

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine: Any = None) -> dict:
        counted = metrics[_COUNTS]
        if self.unexpected_when in counted["errors"]:
            raise RowConditionFailed(counted["errors"][self.unexpected_when])
        count = counted["counts"][self.unexpected_when]
        success = count == 0
        result_format = parse_result_format(self._get_result_format(runtime_configuration))
        if result_format["result_format"] == ResultFormat.BOOLEAN_ONLY:
            return {"success": success}
        result: dict[str, Any] = {"observed_value": count}
        if not success:
            result["details"] = {"unexpected_rows": metrics[_EXAMPLES]}
        return {"success": success, "result": result}


class RowConditionFailed(RuntimeError):
    """Spark could not evaluate a row condition (a column it names is missing, a runtime error)."""


class RowConditionCounts(TableMetricProvider):
    metric_name = _COUNTS
    value_keys = ("conditions",)

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
        frame, _, _ = execution_engine.get_compute_domain(metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE)
        return count_rows_meeting(frame, metric_value_kwargs["conditions"])


class RowConditionExamples(TableMetricProvider):
    metric_name = _EXAMPLES
    value_keys = ("condition", "columns", "limit")

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
        frame, _, _ = execution_engine.get_compute_domain(metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE)
        rows = frame.where(metric_value_kwargs["condition"]).select(*metric_value_kwargs["columns"])
        return [row.asDict() for row in rows.limit(metric_value_kwargs["limit"]).collect()]


def count_rows_meeting(frame: DataFrame, conditions: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{"counts": condition -> rows meeting it, "errors": condition -> why Spark could not evaluate it}.

    One aggregation for all conditions. If it fails (a condition names a missing column, or raises
    an ANSI error as it runs), each condition is counted on its own, so that an error is reported
    against the conditions that raise it and the others are still counted.
    """
    columns = {condition: F.count_if(F.expr(condition)) for condition in dict.fromkeys(conditions)}
    try:
        counted = frame.agg(*(column.alias(f"c{n}") for n, column in enumerate(columns.values()))).first()
        return {"counts": dict(zip(columns, counted)), "errors": {}}
    except Exception:  # noqa: BLE001 (each condition again, alone: the error goes to those that raise it)
        pass
    counts: dict[str, int] = {}
    errors: dict[str, str] = {}
    for condition, column in columns.items():
        try:
            counts[condition] = frame.agg(column).first()[0]
        except Exception as error:  # noqa: BLE001 (reported as this condition's failure)
            errors[condition] = str(error)
    return {"counts": counts, "errors": errors}


def share_row_counts(expectations: list[Expectation]) -> list[Expectation]:
    """The suite's expectations, each ExpectRowsToSatisfy knowing every condition of the suite, so
    that they all ask for the same counts (see ExpectRowsToSatisfy)."""
    conditions = [each.unexpected_when for each in expectations if isinstance(each, ExpectRowsToSatisfy)]
    return [
        each.copy(update={"suite_conditions": conditions}) if isinstance(each, ExpectRowsToSatisfy) else each
        for each in expectations
    ]


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
    return ExpectRowsToSatisfy(
        unexpected_when=f"NOT COALESCE({rule}, FALSE)",
        shown=list(dict.fromkeys((*contract.key, *shown))),
        description=rule,
    )


def _key_is_unique(key: tuple[str, ...]) -> Expectation:
    if len(key) == 1:
        return gxe.ExpectColumnValuesToBeUnique(column=key[0])
    return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(key))
