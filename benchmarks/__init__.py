"""The benchmark of issue #8: what an hourly run costs as history grows, against a full rebuild and a
DuckDB recompute of three marts. `make bench` (or `python -m benchmarks --help`); see the README's
"Benchmark" section.

Modules: `workload` (one simulated export cut into histories and hourly batches), `harness` (the
timed pipeline steps per size), `duckdb_marts` (the DuckDB reference), `memory` (RSS sampling of
the process and its Spark JVM), `report` (machine, figures, targets, table, JSON).
"""
