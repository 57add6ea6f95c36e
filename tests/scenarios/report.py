"""The failure scenarios' table (issue #12): one row per scenario test, kept as JSON lines.

Each test in tests/scenarios/ fills a `ScenarioRow` through the `scenario_report` fixture (what was
injected, what came of it, the landing ledger's counts, the published marts); the fixture adds pytest's
verdict and the time taken, and appends the row to a file. `make scenarios` prints that file:

    python -m tests.scenarios.report FILE
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ScenarioRow:
    scenario: str
    injected: str = ""
    outcome: str = ""
    # Lines delivered to landing, counted by the test from its own files.
    events_in: int | None = None
    # From the landing ledger (meta/landing_ledger, summed over its runs): lines read = landed +
    # duplicates + quarantined. Held back events (schema versions newer than known) are landed ones,
    # kept in bronze but not projected: part of `landed`, never added to it.
    landed: int | None = None
    duplicates: int | None = None
    quarantined: int | None = None
    held_back: int | None = None
    # None: the scenario publishes no mart.
    marts_readable: bool | None = None
    marts_at_last_good_version: bool | None = None
    result: str = ""  # pytest's verdict: passed, failed, xfailed (a known bug), skipped
    seconds: float | None = None
    test: str = ""

    @property
    def accounted(self) -> int | None:
        counts = (self.landed, self.duplicates, self.quarantined)
        return None if None in counts else sum(counts)


def append(path: Path, row: ScenarioRow) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write per line, opened for append: rows of concurrent test processes never interleave.
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(dataclasses.asdict(row)) + "\n")


def read(path: Path) -> list[ScenarioRow]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [ScenarioRow(**json.loads(line)) for line in lines if line.strip()]


COLUMNS = (
    "scenario",
    "injected",
    "outcome",
    "events in",
    "accounted for (landed + duplicates + quarantined; held back, of landed)",
    "published marts",
    "result",
    "seconds",
)


def table(rows: list[ScenarioRow]) -> str:
    """A Markdown table, so that it reads in a terminal and pastes into the README."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in sorted(rows, key=lambda r: _scenario_order(r.scenario)):
        cells = (
            row.scenario,
            row.injected,
            row.outcome,
            _number(row.events_in),
            _accounting(row),
            _marts(row),
            row.result,
            "" if row.seconds is None else f"{row.seconds:.0f}",
        )
        lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |")
    return "\n".join(lines)


def _scenario_order(scenario: str) -> tuple:
    """Rows in the issue's order: "2.10 …" after "2.2 …", "2.2.1 …" after "2.2 …"; a part that is
    not a number sorts by its number, then its letters ("2.2b" after "2.2"); a row left with its
    test's name sorts last."""
    number = scenario.split(" ", 1)[0]
    return tuple(_part_order(part) for part in number.split(".")), scenario


def _part_order(part: str) -> tuple[int, int, str]:
    digits = re.match(r"\d+", part)
    return (0, int(digits.group(0)), part[digits.end():]) if digits else (1, 0, part)


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def _accounting(row: ScenarioRow) -> str:
    if row.accounted is None:
        return ""
    held_back = f"; {row.held_back} held back" if row.held_back else ""
    return f"{row.accounted} = {row.landed} + {row.duplicates} + {row.quarantined}{held_back}"


def _marts(row: ScenarioRow) -> str:
    if row.marts_readable is None:
        return "none published"
    readable = "readable" if row.marts_readable else "NOT readable"
    version = "at last good version" if row.marts_at_last_good_version else "NOT at last good version"
    return f"{readable}, {version}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.scenarios.report FILE", file=sys.stderr)
        return 2
    path = Path(argv[0])
    rows = read(path)
    if not rows:
        print(f"no scenario rows in {path}", file=sys.stderr)
        return 1
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
