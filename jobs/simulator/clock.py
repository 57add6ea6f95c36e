"""Time as integer microseconds since the Unix epoch (UTC), and its ISO-8601 text with an offset.

Integers keep the hot path cheap and exact; `datetime` objects appear only when an hour's text prefix
is built, once per hour and offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US

_EPOCH = datetime(1970, 1, 1)
_EPOCH_DATE = date(1970, 1, 1)


def midnight_us(day: date) -> int:
    """The instant a UTC day starts."""
    return (day - _EPOCH_DATE).days * DAY_US


@dataclass(frozen=True)
class TimeStyle:
    """How one producer writes timestamps: its UTC offset, its precision, and how it spells UTC."""

    offset_minutes: int = 0
    fraction_digits: int = 3  # 0, 3 or 6
    utc_designator: str = "Z"  # "Z" or "+00:00", used when the offset is zero
    suffix: str = field(init=False)  # computed once: it is appended to every timestamp

    def __post_init__(self) -> None:
        if self.fraction_digits not in (0, 3, 6):
            raise ValueError(f"fraction_digits must be 0, 3 or 6, got {self.fraction_digits}")
        if self.offset_minutes == 0:
            suffix = self.utc_designator
        else:
            sign = "+" if self.offset_minutes > 0 else "-"
            hours, minutes = divmod(abs(self.offset_minutes), 60)
            suffix = f"{sign}{hours:02d}:{minutes:02d}"
        object.__setattr__(self, "suffix", suffix)


class InstantFormatter:
    """Formats instants as ISO-8601 local time with an offset, e.g. `2026-01-05T14:03:07.250+01:00`."""

    _MAX_CACHED_HOURS = 512

    def __init__(self) -> None:
        self._hour_prefixes: dict[int, str] = {}  # local hour index -> "YYYY-MM-DDTHH:"

    def format(self, instant_us: int, style: TimeStyle) -> str:
        local_us = instant_us + style.offset_minutes * MINUTE_US
        hour_index, within_hour_us = divmod(local_us, HOUR_US)
        prefix = self._hour_prefixes.get(hour_index)
        if prefix is None:
            prefix = self._remember_prefix(hour_index)
        minute, within_minute_us = divmod(within_hour_us, MINUTE_US)
        second, micro = divmod(within_minute_us, SECOND_US)
        if style.fraction_digits == 3:
            fraction = f".{micro // 1000:03d}"
        elif style.fraction_digits == 6:
            fraction = f".{micro:06d}"
        else:
            fraction = ""
        return f"{prefix}{minute:02d}:{second:02d}{fraction}{style.suffix}"

    def _remember_prefix(self, hour_index: int) -> str:
        if len(self._hour_prefixes) >= self._MAX_CACHED_HOURS:
            self._hour_prefixes.clear()  # bounded: a long history must not grow the cache
        prefix = (_EPOCH + timedelta(hours=hour_index)).strftime("%Y-%m-%dT%H:")
        self._hour_prefixes[hour_index] = prefix
        return prefix
