"""Reconciliation: the staged marts' totals against the same totals derived directly from silver
events, and across marts. Run at validation, after every mart's own suite; a mismatch fails the run
like any expectation, so nothing of it is published.

Each check is one function registered with `@check`: it receives the run's staged marts and silver
events (only those that occurred up to the run's as-of time) and returns one row per tenant (and
currency, when amounts are compared) with the `expected` and the `observed` value of a `measure`.
The rows of every check form one small DataFrame, validated by GX with one expectation per check
(`expected = observed` on that check's rows), so the results also appear in the Data Docs and a
failure quotes the check, the tenant, the expected and the observed value.

A check runs only when every mart it reads is enabled; otherwise it is reported as skipped.

Adding a check is adding one function here (see `experiment_visitors_add_up`, the last one).

The derivations from silver are written from the spec (shared `marts.md`), independently of the
mart code, so a projection bug cannot hide behind the code that made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from typing import Callable, Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.marts.contract import MartContract

# The reconciliation frame, validated like a mart (one GX suite, `reconciliation`).
CONTRACT = MartContract(
    name="reconciliation",
    version="1.0",
    grain="one row per check, tenant, currency (null where a check compares all of a tenant's) and measure",
    key=("check", "tenant_id", "currency", "measure"),
    columns=(
        ("check", "string"),
        ("tenant_id", "string"),
        ("currency", "string"),
        ("measure", "string"),
        ("expected", "bigint"),
        ("observed", "bigint"),
    ),
    nullable=("currency",),
)

_ROW_COLUMNS = ("tenant_id", "currency", "measure", "expected", "observed")


@dataclass(frozen=True)
class Inputs:
    marts: Mapping[str, DataFrame]  # the run's staged marts
    events: Mapping[str, DataFrame]  # silver events with occurred_at <= as_of
    as_of: datetime


@dataclass(frozen=True)
class Check:
    name: str
    description: str  # what must hold, in the spec's words
    marts: tuple[str, ...]
    events: tuple[str, ...]
    rows: Callable[[Inputs], DataFrame]  # tenant_id, currency, measure, expected, observed


CHECKS: dict[str, Check] = {}


def check(name: str, *, description: str, marts: tuple[str, ...], events: tuple[str, ...] = ()):
    """Register a reconciliation check (see the module docstring)."""

    def register(rows: Callable[[Inputs], DataFrame]) -> Callable[[Inputs], DataFrame]:
        CHECKS[name] = Check(name, description, marts, events, rows)
        return rows

    return register


def runnable(enabled: tuple[str, ...] | list[str]) -> tuple[list[Check], list[str]]:
    """The checks whose marts are all enabled, and a sentence for each one skipped."""
    ran, skipped = [], []
    for each in CHECKS.values():
        missing = [mart for mart in each.marts if mart not in enabled]
        if missing:
            skipped.append(f"{each.name} skipped: {', '.join(missing)} not enabled")
        else:
            ran.append(each)
    return ran, skipped


def reconciliation_frame(checks: list[Check], inputs: Inputs) -> DataFrame:
    """Every check's rows, with the check's name, in the CONTRACT's columns."""
    frames = [
        each.rows(inputs).select(F.lit(each.name).alias("check"), *_ROW_COLUMNS) for each in checks
    ]
    if not frames:
        spark = next(iter(inputs.marts.values())).sparkSession
        return spark.createDataFrame([], ", ".join(f"`{n}` {t}" for n, t in CONTRACT.columns))
    return CONTRACT.conform(reduce(DataFrame.unionByName, frames))


@dataclass(frozen=True)
class ReconciliationSuite:
    """The GX suite for a run's checks: one expectation per check that ran (skipped ones are absent,
    so Data Docs never show a check as met that did not run)."""

    checks: tuple[tuple[str, str], ...]  # (name, description)

    @property
    def name(self) -> str:
        return CONTRACT.name

    def suite(self):
        """The GX suite: the frame's own contract (columns, unique key), then one expectation per check."""
        import great_expectations as gx

        from expectations.common import share_row_counts, table_expectations

        return gx.ExpectationSuite(
            name=self.name,
            expectations=share_row_counts([*table_expectations(CONTRACT), *self.expectations()]),
            notes="Totals of the staged marts against silver events and against each other.",
            meta={"mart": CONTRACT.name, "contract_version": CONTRACT.version},
        )

    def expectations(self) -> list:
        from expectations.common import ExpectRowsToSatisfy

        return [
            ExpectRowsToSatisfy(
                unexpected_when=f"`check` = '{name}' AND NOT (expected <=> observed)",
                shown=["check", "tenant_id", "currency", "measure", "expected", "observed"],
                description=f"{name}: {description}",
            )
            for name, description in self.checks
        ]


def suite_of(checks: list[Check]) -> ReconciliationSuite:
    return ReconciliationSuite(tuple((each.name, each.description) for each in checks))


def expectations(contract: MartContract) -> list:
    """Every registered check (the suite `suite_for(CONTRACT)` builds); runs use `suite_of`."""
    return suite_of(list(CHECKS.values())).expectations()


# --- Derivations from silver, from the spec's definitions ------------------------------------

def valid_orders_from_events(events: Mapping[str, DataFrame]) -> DataFrame:
    """Per order: tenant, currency, and revenue, for valid orders only.

    Valid order: has an OrderConfirmed and no OrderCancelled. Its amounts come from the OrderCreated
    first in its stream (lowest stream_version); revenue = total - promotions - refunds.
    """
    order = ["tenant_id", "order_id"]
    created = events["OrderCreated"].groupBy(*order).agg(
        F.min_by(F.struct("total_cents", "currency"), F.struct("stream_version", "global_position")).alias("first")
    )
    discounts = events["PromotionApplied"].groupBy(*order).agg(F.sum("discount_cents").alias("discount_cents"))
    refunds = events["OrderRefunded"].groupBy(*order).agg(F.sum("amount_cents").alias("refunded_cents"))
    return (
        created.join(events["OrderConfirmed"].select(*order), on=order, how="left_semi")
        .join(events["OrderCancelled"].select(*order), on=order, how="left_anti")
        .join(discounts, on=order, how="left")
        .join(refunds, on=order, how="left")
        .select(
            *order,
            F.col("first.currency").alias("currency"),
            (F.col("first.total_cents") - _zero_if_null("discount_cents") - _zero_if_null("refunded_cents")).alias(
                "revenue_cents"
            ),
        )
    )


def order_totals(frame: DataFrame, keys: list[str]) -> DataFrame:
    """valid_orders and revenue_cents per `keys`, from rows of one valid order each."""
    return frame.groupBy(*keys).agg(F.count(F.lit(1)).alias("valid_orders"), F.sum("revenue_cents").alias("revenue_cents"))


def compare(expected: DataFrame, observed: DataFrame, keys: list[str], measures: list[str]) -> DataFrame:
    """One row per key and measure; a key on one side only compares with 0 on the other."""
    same_key = reduce(Column.__and__, [F.col(f"e.{key}").eqNullSafe(F.col(f"o.{key}")) for key in keys])
    joined = expected.alias("e").join(observed.alias("o"), on=same_key, how="full")
    frames = [
        joined.select(
            *(F.coalesce(F.col(f"e.{key}"), F.col(f"o.{key}")).alias(key) for key in keys),
            F.lit(measure).alias("measure"),
            F.coalesce(F.col(f"e.{measure}"), F.lit(0)).cast("bigint").alias("expected"),
            F.coalesce(F.col(f"o.{measure}"), F.lit(0)).cast("bigint").alias("observed"),
        )
        for measure in measures
    ]
    result = reduce(DataFrame.unionByName, frames)
    return result if "currency" in keys else result.withColumn("currency", F.lit(None).cast("string"))


# --- The checks --------------------------------------------------------------------------------

_ORDER_EVENTS = ("OrderCreated", "OrderConfirmed", "OrderCancelled", "PromotionApplied", "OrderRefunded")
_TOTALS = ["valid_orders", "revenue_cents"]
# Orders have one currency each, so orders and events compare per currency too. The daily marts
# add amounts as recorded (jobs/marts/currency.py), so they compare with orders per tenant.
_TENANT_CURRENCY = ["tenant_id", "currency"]
_TENANT = ["tenant_id"]


@check(
    "orders_match_silver_events",
    description="valid orders and their revenue in orders equal those derived from silver events",
    marts=("orders",),
    events=_ORDER_EVENTS,
)
def orders_match_silver_events(inputs: Inputs) -> DataFrame:
    expected = order_totals(valid_orders_from_events(inputs.events), _TENANT_CURRENCY)
    observed = _orders_totals(inputs.marts["orders"], _TENANT_CURRENCY)
    return compare(expected, observed, _TENANT_CURRENCY, _TOTALS)


@check(
    "basket_daily_matches_orders",
    description="valid orders and revenue summed over basket_daily equal those of orders",
    marts=("orders", "basket_daily"),
)
def basket_daily_matches_orders(inputs: Inputs) -> DataFrame:
    observed = inputs.marts["basket_daily"].groupBy(*_TENANT).agg(*(F.sum(m).alias(m) for m in _TOTALS))
    return compare(_orders_totals(inputs.marts["orders"], _TENANT), observed, _TENANT, _TOTALS)


@check(
    "marketing_kpis_daily_matches_orders",
    description="valid orders and revenue summed over marketing_kpis_daily equal those of orders",
    marts=("orders", "marketing_kpis_daily"),
)
def marketing_kpis_daily_matches_orders(inputs: Inputs) -> DataFrame:
    observed = inputs.marts["marketing_kpis_daily"].groupBy(*_TENANT).agg(*(F.sum(m).alias(m) for m in _TOTALS))
    return compare(_orders_totals(inputs.marts["orders"], _TENANT), observed, _TENANT, _TOTALS)


@check(
    "cart_abandonment_counts_every_cart_once",
    description="carts summed over cart_abandonment_daily equal the distinct carts with a CartItemAdded",
    marts=("cart_abandonment_daily",),
    events=("CartItemAdded",),
)
def cart_abandonment_counts_every_cart_once(inputs: Inputs) -> DataFrame:
    expected = inputs.events["CartItemAdded"].groupBy("tenant_id").agg(F.countDistinct("cart_id").alias("carts"))
    observed = inputs.marts["cart_abandonment_daily"].groupBy("tenant_id").agg(F.sum("carts").alias("carts"))
    return compare(expected, observed, _TENANT, ["carts"])


@check(
    "experiment_visitors_add_up",
    description="visitors over an experiment's variants plus its contaminated visitors equal the distinct visitors exposed",
    marts=("experiment_results",),
    events=("ExperimentExposed",),
)
def experiment_visitors_add_up(inputs: Inputs) -> DataFrame:
    exposed = inputs.events["ExperimentExposed"].select("tenant_id", "experiment_id", "anonymous_id").distinct()
    expected = exposed.groupBy("tenant_id").agg(F.count("anonymous_id").alias("visitors"))
    # contaminated_visitors is per experiment, repeated on each of its variants' rows: taken once.
    per_experiment = inputs.marts["experiment_results"].groupBy("tenant_id", "experiment_id").agg(
        (F.sum("visitors") + F.max("contaminated_visitors")).alias("visitors")
    )
    observed = per_experiment.groupBy("tenant_id").agg(F.sum("visitors").alias("visitors"))
    return compare(expected, observed, _TENANT, ["visitors"])


def _orders_totals(orders: DataFrame, keys: list[str]) -> DataFrame:
    return order_totals(orders.filter(F.col("is_valid")), keys)


def _zero_if_null(name: str) -> Column:
    return F.coalesce(F.col(name), F.lit(0))


def reconcile(
    spark,
    warehouse: str,
    marts: Mapping[str, DataFrame],
    as_of: datetime,
    *,
    run_id: str,
    data_docs_dir: str | None = None,
    max_failed_examples: int = 5,
):
    """Run every check whose marts are in `marts` against silver as of `as_of`, validate the rows
    with GX; return the SuiteResult and a sentence per check skipped."""
    from jobs.silver import read_silver
    from jobs.validation import validate_reconciliation

    checks, skipped = runnable(list(marts))
    names = sorted({name for each in checks for name in each.events})
    events = {name: read_silver(spark, warehouse, name).filter(F.col("occurred_at") <= F.lit(as_of)) for name in names}
    frame = reconciliation_frame(checks, Inputs(marts=marts, events=events, as_of=as_of))
    result = validate_reconciliation(
        frame, suite_of(checks), run_id=run_id, data_docs_dir=data_docs_dir, max_failed_examples=max_failed_examples
    )
    return result, skipped
