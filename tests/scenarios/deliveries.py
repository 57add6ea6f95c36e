"""What the scenarios deliver to landing: small files following the event contract, with a duplicate
and a broken line, so that every count of the ledger is at work."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.histories import History, shop_history

BROKEN_LINE = '{"event_id": "cut-short", "tena'


def first_delivery(landing: Path) -> Path:
    """The shop history (21 events, 2 of them delivered twice) and a line cut short: 24 lines."""
    return shop_history().write(landing / "2026-01-06", extra_lines=(BROKEN_LINE,))


def late_delivery(landing: Path) -> Path:
    """A later valid order o8 of t1: what a second run has to publish."""
    h = History()
    h.add("OrderCreated", "order-o8", {"order_id": "o8", "cart_id": None, "customer_id": "c8", "session_id": None,
          "items": [{"product_id": "p1", "category": "misc", "quantity": 1, "unit_price_cents": 700}],
          "total_cents": 700, "currency": "EUR", "order_source": "phone"}, "2026-01-07T10:00:00Z", schema_version=3,
          event_id="late-1")
    h.add("OrderConfirmed", "order-o8", {"order_id": "o8"}, "2026-01-07T10:01:00Z", event_id="late-2")
    return h.write(landing / "2026-01-07")


def lines_delivered(landing: Path) -> int:
    """Lines in the landing folder, counted apart from the pipeline: the scenario's events in."""
    return sum(len(path.read_bytes().splitlines()) for path in landing.rglob("*.ndjson"))


def event_line(event: dict, **dumps_options) -> bytes:
    """One event as a line of a delivery (`json.dumps` options vary its text, not its content)."""
    return json.dumps(event, **dumps_options).encode("utf-8")


def write_lines(folder: Path, name: str, lines: list[bytes]) -> Path:
    """A delivery file of exactly these lines (none may hold a newline); gzip-compressed if named .gz."""
    assert not any(b"\n" in line for line in lines), "a line cannot hold a newline"
    content = b"".join(line + b"\n" for line in lines)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(gzip.compress(content, mtime=0) if name.endswith(".gz") else content)
    return path
