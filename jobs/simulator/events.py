"""Events between the moment a producer emits them and the moment the store records them.

The store, not the producer, gives an event its `stream_version` and `global_position`, at append time
(in `recorded_at` order), as a real event store does. So a late event takes the next version of its
stream when it is finally recorded, and versions stay contiguous whatever arrives late.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Iterator

from jobs.simulator.clock import TimeStyle


class EventKind(IntEnum):
    CATALOG = 0  # a known type in a known schema version
    UNKNOWN_TYPE = 1  # a type of a future release
    FUTURE_VERSION = 2  # a known type in a schema version newer than the contract's
    LEAKED_EMAIL = 3  # never recorded: a producer's truncated line that still shows an email address


class Stream:
    """One event stream; its next version is handed out by the store at append time."""

    __slots__ = ("stream_type", "entity_id", "stream_id", "next_version")

    def __init__(self, stream_type: str, entity_id: str) -> None:
        self.stream_type = stream_type
        self.entity_id = entity_id
        self.stream_id = f"{stream_type}-{entity_id}"
        self.next_version = 1


class Flow:
    """A chain of events caused one by another: they share a correlation id, and each names the
    previous one as its cause."""

    __slots__ = ("correlation_id", "last_event_id")

    def __init__(self, correlation_id: str) -> None:
        self.correlation_id = correlation_id
        self.last_event_id: str | None = None


@dataclass(frozen=True)
class Producer:
    """A service that emits events; `name` None means it does not fill the optional metadata field."""

    name: str | None
    time_style: TimeStyle


class PendingEvent:
    """An event emitted by a producer, waiting for the store to record it."""

    __slots__ = (
        "event_id",
        "tenant_id",
        "stream",
        "event_type",
        "schema_version",
        "occurred_at",
        "data",
        "correlation_id",
        "causation_id",
        "producer_name",
        "kind",
        "is_late",
    )

    def __init__(
        self,
        event_id: str,
        tenant_id: str,
        stream: Stream,
        event_type: str,
        schema_version: int,
        occurred_at: str,
        data: dict[str, Any],
        correlation_id: str,
        causation_id: str,
        producer_name: str | None,
        kind: EventKind,
        is_late: bool,
    ) -> None:
        self.event_id = event_id
        self.tenant_id = tenant_id
        self.stream = stream
        self.event_type = event_type
        self.schema_version = schema_version
        self.occurred_at = occurred_at
        self.data = data
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self.producer_name = producer_name
        self.kind = kind
        self.is_late = is_late


class PendingLog:
    """Events of all tenants ordered by the time the store will record them; ties keep emit order."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, PendingEvent]] = []
        self._emitted = 0

    def push(self, recorded_us: int, event: PendingEvent) -> None:
        self._emitted += 1
        heapq.heappush(self._heap, (recorded_us, self._emitted, event))

    def pop_before(self, end_us: int) -> Iterator[tuple[int, PendingEvent]]:
        heap = self._heap
        while heap and heap[0][0] < end_us:
            recorded_us, _, event = heapq.heappop(heap)
            yield recorded_us, event

    def __len__(self) -> int:
        return len(self._heap)
