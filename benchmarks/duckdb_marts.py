"""The reference a single-machine user might pick instead: DuckDB computing `orders`, `basket_daily`
and `customer_360` by SQL from the same landed events (bronze), timed like the Spark build.

What it covers, so that the two do comparable work: bronze is read with delta-rs (the `deltalake`
package; DuckDB's delta extension cannot be downloaded here), only the twelve event types these marts
need; each payload is parsed per schema version and upcast the way `jobs/upcasting/steps.py` does
(v1 euros to cents rounded half away from zero, v1 referrers to an acquisition, v1/v2 orders'
`order_source` unknown); events missing a required field (the catalog's `required`) are left out
like silver's invalid payloads, newer schema versions like held-back ones. The three marts then
follow the spec (`marts.md`) and the Spark modules' definitions: order state from the first
`OrderCreated` of the stream, lifecycle flags, status, validity, last-touch channel,
first valid order; basket_daily's groups and currency; customer_360's registration, consent,
erasure, windows, days since the last order and RFM quintiles, as of the largest `occurred_at` in
bronze (the build's watermark). Each mart is written to a Parquet file, as the Spark build writes a
Delta table. Not covered: erasures requested outside the event log (`erase`; none in a benchmark),
and the edge cases of mistyped payload values, where DuckDB's and Spark's JSON readers may differ.
It is a timing reference, not a second implementation to publish: `compare` checks a few totals.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.events.catalog import CATALOG

V = "VARCHAR"

# OrderCreated's fields the marts read, in every version (items: only their quantities are needed).
_ORDER = {"order_id": V, "cart_id": V, "customer_id": V, "session_id": V, "items": [{"quantity": "INTEGER"}]}
_ORDER_COLUMNS = "p.order_id, p.cart_id, p.customer_id, p.session_id, p.items"

# (event type, schema version) -> (payload shape for json_transform, its columns at the newest version).
_PAYLOADS: dict[tuple[str, int], tuple[dict[str, Any], str]] = {
    # v1 -> v2 as steps.order_created_v1_to_v2 (euros to cents, EUR); v2 -> v3 adds order_source unknown.
    ("OrderCreated", 1): (
        {**_ORDER, "total": "DECIMAL(38,10)"},
        f"{_ORDER_COLUMNS}, CAST(round(p.total * 100) AS BIGINT) AS total_cents, 'EUR' AS currency, "
        "'unknown' AS order_source",
    ),
    ("OrderCreated", 2): (
        {**_ORDER, "total_cents": "BIGINT", "currency": V},
        f"{_ORDER_COLUMNS}, p.total_cents, p.currency, 'unknown' AS order_source",
    ),
    ("OrderCreated", 3): (
        {**_ORDER, "total_cents": "BIGINT", "currency": V, "order_source": V},
        f"{_ORDER_COLUMNS}, p.total_cents, p.currency, p.order_source",
    ),
    ("PromotionApplied", 1): ({"order_id": V, "discount_cents": "BIGINT"}, "p.order_id, p.discount_cents"),
    ("OrderConfirmed", 1): ({"order_id": V}, "p.order_id"),
    ("PaymentCaptured", 1): ({"order_id": V, "amount_cents": "BIGINT"}, "p.order_id, p.amount_cents"),
    ("OrderShipped", 1): ({"order_id": V}, "p.order_id"),
    ("OrderDelivered", 1): ({"order_id": V}, "p.order_id"),
    ("OrderCancelled", 1): ({"order_id": V}, "p.order_id"),
    ("OrderRefunded", 1): ({"order_id": V, "amount_cents": "BIGINT"}, "p.order_id, p.amount_cents"),
    ("SessionStarted", 1): (
        {"session_id": V, "anonymous_id": V, "source": V, "medium": V, "campaign": V},
        "p.session_id, p.anonymous_id, p.source, p.medium, p.campaign",
    ),
    # v1 -> v2 as steps.customer_registered_v1_to_v2: the referrer's host (no `www.`, lower case) or
    # `direct` without one, `unknown` when it is not a URL; medium `referral` or `none`.
    ("CustomerRegistered", 1): (
        {"customer_id": V, "country": V, "referrer": V},
        "p.customer_id, p.country, "
        "CASE WHEN NOT coalesce(trim(p.referrer) <> '', false) THEN 'direct' "
        "WHEN _host(p.referrer) = '' THEN 'unknown' "
        "ELSE regexp_replace(_host(p.referrer), '^www\\.', '') END AS acquisition_source, "
        "CASE WHEN coalesce(trim(p.referrer) <> '', false) THEN 'referral' ELSE 'none' END AS acquisition_medium, "
        "NULL::VARCHAR AS acquisition_campaign",
    ),
    ("CustomerRegistered", 2): (
        {"customer_id": V, "country": V, "acquisition": {"source": V, "medium": V, "campaign": V}},
        "p.customer_id, p.country, p.acquisition.source AS acquisition_source, "
        "p.acquisition.medium AS acquisition_medium, p.acquisition.campaign AS acquisition_campaign",
    ),
    ("MarketingConsentChanged", 1): (
        {"customer_id": V, "channel": V, "granted": "BOOLEAN"}, "p.customer_id, p.channel, p.granted"
    ),
    ("CustomerErasureRequested", 1): ({"customer_id": V}, "p.customer_id"),
}

EVENT_TYPES = tuple(dict.fromkeys(name for name, _ in _PAYLOADS))

_FIRST_IN_STREAM = "row_number() OVER (PARTITION BY tenant_id, {key} ORDER BY stream_version, global_position) = 1"

ORDERS = f"""
CREATE OR REPLACE TABLE orders AS
WITH created AS (
    SELECT tenant_id, order_id, customer_id, cart_id, session_id, occurred_at AS created_at,
           CAST(occurred_at AS DATE) AS order_date, coalesce(order_source, 'unknown') AS order_source, currency,
           total_cents AS gross_cents, len(items) AS items_count,
           coalesce(list_sum(list_transform(items, lambda item: CAST(item.quantity AS BIGINT))), 0) AS units
    FROM order_created
    QUALIFY {_FIRST_IN_STREAM.format(key="order_id")}
),
discounts AS (SELECT tenant_id, order_id, sum(discount_cents) AS discount_cents FROM promotion_applied GROUP BY ALL),
refunds AS (
    SELECT tenant_id, order_id, sum(amount_cents) AS refunded_cents, true AS has_refund FROM order_refunded GROUP BY ALL
),
steps AS (
    SELECT tenant_id, order_id,
           bool_or(step = 'confirmed') AS has_confirmed, bool_or(step = 'paid') AS has_paid,
           bool_or(step = 'shipped') AS has_shipped, bool_or(step = 'delivered') AS has_delivered,
           bool_or(step = 'cancelled') AS has_cancelled
    FROM (
        SELECT tenant_id, order_id, 'confirmed' AS step FROM order_confirmed
        UNION ALL SELECT tenant_id, order_id, 'paid' FROM payment_captured
        UNION ALL SELECT tenant_id, order_id, 'shipped' FROM order_shipped
        UNION ALL SELECT tenant_id, order_id, 'delivered' FROM order_delivered
        UNION ALL SELECT tenant_id, order_id, 'cancelled' FROM order_cancelled
    )
    GROUP BY ALL
),
sessions AS (
    SELECT tenant_id, session_id, source, medium, campaign FROM session_started
    QUALIFY {_FIRST_IN_STREAM.format(key="session_id")}
),
amounts AS (
    SELECT c.*, coalesce(d.discount_cents, 0) AS discount_cents, coalesce(r.refunded_cents, 0) AS refunded_cents,
           c.gross_cents - coalesce(d.discount_cents, 0) AS net_cents, coalesce(r.has_refund, false) AS has_refund,
           coalesce(s.has_confirmed, false) AS has_confirmed, coalesce(s.has_paid, false) AS has_paid,
           coalesce(s.has_shipped, false) AS has_shipped, coalesce(s.has_delivered, false) AS has_delivered,
           coalesce(s.has_cancelled, false) AS has_cancelled
    FROM created c
    LEFT JOIN discounts d ON d.tenant_id = c.tenant_id AND d.order_id = c.order_id
    LEFT JOIN refunds r ON r.tenant_id = c.tenant_id AND r.order_id = c.order_id
    LEFT JOIN steps s ON s.tenant_id = c.tenant_id AND s.order_id = c.order_id
),
stated AS (
    SELECT a.*,
           CASE WHEN has_refund AND refunded_cents >= net_cents THEN 'refunded'
                WHEN has_cancelled THEN 'cancelled'
                WHEN has_delivered THEN 'delivered' WHEN has_shipped THEN 'shipped'
                WHEN has_paid THEN 'paid' WHEN has_confirmed THEN 'confirmed' ELSE 'created' END AS status,
           has_confirmed AND NOT has_cancelled AS is_valid,
           x.session_id IS NOT NULL AS session_known, x.source, x.medium, x.campaign
    FROM amounts a
    LEFT JOIN sessions x ON x.tenant_id = a.tenant_id AND x.session_id = a.session_id
)
SELECT tenant_id, order_id, customer_id, cart_id, session_id, created_at, order_date, order_source, status, is_valid,
       is_valid AND customer_id IS NOT NULL AND row_number() OVER (
           PARTITION BY tenant_id, customer_id ORDER BY is_valid DESC, created_at, order_id
       ) = 1 AS is_first_valid_order,
       currency, gross_cents, discount_cents, net_cents, refunded_cents,
       CASE WHEN is_valid THEN net_cents - refunded_cents ELSE 0 END AS revenue_cents,
       items_count, units,
       CASE WHEN session_known THEN source ELSE 'unknown' END AS channel_source,
       CASE WHEN session_known THEN medium ELSE 'unknown' END AS channel_medium,
       CASE WHEN session_known THEN campaign END AS channel_campaign
FROM stated
"""

BASKET_DAILY = """
CREATE OR REPLACE TABLE basket_daily AS
WITH valid AS (
    SELECT *, arg_max(currency, {'at': created_at, 'id': order_id})
              OVER (PARTITION BY tenant_id, order_date, channel_source, order_source) AS row_currency
    FROM orders WHERE is_valid
)
SELECT tenant_id, order_date, channel_source, order_source, first(row_currency) AS currency,
       count(*) AS valid_orders, sum(revenue_cents) AS revenue_cents, sum(net_cents) AS net_cents,
       sum(discount_cents) AS discount_cents, avg(net_cents) AS avg_basket_cents, avg(units) AS avg_units_per_order,
       count(*) FILTER (WHERE currency <> row_currency) AS amounts_in_other_currencies
FROM valid
GROUP BY tenant_id, order_date, channel_source, order_source
"""

CUSTOMER_360 = f"""
CREATE OR REPLACE TABLE customer_360 AS
WITH registrations AS (
    SELECT tenant_id, customer_id, occurred_at AS registered_at, acquisition_source, acquisition_medium,
           acquisition_campaign, country
    FROM customer_registered
    QUALIFY {_FIRST_IN_STREAM.format(key="customer_id")}
),
known AS (
    SELECT tenant_id, customer_id FROM registrations
    UNION SELECT tenant_id, customer_id FROM orders WHERE customer_id IS NOT NULL
),
consents AS (
    SELECT tenant_id, customer_id, granted AS email_consent FROM marketing_consent_changed WHERE channel = 'email'
    QUALIFY row_number() OVER (
        PARTITION BY tenant_id, customer_id ORDER BY stream_version DESC, global_position DESC
    ) = 1
),
erasures AS (SELECT DISTINCT tenant_id, customer_id, true AS is_erased FROM customer_erasure_requested),
valid AS (
    SELECT *, arg_max(currency, {{'at': created_at, 'id': order_id}})
              OVER (PARTITION BY tenant_id, customer_id) AS row_currency
    FROM orders WHERE is_valid AND customer_id IS NOT NULL
),
history AS (
    SELECT tenant_id, customer_id, first(row_currency) AS currency, count(*) AS valid_orders,
           sum(revenue_cents) AS revenue_cents, avg(net_cents) AS avg_basket_cents,
           min(order_date) AS first_valid_order_date, max(order_date) AS last_valid_order_date,
           count(*) FILTER (WHERE created_at > getvariable('as_of') - INTERVAL 30 DAY) AS valid_orders_30d,
           count(*) FILTER (WHERE created_at > getvariable('as_of') - INTERVAL 90 DAY) AS valid_orders_90d,
           count(*) FILTER (WHERE created_at > getvariable('as_of') - INTERVAL 365 DAY) AS valid_orders_365d,
           coalesce(sum(revenue_cents) FILTER (WHERE created_at > getvariable('as_of') - INTERVAL 90 DAY), 0)
               AS revenue_90d_cents,
           count(*) FILTER (WHERE currency <> row_currency) AS amounts_in_other_currencies,
           CAST(date_diff('day', max(order_date), CAST(getvariable('as_of') AS DATE)) AS INTEGER)
               AS days_since_last_order
    FROM valid
    GROUP BY tenant_id, customer_id
),
customers AS (
    SELECT k.tenant_id, k.customer_id, r.registered_at, r.acquisition_source, r.acquisition_medium,
           r.acquisition_campaign, r.country, coalesce(c.email_consent, false) AS email_consent,
           coalesce(e.is_erased, false) AS is_erased, h.currency, coalesce(h.valid_orders, 0) AS valid_orders,
           coalesce(h.revenue_cents, 0) AS revenue_cents, h.avg_basket_cents, h.first_valid_order_date,
           h.last_valid_order_date, coalesce(h.valid_orders_30d, 0) AS valid_orders_30d,
           coalesce(h.valid_orders_90d, 0) AS valid_orders_90d, coalesce(h.valid_orders_365d, 0) AS valid_orders_365d,
           coalesce(h.revenue_90d_cents, 0) AS revenue_90d_cents, h.days_since_last_order,
           coalesce(h.amounts_in_other_currencies, 0) AS amounts_in_other_currencies
    FROM known k
    LEFT JOIN registrations r ON r.tenant_id = k.tenant_id AND r.customer_id = k.customer_id
    LEFT JOIN consents c ON c.tenant_id = k.tenant_id AND c.customer_id = k.customer_id
    LEFT JOIN erasures e ON e.tenant_id = k.tenant_id AND e.customer_id = k.customer_id
    LEFT JOIN history h ON h.tenant_id = k.tenant_id AND h.customer_id = k.customer_id
)
-- RFM: ceil(5 * cume_dist) among the tenant's customers with a valid order, worst to best.
SELECT *,
       CASE WHEN valid_orders > 0 THEN CAST(ceil(5 * cume_dist() OVER (
           PARTITION BY tenant_id, valid_orders > 0 ORDER BY days_since_last_order DESC)) AS INTEGER)
       END AS recency_score,
       CASE WHEN valid_orders > 0 THEN CAST(ceil(5 * cume_dist() OVER (
           PARTITION BY tenant_id, valid_orders > 0 ORDER BY valid_orders)) AS INTEGER) END AS frequency_score,
       CASE WHEN valid_orders > 0 THEN CAST(ceil(5 * cume_dist() OVER (
           PARTITION BY tenant_id, valid_orders > 0 ORDER BY revenue_cents)) AS INTEGER) END AS monetary_score
FROM customers
"""

MARTS = {"orders": ORDERS, "basket_daily": BASKET_DAILY, "customer_360": CUSTOMER_360}


@dataclass
class DuckDBResult:
    read_seconds: float = 0.0  # bronze (delta-rs) into DuckDB, the needed event types only
    parse_seconds: float = 0.0  # payloads parsed and upcast, invalid ones left out
    marts_seconds: dict[str, float] = field(default_factory=dict)  # each mart built and written
    events_read: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)  # for the comparison with Spark's marts
    as_of: str = ""
    threads: int = 0

    @property
    def total_seconds(self) -> float:
        return self.read_seconds + self.parse_seconds + sum(self.marts_seconds.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_seconds": self.total_seconds,
            "read_seconds": self.read_seconds,
            "parse_seconds": self.parse_seconds,
            "marts_seconds": self.marts_seconds,
            "events_read": self.events_read,
            "rows": self.rows,
            "totals": self.totals,
            "as_of": self.as_of,
            "threads": self.threads,
        }


def build_marts(bronze_path: str, out_dir: Path, storage_options: dict[str, str] | None = None) -> DuckDBResult:
    """Read bronze (a local path, or `s3://` with delta-rs's storage options), parse the needed events,
    build and write the three marts; each step timed."""
    import duckdb
    import pyarrow as pa
    from deltalake import DeltaTable, QueryBuilder

    out_dir.mkdir(parents=True, exist_ok=True)
    result = DuckDBResult()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    result.threads = int(_one(con, "SELECT current_setting('threads')")[0])
    con.execute(
        "CREATE MACRO _host(url) AS "
        r"lower(regexp_extract(url, '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]*)', 1))"
    )

    started = time.perf_counter()
    # delta-rs's query engine reads only the needed columns and types; QueryBuilder rather than
    # to_pyarrow_table, which can abort the interpreter at exit (delta-rs #2184, see DESIGN).
    table = DeltaTable(bronze_path, storage_options=storage_options)
    names = ", ".join(f"'{name}'" for name in EVENT_TYPES)
    reader = QueryBuilder().register("bronze", table).execute(
        "SELECT event_type, schema_version, tenant_id, stream_version, global_position, occurred_at, data "
        f"FROM bronze WHERE event_type IN ({names})"
    )
    con.register("bronze_rows", pa.RecordBatchReader.from_stream(reader))
    con.execute(
        "CREATE TABLE events AS SELECT event_type, schema_version, tenant_id, stream_version, global_position, "
        "CAST(occurred_at AS TIMESTAMP) AS occurred_at, data FROM bronze_rows"
    )
    con.unregister("bronze_rows")
    # The build's as-of time: the largest occurred_at of every event in bronze (the watermark silver.build_silver reports).
    latest = QueryBuilder().register("bronze", table).execute("SELECT max(occurred_at) AS as_of FROM bronze")
    con.register("latest", pa.RecordBatchReader.from_stream(latest))
    as_of = _one(con, "SELECT CAST(as_of AS TIMESTAMP) FROM latest")[0]
    con.unregister("latest")
    con.execute("SET VARIABLE as_of = ?", [as_of])
    result.as_of = as_of.isoformat()
    result.events_read = _one(con, "SELECT count(*) FROM events")[0]
    result.read_seconds = time.perf_counter() - started

    started = time.perf_counter()
    for event_type in EVENT_TYPES:
        con.execute(_parse_sql(event_type))
    con.execute("DROP TABLE events")
    result.parse_seconds = time.perf_counter() - started

    for mart, sql in MARTS.items():
        started = time.perf_counter()
        con.execute(sql)
        con.execute(f"COPY {mart} TO '{out_dir / mart}.parquet' (FORMAT parquet)")
        result.marts_seconds[mart] = time.perf_counter() - started
        result.rows[mart] = _one(con, f"SELECT count(*) FROM {mart}")[0]
    result.totals = totals(con)
    con.close()
    return result


def _parse_sql(event_type: str) -> str:
    """The event type's silver-like table: each known version parsed and upcast, required fields present."""
    spec = CATALOG[event_type]
    parts = [
        f"SELECT tenant_id, stream_version, global_position, occurred_at, {columns} "
        f"FROM (SELECT *, json_transform(data, '{json.dumps(shape)}') AS p FROM events "
        f"WHERE event_type = '{event_type}' AND schema_version = {version})"
        for (name, version), (shape, columns) in _PAYLOADS.items()
        if name == event_type and version <= spec.newest_version
    ]
    required = " AND ".join(f"{column} IS NOT NULL" for column in spec.required) or "true"
    return f"CREATE TABLE {spec.table_name} AS SELECT * FROM ({' UNION ALL BY NAME '.join(parts)}) WHERE {required}"


def _one(con, sql: str) -> tuple:
    """The query's single row (DuckDB 2 wants every result read to its end before the next statement)."""
    return con.execute(sql).fetchall()[0]


def totals(con) -> dict[str, int]:
    """A few totals to compare with Spark's marts (see harness.compare_marts)."""
    row = _one(
        con,
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FILTER (WHERE is_valid) FROM orders), "
        "(SELECT coalesce(sum(revenue_cents), 0) FROM orders), (SELECT count(*) FROM basket_daily), "
        "(SELECT coalesce(sum(valid_orders), 0) FROM basket_daily), (SELECT count(*) FROM customer_360), "
        "(SELECT coalesce(sum(valid_orders), 0) FROM customer_360)",
    )
    names = ("orders_rows", "orders_valid", "orders_revenue_cents", "basket_daily_rows", "basket_daily_valid_orders",
             "customer_360_rows", "customer_360_valid_orders")
    return dict(zip(names, (int(value) for value in row)))
