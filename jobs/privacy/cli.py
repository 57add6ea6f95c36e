"""What `python -m jobs erase` does and what `status` prints about erasures."""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.config import Settings, read_master_key
from jobs.privacy.crypto import MasterKey
from jobs.privacy.erasure import SOURCE_CLI, ErasureRequest, erase, erasure_summary
from jobs.spark import get_spark


def erase_customer(settings: Settings, tenant_id: str, customer_id: str) -> str:
    """Erase one customer now; the message says what happened and what is left to do."""
    if not tenant_id.strip() or not customer_id.strip():
        raise ValueError("--tenant and --customer must not be empty")
    master = MasterKey(read_master_key(settings))
    spark = get_spark(settings)
    request = ErasureRequest(tenant_id, customer_id, datetime.now(timezone.utc), SOURCE_CLI)
    done = erase(spark, settings.warehouse, master, [request])
    if not done:
        return f"customer {customer_id} of tenant {tenant_id} was already erased (see meta/erasure_log)"
    return (
        f"erased customer {customer_id} of tenant {tenant_id}: {done[0].keys_erased} data key(s) deleted, "
        f"logged in {settings.table_path('meta', 'erasure_log')}; physical once `maintain` has run past the retention"
    )


def print_erasures(spark: SparkSession, warehouse: str) -> None:
    summary = erasure_summary(spark, warehouse)
    counts = {row["state"]: row["count"] for row in summary.groupBy("state").count().collect()}
    print(
        f"Erasures: {counts.get('physical', 0)} physical, {counts.get('pending_physical', 0)} pending "
        "(keys deleted; older versions remain until `maintain` runs past the retention):"
    )
    pending = summary.filter(F.col("state") == "pending_physical")
    if counts.get("pending_physical"):
        pending.show(20, truncate=False)
