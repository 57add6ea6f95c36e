"""Frames that several marts derive from the same whole input in one build, computed once.

Known sessions (jobs/marts/sessions.py) are the first SessionStarted of every session: a shuffle and
a sort of the whole SessionStarted table, about 5 s at 10M events of history on two cores, that
funnel_daily, marketing_kpis_daily, campaign_performance and experiment_results each repeated in
every hourly run (they read SessionStarted whole when a run touches more sessions than a restatement
narrows by, jobs/marts/restate.py). Since then funnel_daily restates by difference and
campaign_performance derives the known sessions of a few sessions only: in an hourly run,
marketing_kpis_daily and experiment_results share them. Within `reused(sources)` (the pipeline's build
of all marts), a frame derived with `once` from one of `sources`' frames themselves is cached at its
first use and served from the cache to the next mart; the cache is dropped when the build ends.
Outside that scope, or from a narrowed input (a frame of its own, read by one mart), `once` derives the
frame as asked.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Mapping

from pyspark import StorageLevel
from pyspark.sql import DataFrame

# The open scopes: the sources whose frames are shared, and what was derived from them.
_SCOPES: list[tuple[Mapping[str, DataFrame], dict[tuple[str, int], tuple[DataFrame, DataFrame]]]] = []


@contextmanager
def reused(sources: Mapping[str, DataFrame]) -> Iterator[None]:
    """Share what `once` derives from `sources`' frames (read at each call: the mapping may grow)."""
    derived: dict[tuple[str, int], tuple[DataFrame, DataFrame]] = {}
    _SCOPES.append((sources, derived))
    try:
        yield
    finally:
        _SCOPES.pop()
        for _source, frame in derived.values():
            frame.unpersist()


def once(kind: str, source: DataFrame, derive: Callable[[DataFrame], DataFrame]) -> DataFrame:
    """`derive(source)`, cached and reused within `reused` when `source` is one of its sources."""
    if not _SCOPES:
        return derive(source)
    sources, derived = _SCOPES[-1]
    if not any(source is shared for shared in sources.values()):
        return derive(source)
    # The source is kept with its frame, so its id cannot be reused by another frame meanwhile.
    key = (kind, id(source))
    if key not in derived:
        derived[key] = (source, derive(source).persist(StorageLevel.MEMORY_AND_DISK))
    return derived[key][1]
