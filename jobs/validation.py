"""Validate a mart with Great Expectations before it is published, and keep the results as Data Docs.

One ephemeral GX context per process; each mart's suite, validation definition and checkpoint are
built once. GX is imported on first use: importing it takes seconds, and DAG files import this module.

Data Docs are written by `jobs.data_docs` from the GX validation results, as self-contained HTML
(GX 1.24's own site templates load jQuery, Bootstrap and fonts from CDNs, so they are unreadable
offline, and its custom views cannot replace those templates: see jobs/data_docs.py).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from jobs.marts.contract import MartContract

if TYPE_CHECKING:
    import great_expectations as gx

    from expectations.reconciliation import ReconciliationSuite
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.data_context import AbstractDataContext
    from pyspark.sql import DataFrame

_DATASOURCE = "marts"
# GX's Spark metrics register the batch as one session-wide temp view, `tmp_view`: two validations
# running at once in a process would read each other's frame.
_ONE_VALIDATION_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class FailedExpectation:
    mart: str
    expectation: str  # the GX expectation class and its key arguments
    observed: str  # observed value, or unexpected count and a few unexpected values

    def __str__(self) -> str:
        return f"{self.mart}: {self.expectation}: {self.observed}"


@dataclass(frozen=True)
class SuiteResult:
    mart: str
    success: bool
    evaluated: int
    failed: tuple[FailedExpectation, ...]

    def summary(self) -> str:
        verdict = "passed" if self.success else "FAILED"
        met = self.evaluated - len(self.failed)
        lines = [f"{self.mart}: {verdict}, {met} of {self.evaluated} expectations met"]
        lines += [f"  - {failure.expectation}: {failure.observed}" for failure in self.failed]
        return "\n".join(lines)


class ValidationFailed(Exception):
    """At least one mart failed validation; the message has one line per failed expectation."""

    def __init__(self, results: Sequence[SuiteResult]) -> None:
        self.results = list(results)
        failed = [result for result in self.results if not result.success]
        lines = [f"validation failed for {', '.join(result.mart for result in failed)}:"]
        lines += [str(failure) for result in failed for failure in result.failed]
        super().__init__("\n".join(lines))


def validate_mart(
    frame: DataFrame,
    contract: MartContract,
    *,
    run_id: str,
    data_docs_dir: str | None = None,
    max_failed_examples: int = 5,
) -> SuiteResult:
    """Validate a mart's frame against its suite; add the result to the Data Docs in `data_docs_dir`.

    The frame is cached for the validation (GX scans it once per metric) unless the caller cached
    it already, in which case it stays cached.
    """
    return _validate(frame, contract, contract.name, run_id, data_docs_dir, max_failed_examples)


def validate_reconciliation(
    frame: DataFrame,
    suite: ReconciliationSuite,
    *,
    run_id: str,
    data_docs_dir: str | None = None,
    max_failed_examples: int = 5,
) -> SuiteResult:
    """Validate a run's reconciliation frame (expectations/reconciliation.py) like a mart."""
    return _validate(frame, suite, suite.name, run_id, data_docs_dir, max_failed_examples)


def _validate(
    frame: DataFrame,
    source: MartContract | ReconciliationSuite,
    label: str,
    run_id: str,
    data_docs_dir: str | None,
    max_failed_examples: int,
) -> SuiteResult:
    from great_expectations.core.run_identifier import RunIdentifier

    with _ONE_VALIDATION_AT_A_TIME, _cached(frame):
        checkpoint = _checkpoint(source)
        if not isinstance(source, MartContract):
            # Reconciliation suites of different check sets share one name: make this run's the
            # stored one again, or GX refuses a definition cached for another set as out of date.
            _context().suites.add_or_update(checkpoint.validation_definitions[0].suite)
        outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=run_id))
        ((_key, result),) = outcome.run_results.items()
        _add_values(result, checkpoint.validation_definitions[0], frame, max_failed_examples)
    suite_result = _suite_result(label, result)
    if data_docs_dir:
        from jobs import data_docs

        version = source.version if isinstance(source, MartContract) else None
        record = _docs_record(label, version, run_id, result, suite_result)
        data_docs.record_validation(frame.sparkSession, data_docs_dir, record)
    return suite_result


def raise_for_failures(results: Sequence[SuiteResult]) -> None:
    if any(not result.success for result in results):
        raise ValidationFailed(results)


@functools.cache
def _context() -> AbstractDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        # tqdm bars on stderr for every validation otherwise.
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    # persist=False: GX would cache every frame it validates and never release it; _validate
    # caches for the duration of the validation instead.
    context.data_sources.add_spark(name=_DATASOURCE, persist=False)
    return context


@functools.cache
def _validation_definition(source: MartContract | ReconciliationSuite) -> gx.ValidationDefinition:
    import great_expectations as gx

    from expectations import suite_for

    context = _context()
    suite = context.suites.add_or_update(suite_for(source))
    # A mart's suite is fixed by its contract; a reconciliation suite by the checks of the run, so
    # each set of checks gets its own definition (under the same suite name, for the Data Docs).
    name = suite.name if isinstance(source, MartContract) else f"{suite.name}_{abs(hash(source)):x}"
    asset = context.data_sources.get(_DATASOURCE).add_dataframe_asset(name=name)
    batch = asset.add_batch_definition_whole_dataframe(name="whole frame")
    return context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))


@functools.cache
def _checkpoint(source: MartContract | ReconciliationSuite) -> gx.Checkpoint:
    import great_expectations as gx

    definition = _validation_definition(source)
    return _context().checkpoints.add(
        # BOOLEAN_ONLY first, then the failures again with their values (see _add_values).
        gx.Checkpoint(name=definition.name, validation_definitions=[definition], result_format="BOOLEAN_ONLY")
    )


@contextlib.contextmanager
def _cached(frame: DataFrame) -> Iterator[None]:
    if frame.is_cached:
        yield
        return
    frame.persist()
    try:
        yield
    finally:
        frame.unpersist()


def _add_values(
    result: ExpectationSuiteValidationResult, definition: gx.ValidationDefinition, frame: DataFrame, limit: int
) -> None:
    """Validate again, with their observed and a few unexpected values, the failed expectations and
    the column-list one (Data Docs order a page by its observed columns, and fail without them).

    With SUMMARY for the whole suite, GX samples the unexpected values of every column expectation,
    passing or not: two Spark jobs each, 48 of the 71 jobs that validate orders.
    """
    batch = definition.batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": limit}
    result.results = [
        batch.validate(each.expectation_config.to_domain_obj(), result_format=result_format)
        if not each.success or each.expectation_config.type == "expect_table_columns_to_match_ordered_list"
        else each
        for each in result.results
    ]


def _docs_record(
    label: str, contract_version: str | None, run_id: str, result: ExpectationSuiteValidationResult, summary: SuiteResult
) -> dict:
    """What the Data Docs page shows of one validation: each expectation as the error messages word
    it, with the observed value where GX returned one (failures, and the column list)."""
    from datetime import datetime, timezone

    return {
        "run_id": run_id,
        "suite": result.suite_name,
        "label": label,
        "contract_version": contract_version,
        "validated_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "success": summary.success,
        "evaluated": summary.evaluated,
        "expectations": [
            {
                "expectation": _describe(each),
                "success": bool(each.success),
                "observed": "" if each.success else _observed(each),
            }
            for each in result.results
        ],
    }


def _suite_result(mart: str, result: ExpectationSuiteValidationResult) -> SuiteResult:
    return SuiteResult(
        mart=mart,
        success=bool(result.success),
        evaluated=int(result.statistics["evaluated_expectations"]),
        failed=tuple(
            FailedExpectation(mart, _describe(each), _observed(each))
            for each in result.results
            if not each.success
        ),
    )


def _describe(result: ExpectationValidationResult) -> str:
    """The expectation as it is written in GX 1.x code: its class and key arguments."""
    from great_expectations.expectations.registry import get_expectation_impl

    config = result.expectation_config
    name = get_expectation_impl(config.type).__name__
    if "unexpected_when" in config.kwargs:
        return f"{name}({config.description})"
    arguments = ", ".join(f"{key}={value!r}" for key, value in config.kwargs.items() if key != "batch_id")
    return f"{name}({arguments})"


def _observed(result: ExpectationValidationResult) -> str:
    """The result's own words, which hold at most `max_failed_examples` values (see _add_values)."""
    error = _error_message(result.exception_info)
    if error:
        return error
    summary = result.result or {}
    if "unexpected_count" in summary:
        counted = f"{summary['unexpected_count']} of {summary['element_count']} rows unexpected"
        examples = list(dict.fromkeys(_show(value) for value in summary.get("partial_unexpected_list") or []))
        return f"{counted}, e.g. {', '.join(examples)}" if examples else counted
    rows = summary.get("details", {}).get("unexpected_rows")
    if rows is not None:
        count = summary["observed_value"]
        return f"{count} row{'' if count == 1 else 's'}, e.g. " + "; ".join(_show(row) for row in rows)
    if "column_list" in result.expectation_config.kwargs and isinstance(summary.get("observed_value"), list):
        return _column_difference(result.expectation_config.kwargs["column_list"], summary["observed_value"])
    return f"observed {summary.get('observed_value')!r}"


def _error_message(exception_info: dict | None) -> str | None:
    """GX reports an error either directly or keyed by the metric that raised it."""
    info = exception_info or {}
    for candidate in [info] if "raised_exception" in info else info.values():
        if isinstance(candidate, dict) and candidate.get("raised_exception"):
            return str(candidate.get("exception_message")).splitlines()[0]
    return None


def _column_difference(expected: list[str], observed: list[str]) -> str:
    missing = [name for name in expected if name not in observed]
    extra = [name for name in observed if name not in expected]
    if not missing and not extra:
        return f"columns in another order: {observed}"
    return f"missing {missing}, unexpected {extra}"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "(" + ", ".join(f"{name}={_show(item)}" for name, item in value.items()) + ")"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else str(value)
