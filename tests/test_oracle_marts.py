"""Every mart the specs define a metric of, published by one pipeline run over a two-week simulated history
of three tenants (every anomaly of events.md: late and out-of-order events, duplicates, conflicting
duplicates, broken lines, unknown types, newer schema versions, v1 payloads, erasures), equals the same
mart computed in plain Python from the same files by tests/oracle, which was written from
../shared/spec alone, not from jobs/.

`slow` (2.5 minutes alone on two cores: landing 43,208 lines and building 11 marts); `make test` compares
the oracle with the batched runs of tests/test_incremental.py and the segment runs of
tests/test_segments_pipeline.py on shorter histories, at no pipeline run of its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from jobs import pipeline
from jobs.marts import mart_module
from jobs.simulator import simulate
from tests.oracle import events, marts
from tests.oracle.compare import differences

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def published(settings, tmp_path_factory):
    root = tmp_path_factory.mktemp("oracle")
    run_settings = dataclasses.replace(settings, warehouse=str(root / "warehouse"))
    simulate(root / "landing", days=14, tenants=3, seed=5, start_date=dt.date(2026, 2, 2))
    pipeline.run(run_settings, root / "landing", run_id="oracle")
    # The order the run landed them in (what decides which of two conflicting duplicates stays).
    landed = events.land(sorted((root / "landing").rglob("*.ndjson*")))
    return run_settings, landed


@pytest.mark.parametrize("mart", marts.MARTS)
def test_the_published_mart_equals_an_independent_computation_from_the_specs(spark, published, mart):
    run_settings, landed = published
    expected = marts.computed(mart, landed, events.as_of(landed), run_settings.experiments.splits)
    assert expected, "the oracle computed no rows"
    mart_rows = spark.read.format("delta").load(pipeline.gold_path(run_settings, mart))
    assert differences(mart_rows, expected, mart_module(mart).CONTRACT.key) == []
