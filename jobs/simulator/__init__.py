"""The event simulator: a believable, deterministic history of the e-commerce platform's event-store
export (shared spec `events.md`), with the faults the contract warns about. Pure standard library.

    from jobs.simulator import SimulatorSettings, simulate, SimulationSummary
    settings = SimulatorSettings.from_mapping(conf["simulator"])
    summary = simulate(out_dir, days=21, tenants=2, seed=7, start_date=date(2026, 1, 5), settings=settings)

Output: `<out>/<YYYY-MM-DD>/<HH>/events-<YYYYMMDD>T<HH>-<part>.ndjson[.gz]`, one file (or more parts of
`max_events_per_file` lines) per UTC hour in which the store recorded the events; files are complete
when they appear (written under a hidden name, then renamed) and are never overwritten.

Guarantees (tested in tests/simulator): the same arguments give the same bytes; stream versions are
contiguous per stream and follow recording order; global positions are 1..n across all tenants in
`recorded_at` order; every anomaly the summary counts is in the files, and nothing else is.
Modules: `settings` (what can be configured), `world` (who does what), `payloads` (payload shapes per
schema version), `events` and `writer` (the store: recording order, numbering, files), `anomalies`
(damaged lines), `clock` (timestamps), `run` (`simulate`, `SimulationSummary`).
"""

from jobs.simulator.run import SimulationSummary, simulate
from jobs.simulator.settings import (
    AnomalySettings,
    BehaviourSettings,
    ExperimentSettings,
    SchemaSwitch,
    SimulatorSettings,
)

__all__ = [
    "AnomalySettings",
    "BehaviourSettings",
    "ExperimentSettings",
    "SchemaSwitch",
    "SimulationSummary",
    "SimulatorSettings",
    "simulate",
]
