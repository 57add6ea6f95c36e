"""An independent reference implementation ("oracle") of the marketing marts, in plain Python.

Written from the two contracts only, /work/shared/spec/events.md (what the event store exports) and
/work/shared/spec/marts.md (what the marts mean), without reading the production PySpark code, its
expectations or its documentation. Its only purpose is to cross-check the real implementation: both
are fed the same event files and their marts must agree. It favours obviousness over speed and is meant
for small histories (a few days, a few tenants).

Modules: `events` (landing: parsing, deduplication, quarantine, upcasting; sessions), `orders` (the
order state and the `orders` mart), `sales` (`basket_daily`, `product_sales_daily`,
`cart_abandonment_daily`); `marketing` and `customers` build on them; `marts.computed` gives any of
them by name, and `compare.differences` sets a published mart against it. Every place where the contracts
leave room for interpretation is decided in a comment marked "Spec choice".
"""
