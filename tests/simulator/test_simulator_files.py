"""The simulator's files: layout, determinism byte for byte, gzip, never overwriting, progress."""

from __future__ import annotations

import gzip
import re
from datetime import date, datetime
from pathlib import Path

import pytest

from jobs.simulator import SimulatorSettings, simulate

START = date(2026, 3, 28)  # spans a month end
SMALL = SimulatorSettings(events_per_tenant_per_day=400)
LAYOUT = re.compile(r"^\d{4}-\d{2}-\d{2}/\d{2}/events-\d{8}T\d{2}-\d{3}\.ndjson(\.gz)?$")


def tree(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def run(out_dir: Path, *, seed: int = 11, compress: bool = False, settings: SimulatorSettings = SMALL, days: int = 3):
    return simulate(out_dir, days=days, tenants=2, seed=seed, start_date=START, settings=settings, compress=compress)


def test_the_same_arguments_write_the_same_bytes(tmp_path: Path) -> None:
    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert first.to_dict() | {"out_dir": ""} == second.to_dict() | {"out_dir": ""}


def test_gzip_output_is_deterministic_and_holds_the_same_lines(tmp_path: Path) -> None:
    run(tmp_path / "gz1", compress=True)
    run(tmp_path / "gz2", compress=True)
    run(tmp_path / "plain")
    compressed = tree(tmp_path / "gz1")
    assert compressed == tree(tmp_path / "gz2")
    assert all(name.endswith(".ndjson.gz") for name in compressed)
    plain = {name.removesuffix(".gz"): gzip.decompress(content) for name, content in compressed.items()}
    assert plain == tree(tmp_path / "plain")


def test_another_seed_writes_another_history(tmp_path: Path) -> None:
    run(tmp_path / "a", seed=11)
    run(tmp_path / "b", seed=12)
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert b"".join(a.values()) != b"".join(b.values())


def test_files_follow_the_day_hour_layout_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    summary = run(tmp_path)
    written = tree(tmp_path)
    assert sorted(summary.files) == sorted(written)
    assert all(LAYOUT.match(name) for name in written), [n for n in written if not LAYOUT.match(n)]
    assert {name[:10] for name in written} == {"2026-03-28", "2026-03-29", "2026-03-30"}
    assert all(content.endswith(b"\n") for content in written.values())


def test_a_file_is_split_into_parts_at_max_events_per_file(tmp_path: Path) -> None:
    no_redelivery = {"exact_duplicate_rate": 0, "conflicting_duplicate_rate": 0, "broken_line_rate": 0}
    settings = SimulatorSettings.from_mapping(
        {"events_per_tenant_per_day": 1500, "max_events_per_file": 40, "anomalies": no_redelivery}
    )
    summary = run(tmp_path, settings=settings, days=1)
    assert any(name.endswith("-001.ndjson") for name in summary.files)
    assert all(content.count(b"\n") <= 40 for content in tree(tmp_path).values())


def test_days_already_written_are_never_written_again(tmp_path: Path) -> None:
    run(tmp_path)
    before = tree(tmp_path)
    with pytest.raises(FileExistsError, match="2026-03-28"):
        run(tmp_path, seed=99)
    assert tree(tmp_path) == before


def test_progress_is_reported_once_per_simulated_day(tmp_path: Path) -> None:
    messages: list[str] = []
    simulate(tmp_path, days=3, tenants=1, seed=1, start_date=START, settings=SMALL, progress=messages.append)
    assert len(messages) == 3
    assert [m[:10] for m in messages] == ["2026-03-28", "2026-03-29", "2026-03-30"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"days": 0}, "days"),
        ({"tenants": -1}, "tenants"),
        ({"seed": "7"}, "seed"),
        ({"start_date": datetime(2026, 1, 1)}, "start_date"),
        ({"settings": {"events_per_tenant_per_day": 5}}, "settings"),
    ],
)
def test_bad_arguments_are_rejected_before_anything_is_written(tmp_path: Path, arguments: dict, message: str) -> None:
    kwargs = {"days": 1, "tenants": 1, "seed": 1, "start_date": START, **arguments}
    with pytest.raises(ValueError, match=message):
        simulate(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_many_tenants_get_distinct_ids(tmp_path: Path) -> None:
    summary = simulate(tmp_path, days=1, tenants=9, seed=1, start_date=START,
                       settings=SimulatorSettings(events_per_tenant_per_day=50))
    assert len(set(summary.tenant_currencies)) == 9
