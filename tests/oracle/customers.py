"""Oracle for the customer marts: customer_360 and experiment_results.

Plain Python over the landed events (tests/oracle/events.py) and the order states (tests/oracle/orders.py),
from /work/shared/spec/events.md and marts.md only. Only events with `occurred_at <= as_of` count
(one exception: an erasure request, see below). Rates and averages are floats, not rounded.

customer_360, choices where the spec leaves room:
- Rows: one per (tenant_id, customer_id) seen in any event of a `customer-` stream (registered or not yet)
  or named by an order (valid or not). `include_unregistered=False` keeps only customers with a
  CustomerRegistered. Fields from the registration are None for a customer without one.
- registered_at, acquisition_*, country: from the customer's first CustomerRegistered in stream order.
- email_consent: `granted` of the customer's latest MarketingConsentChanged with channel `email`, in
  stream_version order; False when there is none (no consent without an opt-in).
- valid_orders, revenue_cents (sum of net - refunded): over the customer's valid orders; 0 when none.
  avg_basket_cents: mean net_cents of those orders (float), None when none.
  first/last_valid_order_date: smallest/largest order date of a valid order, None when none.
- Windows are in UTC dates relative to the as-of date D = as_of.date(): `valid_orders_Nd` counts valid
  orders with D - order_date < N days, i.e. the N dates D-(N-1) .. D inclusive; revenue_90d_cents likewise.
  days_since_last_order = (D - last_valid_order_date).days, None when no valid order.
- RFM among the tenant's rows with >= 1 valid order (None for the others): recency on days_since_last_order
  (fewer is better), frequency on valid_orders, monetary on revenue_cents. Score = ceil(5 * a / n), where n
  is the number of scored customers and a the number of them whose value is at most as good: the fifth of
  the distribution the value falls in, counting the customers tied with it. Ties share a score; the best
  value always scores 5; a lone customer scores 5 on all three. (Written first as 1 + floor(5 * w / n), w
  the strictly worse ones, which puts ties in the lowest fifth they span: the cross-check with the pipeline
  differed only there, and the mart's documented convention, ties in the highest, was kept: the spec does not
  say, and both are quintiles of the same ranking.)
- CustomerErasureRequested: applied whenever it has landed, even with occurred_at after as_of (a
  point-in-time rebuild must not bring personal data back). The row stays (its aggregates are business
  facts and keep the marts reconcilable), with `is_erased` true. Written first with country and
  email_consent set to None as well; the cross-check with the pipeline differed there, and the pipeline's
  documented reading was kept: the personal data of events.md's catalog is the e-mail address, which no
  mart holds (customer_360 links the customer by the pseudonymous customer_id, as every order does).

experiment_results, choices where the spec leaves room:
- Exposures are ExperimentExposed events; the visitor is the event's own anonymous_id. They count whether
  or not their session's SessionStarted is known (`require_known_session=True` leaves those out).
- First exposure: smallest (occurred_at, global_position, event_id). A visitor exposed to two or more
  variants of an experiment is contaminated: left out of visitors/converters/revenue of every variant and
  counted in contaminated_visitors, one count per experiment repeated on each of its rows (such a visitor
  belongs to no variant). Written first as a count on the variant of the first exposure; the cross-check
  with the pipeline differed there, and the pipeline's documented reading was kept.
- Conversion: a valid order whose session is known and whose SessionStarted anonymous_id is the visitor,
  with created_at >= the first exposure's occurred_at. revenue_cents = sum of (net - refunded) of all such
  orders of the variant's converters; revenue_per_visitor_cents = revenue_cents / visitors.
- A variant has a row when it has a visitor or a contaminated visitor.
- Uplift against the variant named `control` (case-sensitive): absolute = p_t - p_c, relative =
  (p_t - p_c) / p_c (None when p_c = 0); CI95 = diff -/+ z * sqrt(p_t(1-p_t)/n_t + p_c(1-p_c)/n_c) with
  z = 1.959963984540054; p_value = erfc(|z| / sqrt 2) of the pooled two-proportion z-test, None when the
  pooled standard error is 0 (no or all conversions in both). All uplift fields are None on the control
  row, on a row with no visitors, and for every row when control has no visitors or does not exist.
- srm_p_value (the same on every row of an experiment): chi-square goodness of fit of the per-variant
  `visitors` against the expected shares, k - 1 degrees of freedom. Variants: every variant seen in an
  exposure of the experiment (plus those of the configured split). Expected shares: `splits[(tenant_id,
  experiment_id)]` or `splits[experiment_id]` ({variant: weight}, normalised), else equal. None when
  fewer than two variants have a positive expected share or there are no visitors; 0.0 when visitors
  land in a variant with a configured share of 0.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from tests.oracle.events import Event, Landed, customer_id_of, erased_customers, known_sessions
from tests.oracle.marketing import (
    first_registrations,
    ratio,
    visible_events,
)
from tests.oracle.orders import Order, orders

WINDOWS_DAYS = (30, 90, 365)
Z_95 = 1.959963984540054


# ------------------------------------------------------------------------------------------- customer_360


@dataclass
class _Customer:
    registered: Event | None = None
    email_consent: bool = False
    valid: list[Order] = field(default_factory=list)


def customer_360(landed: Landed, as_of: datetime, include_unregistered: bool = True) -> list[dict]:
    """One row per customer (see the module docstring for who has a row and how each column is defined)."""
    order_rows = list(orders(landed, as_of).values())
    customers: dict[tuple[str, str], _Customer] = defaultdict(_Customer)

    for event in visible_events(landed, as_of):  # stream order: the latest consent event wins
        if not event.stream_id.startswith("customer-"):
            continue
        customer = customers[(event.tenant_id, customer_id_of(event))]
        if event.event_type == "MarketingConsentChanged" and event.data.get("channel") == "email":
            customer.email_consent = bool(event.data["granted"])
    for key, registered in first_registrations(landed, as_of).items():
        customers[key].registered = registered
    for order in order_rows:
        if order.customer_id is not None:
            customer = customers[(order.tenant_id, order.customer_id)]
            if order.is_valid:
                customer.valid.append(order)
    erased = erased_customers(landed)

    today = as_of.date()
    rows = []
    for (tenant_id, customer_id), customer in sorted(customers.items()):
        if customer.registered is None and not include_unregistered:
            continue
        data = customer.registered.data if customer.registered is not None else {}
        acquisition = data.get("acquisition") or {}
        valid = customer.valid
        order_dates = [o.order_date for o in valid]
        last = max(order_dates, default=None)
        row = {
            "tenant_id": tenant_id,
            "customer_id": customer_id,
            "registered_at": customer.registered.occurred_at if customer.registered is not None else None,
            "acquisition_source": acquisition.get("source"),
            "acquisition_medium": acquisition.get("medium"),
            "acquisition_campaign": acquisition.get("campaign"),
            "country": data.get("country"),
            "email_consent": customer.email_consent,
            "valid_orders": len(valid),
            "revenue_cents": sum(o.revenue_cents for o in valid),
            "avg_basket_cents": ratio(sum(o.net_cents for o in valid), len(valid)),
            "first_valid_order_date": min(order_dates, default=None),
            "last_valid_order_date": last,
        }
        for days in WINDOWS_DAYS:
            row[f"valid_orders_{days}d"] = sum(1 for d in order_dates if (today - d).days < days)
        row["revenue_90d_cents"] = sum(o.revenue_cents for o in valid if (today - o.order_date).days < 90)
        row["days_since_last_order"] = (today - last).days if last is not None else None
        row["is_erased"] = (tenant_id, customer_id) in erased
        rows.append(row)
    _add_rfm_scores(rows)
    return rows


def quintile_scores(values: Mapping[Hashable, float]) -> dict[Hashable, int]:
    """Score 1..5 of each value, higher values better: ceil(5 * (values at most as high) / n)."""
    ordered = sorted(values.values())
    n = len(ordered)
    return {key: -(-5 * bisect_right(ordered, value) // n) for key, value in values.items()}


def _add_rfm_scores(rows: list[dict]) -> None:
    by_tenant: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        row.update(recency_score=None, frequency_score=None, monetary_score=None)
        if row["valid_orders"] >= 1:
            by_tenant[row["tenant_id"]].append(index)
    for indexes in by_tenant.values():
        recency = quintile_scores({i: -rows[i]["days_since_last_order"] for i in indexes})
        frequency = quintile_scores({i: rows[i]["valid_orders"] for i in indexes})
        monetary = quintile_scores({i: rows[i]["revenue_cents"] for i in indexes})
        for i in indexes:
            rows[i].update(recency_score=recency[i], frequency_score=frequency[i], monetary_score=monetary[i])


# ------------------------------------------------------------------------------------- experiment_results


@dataclass
class _Variant:
    visitors: int = 0
    converters: int = 0
    revenue_cents: int = 0
    contaminated_visitors: int = 0


def experiment_results(
    landed: Landed,
    as_of: datetime,
    splits: Mapping | None = None,
    require_known_session: bool = False,
) -> list[dict]:
    """tenant_id x experiment_id x variant: visitors, converters, conversion_rate, revenue_cents,
    revenue_per_visitor_cents, contaminated_visitors, uplift vs control with CI95 and p_value, srm_p_value."""
    sessions = known_sessions(landed, as_of)
    order_rows = list(orders(landed, as_of).values())

    # Valid orders of each visitor: (tenant_id, anonymous_id) -> [(created_at, revenue_cents)].
    purchases: dict[tuple[str, str], list[tuple[datetime, int]]] = defaultdict(list)
    for order in order_rows:
        session = sessions.get((order.tenant_id, order.session_id)) if order.session_id is not None else None
        if order.is_valid and session is not None:
            purchases[(order.tenant_id, session.anonymous_id)].append((order.created_at, order.revenue_cents))

    first: dict[tuple[str, str, str], Event] = {}
    variants_of_visitor: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    variants_seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in visible_events(landed, as_of, "ExperimentExposed"):
        if require_known_session and (event.tenant_id, event.data.get("session_id")) not in sessions:
            continue
        experiment_id, variant = event.data["experiment_id"], event.data["variant"]
        key = (event.tenant_id, experiment_id, event.data["anonymous_id"])
        variants_of_visitor[key].add(variant)
        variants_seen[(event.tenant_id, experiment_id)].add(variant)
        if key not in first or _exposure_order(event) < _exposure_order(first[key]):
            first[key] = event

    stats: dict[tuple[str, str], dict[str, _Variant]] = defaultdict(lambda: defaultdict(_Variant))
    for key, exposure in first.items():
        tenant_id, experiment_id, anonymous_id = key
        variant = stats[(tenant_id, experiment_id)][exposure.data["variant"]]
        if len(variants_of_visitor[key]) > 1:
            variant.contaminated_visitors += 1
            continue
        variant.visitors += 1
        revenues = [cents for created_at, cents in purchases[(tenant_id, anonymous_id)]
                    if created_at >= exposure.occurred_at]
        if revenues:
            variant.converters += 1
            variant.revenue_cents += sum(revenues)

    rows = []
    for (tenant_id, experiment_id), variants in sorted(stats.items()):
        contaminated = sum(v.contaminated_visitors for v in variants.values())
        split = _split_for(splits, tenant_id, experiment_id)
        seen = variants_seen[(tenant_id, experiment_id)]
        srm = srm_p_value({name: variants[name].visitors if name in variants else 0 for name in seen}, split)
        control = variants.get("control")
        for name, v in sorted(variants.items()):
            if v.visitors == 0 and v.contaminated_visitors == 0:
                continue
            row = {
                "tenant_id": tenant_id,
                "experiment_id": experiment_id,
                "variant": name,
                "visitors": v.visitors,
                "converters": v.converters,
                "conversion_rate": ratio(v.converters, v.visitors),
                "revenue_cents": v.revenue_cents,
                "revenue_per_visitor_cents": ratio(v.revenue_cents, v.visitors),
                "contaminated_visitors": contaminated,
                **_uplift(v, control if name != "control" else None),
                "srm_p_value": srm,
            }
            rows.append(row)
    return rows


def _exposure_order(event: Event) -> tuple:
    return (event.occurred_at, event.global_position, event.event_id)


def _split_for(splits: Mapping | None, tenant_id: str, experiment_id: str) -> Mapping[str, float] | None:
    if not splits:
        return None
    return splits.get((tenant_id, experiment_id), splits.get(experiment_id))


def _uplift(variant: _Variant, control: _Variant | None) -> dict[str, float | None]:
    """Uplift of `variant` against `control` (None fields when there is no comparison)."""
    none = dict.fromkeys(("uplift_absolute", "uplift_relative", "uplift_ci95_low", "uplift_ci95_high", "p_value"))
    if control is None or control.visitors == 0 or variant.visitors == 0:
        return none
    n_t, x_t, n_c, x_c = variant.visitors, variant.converters, control.visitors, control.converters
    p_t, p_c = x_t / n_t, x_c / n_c
    diff = p_t - p_c
    half_width = Z_95 * math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    pooled = (x_t + x_c) / (n_t + n_c)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    return {
        "uplift_absolute": diff,
        "uplift_relative": ratio(diff, p_c),
        "uplift_ci95_low": diff - half_width,
        "uplift_ci95_high": diff + half_width,
        "p_value": normal_two_sided_p(diff / pooled_se) if pooled_se > 0 else None,
    }


# ------------------------------------------------------------------------------------------------ statistics


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2))


def srm_p_value(observed: Mapping[str, int], split: Mapping[str, float] | None = None) -> float | None:
    """Chi-square goodness-of-fit p-value of the per-variant counts against `split` (weights; equal when
    None). See the module docstring for the None and 0.0 cases."""
    if split:
        weights = {v: float(split.get(v, 0.0)) for v in set(observed) | set(split)}
    else:
        weights = dict.fromkeys(observed, 1.0)
    total_weight = sum(weights.values())
    total = sum(observed.values())
    if total == 0 or total_weight <= 0:
        return None
    chi2, cells = 0.0, 0
    for v, weight in weights.items():
        count = observed.get(v, 0)
        if weight <= 0:
            if count > 0:
                return 0.0
            continue
        expected = total * weight / total_weight
        chi2 += (count - expected) ** 2 / expected
        cells += 1
    if cells < 2:
        return None
    return chi_square_sf(chi2, cells - 1)


def chi_square_sf(x: float, dof: int) -> float:
    """P(X >= x) for X chi-square distributed with `dof` degrees of freedom."""
    return regularized_upper_gamma(dof / 2, x / 2)


def regularized_upper_gamma(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): a series for x < a + 1, else a continued fraction (modified Lentz)."""
    if a <= 0 or x < 0:
        raise ValueError(f"Q(a, x) needs a > 0 and x >= 0, got a={a}, x={x}")
    if x == 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-17:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return math.exp(log_prefix) * h

