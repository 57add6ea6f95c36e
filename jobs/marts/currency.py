"""Amounts and their currency in a mart row.

The spec states all money in the tenant's currency, and the marts follow its grains exactly: no
currency in any key. Amounts are therefore added as recorded (after upcasting, v1 amounts are EUR),
and each row says which currency its amounts are in (`currency`: that of its highest-precedence
amount) and how many of its amounts were recorded in another one (`amounts_in_other_currencies`),
so a tenant that switched currency (v1 EUR history, v2 in its own) is visible, never hidden.
"""

from __future__ import annotations

from typing import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


def precedence(rank: int, at: Column, tiebreak: Column) -> Column:
    """Which amount names a row's currency: the highest rank, then the latest, then the tiebreak."""
    return F.struct(F.lit(rank).alias("rank"), at.alias("at"), tiebreak.alias("tiebreak")).alias("_precedence")


def with_row_currency(amounts: DataFrame, key: Sequence[str]) -> DataFrame:
    """Each amount with the currency of the row it belongs to (`row_currency`): that of its highest
    `_precedence`."""
    return amounts.withColumn("row_currency", F.max_by("currency", "_precedence").over(Window.partitionBy(*key)))


def other_currency() -> Column:
    """After with_row_currency: this amount was recorded in another currency than its row's."""
    return F.col("currency") != F.col("row_currency")


def count_if(condition: Column) -> Column:
    return F.sum(F.when(condition, F.lit(1)).otherwise(F.lit(0))).cast("bigint")


def sum_if(condition: Column, name: str) -> Column:
    return F.sum(F.when(condition, F.col(name)).otherwise(F.lit(0))).cast("bigint")
