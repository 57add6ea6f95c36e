"""The event simulator: a believable, deterministic history of the e-commerce platform's event-store
export (shared spec `events.md`), with the faults the contract warns about. Pure standard library.

    from jobs.simulator import SimulatorSettings, simulate, SimulationSummary
    summary = simulate(out_dir, days=21, tenants=2, seed=7, start_date=date(2026, 1, 5))
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
