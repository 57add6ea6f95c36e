"""One row per tenant and campaign: email reach and engagement, attributed valid orders, cost and ROMI."""

from __future__ import annotations

from functools import reduce
from typing import Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.marts.contract import BuildContext, MartContract
from jobs.marts.currency import count_if, other_currency, precedence, sum_if, with_row_currency
from jobs.marts.orders import changed_orders
from jobs.marts.restate import (
    Changes, Restatement, Sources, campaign_sessions_too_many, keyed, keyed_union, narrowed, renamed, semi,
)
from jobs.marts.sessions import known_sessions

CONTRACT = MartContract(
    name="campaign_performance",
    version="1.0",
    grain="one row per tenant and campaign (seen in a campaign stream or as a known session's campaign)",
    key=("tenant_id", "campaign_id"),
    columns=(
        ("tenant_id", "string"),
        ("campaign_id", "string"),
        # The currency of the amounts below (jobs/marts/currency.py): the latest spend's, else the
        # latest attributed order's; null for a campaign with neither.
        ("currency", "string"),
        ("recipients", "bigint"),
        ("opens", "bigint"),
        ("openers", "bigint"),
        ("clicks", "bigint"),
        ("clickers", "bigint"),
        ("open_rate", "double"),
        ("click_rate", "double"),
        ("attributed_orders", "bigint"),
        ("attributed_revenue_cents", "bigint"),
        ("cost_cents", "bigint"),
        ("romi", "double"),
        # Spend records and attributed valid orders recorded in another currency than `currency`
        # (still added to the amounts, as recorded): non-zero only for a tenant that switched currency.
        ("amounts_in_other_currencies", "bigint"),
    ),
    nullable=("currency", "open_rate", "click_rate", "romi"),
)

INPUTS = ("orders", "SessionStarted", "EmailCampaignSent", "EmailOpened", "EmailClicked", "CampaignSpendRecorded")

_KEY = ["tenant_id", "campaign_id"]
_CAMPAIGN_EVENTS = ("EmailCampaignSent", "EmailOpened", "EmailClicked", "CampaignSpendRecorded")
# The columns of `orders` that `build` reads besides its key (see _touched).
ORDER_COLUMNS = ("channel_campaign", "is_valid", "created_at", "currency", "revenue_cents")


def build(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    campaigns = (
        known_campaigns(sources)
        .join(email_engagement(sources), on=_KEY, how="left")
        .join(campaign_amounts(sources["CampaignSpendRecorded"], sources["orders"]), on=_KEY, how="left")
        .transform(with_defaults)
        .transform(with_rates)
    )
    return CONTRACT.conform(campaigns)


def known_campaigns(sources: Mapping[str, DataFrame]) -> DataFrame:
    """Every campaign_id of a campaign-stream event, and every known session's (non-null) campaign."""
    from_events = [sources[name].select(*_KEY) for name in _CAMPAIGN_EVENTS]
    from_sessions = session_campaigns(sources["SessionStarted"], sources["orders"], from_events)
    return reduce(DataFrame.unionByName, [*from_events, from_sessions]).distinct()


def session_campaigns(session_started: DataFrame, orders: DataFrame, elsewhere: Sequence[DataFrame]) -> DataFrame:
    """Known sessions' (non-null) campaigns, as (tenant_id, campaign_id): all of them but some of those
    `elsewhere` holds, and no other, found without deriving the known sessions of all history.

    A known session's campaign is named by a SessionStarted event, so only the campaigns those events
    name can be one. Most are settled without looking at sessions: every order's channel_campaign is
    its known session's campaign (the orders mart's last touch), and a campaign in `elsewhere` (those
    of campaign-stream events) has its row anyway. Only the others (typically none) need the known
    sessions, of the sessions naming them: every SessionStarted of those, so that each one's first is
    found. Deriving and caching the known sessions of all history was most of this build (at 10M events
    of history, 13.7-16.4 s as the first session mart built in full in an hourly run, 5.8-6.8 s when
    another had cached them; docs/benchmark-runs.md).
    """
    named = (
        session_started.filter(F.col("campaign").isNotNull())
        .select("tenant_id", F.col("campaign").alias("campaign_id"))
        .distinct()
    )
    of_orders = orders.filter(F.col("channel_campaign").isNotNull()).select(
        "tenant_id", F.col("channel_campaign").alias("campaign_id")
    )
    settled = reduce(DataFrame.unionByName, [of_orders, *elsewhere])
    unsettled = keyed(named.join(settled, on=_KEY, how="left_anti"), *_KEY)
    naming = semi(session_started, renamed(unsettled, "campaign_id", "campaign"), ["tenant_id", "campaign"])
    streams = semi(session_started, keyed(naming, "tenant_id", "session_id"))
    of_streams = (
        known_sessions(streams)
        .filter(F.col("campaign").isNotNull())
        .select("tenant_id", F.col("campaign").alias("campaign_id"))
    )
    return of_orders.unionByName(of_streams)


def email_engagement(sources: Mapping[str, DataFrame]) -> DataFrame:
    """Distinct recipients; open and click events, and the distinct customers behind them."""
    sent = sources["EmailCampaignSent"].groupBy(*_KEY).agg(F.countDistinct("customer_id").alias("recipients"))
    opened = sources["EmailOpened"].groupBy(*_KEY).agg(
        F.count(F.lit(1)).alias("opens"), F.countDistinct("customer_id").alias("openers")
    )
    clicked = sources["EmailClicked"].groupBy(*_KEY).agg(
        F.count(F.lit(1)).alias("clicks"), F.countDistinct("customer_id").alias("clickers")
    )
    return sent.join(opened, on=_KEY, how="full").join(clicked, on=_KEY, how="full")


def campaign_amounts(spend_recorded: DataFrame, orders: DataFrame) -> DataFrame:
    """Cost and attributed orders and revenue, added as recorded (see jobs/marts/currency.py).

    Attribution is last touch: a valid order belongs to campaign C when its known session's
    campaign is C (the orders mart's channel_campaign).
    """
    spend = spend_recorded.select(
        *_KEY,
        F.lit(True).alias("is_spend"),
        F.col("cost_cents").alias("amount_cents"),
        "currency",
        # The latest spend (by its date, then by the store's order) names the currency.
        precedence(1, F.col("spend_date").cast("timestamp"), F.col("event_id")),
    )
    attributed = orders.filter(F.col("is_valid") & F.col("channel_campaign").isNotNull()).select(
        "tenant_id",
        F.col("channel_campaign").alias("campaign_id"),
        F.lit(False).alias("is_spend"),
        F.col("revenue_cents").alias("amount_cents"),
        "currency",
        # Spend outranks orders; among orders the latest created names the currency.
        precedence(0, F.col("created_at"), F.col("order_id")),
    )
    amounts = with_row_currency(spend.unionByName(attributed), _KEY)
    return amounts.groupBy(*_KEY).agg(
        F.first("row_currency").alias("currency"),
        count_if(~F.col("is_spend")).alias("attributed_orders"),
        sum_if(~F.col("is_spend"), "amount_cents").alias("attributed_revenue_cents"),
        sum_if(F.col("is_spend"), "amount_cents").alias("cost_cents"),
        count_if(other_currency()).alias("amounts_in_other_currencies"),
    )


def with_defaults(campaigns: DataFrame) -> DataFrame:
    counts = ["recipients", "opens", "openers", "clicks", "clickers", "attributed_orders"]
    amounts = ["attributed_revenue_cents", "cost_cents", "amounts_in_other_currencies"]
    return campaigns.fillna(0, subset=counts + amounts)


def with_rates(campaigns: DataFrame) -> DataFrame:
    """Rates per distinct recipient, null without recipients; romi null when nothing was spent."""
    recipients, cost = F.col("recipients"), F.col("cost_cents")
    return (
        campaigns.withColumn("open_rate", F.when(recipients > 0, F.col("openers") / recipients))
        .withColumn("click_rate", F.when(recipients > 0, F.col("clickers") / recipients))
        .withColumn("romi", F.when(cost != 0, (F.col("attributed_revenue_cents") - cost) / cost))
    )


def _touched(changes: Changes, published: DataFrame) -> DataFrame:
    """Campaigns with a new campaign-stream event; the campaigns of every SessionStarted of a session
    with a new one (a late one may become its first); the campaigns of restated orders whose columns
    read here changed, before and after."""
    sessions = semi(changes.sources["SessionStarted"], keyed(changes.events["SessionStarted"], "tenant_id", "session_id"))
    return keyed_union(
        [changes.events[name].select(*_KEY) for name in _CAMPAIGN_EVENTS]
        + [
            sessions.select("tenant_id", F.col("campaign").alias("campaign_id")),
            changed_orders(changes, ORDER_COLUMNS).select("tenant_id", F.col("channel_campaign").alias("campaign_id")),
        ]
    )


def _narrow(sources: Sources, campaigns: DataFrame) -> Sources:
    as_session_campaign = renamed(campaigns, "campaign_id", "campaign")
    sessions = keyed(narrowed(sources["SessionStarted"], as_session_campaign), "tenant_id", "session_id")
    return {
        **{name: narrowed(sources[name], campaigns) for name in _CAMPAIGN_EVENTS},
        "SessionStarted": narrowed(sources["SessionStarted"], sessions),
        "orders": narrowed(sources["orders"], renamed(campaigns, "campaign_id", "channel_campaign")),
    }


RESTATE = Restatement(unit=tuple(_KEY), touched=_touched, narrow=_narrow, needs_whole=campaign_sessions_too_many)
