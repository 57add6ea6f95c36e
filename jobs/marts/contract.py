"""A mart's declared contract: columns and types, grain, key, and version."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from jobs.segments import Segment


@dataclass(frozen=True)
class MartContract:
    name: str
    # "major.minor": a new column is a minor change; a removed or retyped column, a new grain or a
    # changed metric meaning is a new major version, published beside the old one.
    version: str
    grain: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, Spark SQL type), in output order
    # Columns that may hold null; every other column is checked not null before publication.
    nullable: tuple[str, ...] = ()

    @property
    def major_version(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _type in self.columns)

    def conform(self, frame: DataFrame) -> DataFrame:
        """The final select: exactly the contract's columns, in order, with their types."""
        missing = [name for name in self.column_names if name not in frame.columns]
        if missing:
            raise ValueError(f"{self.name}: the projection lacks contract column(s) {missing}")
        return frame.select(*(F.col(name).cast(sql_type).alias(name) for name, sql_type in self.columns))

    def __post_init__(self) -> None:
        unknown = [name for name in (*self.key, *self.nullable) if name not in self.column_names]
        if unknown:
            raise ValueError(f"{self.name}: key or nullable names unknown column(s) {unknown}")


@dataclass(frozen=True)
class BuildContext:
    """What a mart may know besides its inputs."""

    # The run's as-of time (UTC): the largest occurred_at among the events seen, or the time a
    # point-in-time rebuild asked for. Windows ("last 90 days") and "open vs abandoned" count from it.
    as_of: datetime
    # Marketers' segments (conf/segments.yaml): customer_segments and segment_sizes_daily.
    segments: tuple[Segment, ...] = ()
    # Planned traffic split per experiment id (conf experiments.splits): experiment_results.
    experiment_splits: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # A mart's currently published table (None if never published), for marts that accumulate
    # across runs (segment_sizes_daily keeps the days before this run's).
    read_published: Callable[[str], DataFrame | None] = lambda mart: None
