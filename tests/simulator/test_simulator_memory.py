"""Memory does not grow with the length of the simulated history (10 million events must fit)."""

from __future__ import annotations

import tracemalloc
from datetime import date
from pathlib import Path

from jobs.simulator import SimulatorSettings, simulate

# Small pools, so that both runs fill them early: what is left to grow is whatever scales with history.
SETTINGS = SimulatorSettings.from_mapping(
    {"events_per_tenant_per_day": 800, "max_customers_per_tenant": 50, "max_visitors_per_tenant": 150}
)


def peak_traced_bytes(out_dir: Path, days: int) -> tuple[int, int]:
    """(peak bytes allocated by Python while simulating, lines written)."""
    tracemalloc.start()
    try:
        summary = simulate(out_dir, days=days, tenants=1, seed=3, start_date=date(2026, 1, 5), settings=SETTINGS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, summary.lines_written


def test_peak_memory_does_not_grow_with_the_number_of_days_simulated(tmp_path: Path) -> None:
    # 12 days: order lifecycles (up to about three weeks) are in full swing, as in any longer run.
    short_peak, short_lines = peak_traced_bytes(tmp_path / "short", days=12)
    long_peak, long_lines = peak_traced_bytes(tmp_path / "long", days=48)
    assert long_lines > 4 * short_lines
    # Keeping as little as one small object per event would cost 30+ bytes per event; what does grow
    # is the summary's list of file names (about 3 bytes per event here) and noise.
    growth_per_event = (long_peak - short_peak) / (long_lines - short_lines)
    assert growth_per_event < 20, f"{growth_per_event:.1f} bytes per extra event ({short_peak:,} -> {long_peak:,})"
    assert long_peak < 1.5 * short_peak
