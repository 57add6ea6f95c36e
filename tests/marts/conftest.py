from __future__ import annotations

import pytest

from tests.histories import as_of, shop_history

AS_OF = as_of("2026-01-06T12:00:00+00:00")


@pytest.fixture(scope="module")
def shop_sources(spark, tmp_path_factory):
    """The shop history landed, upcast into silver, and read back as the marts' inputs."""
    from jobs.landing.files import land_files
    from jobs.marts import mart_module
    from jobs.silver import build_silver, read_silver

    root = tmp_path_factory.mktemp("shop")
    shop_history().write(root / "landing")
    warehouse = str(root / "warehouse")
    land_files(spark, warehouse, root / "landing", "test-run")
    build_silver(spark, warehouse, only=mart_module("orders").INPUTS)
    sources = {name: read_silver(spark, warehouse, name) for name in mart_module("orders").INPUTS}
    sources["orders"] = mart_module("orders").build(sources, AS_OF).cache()
    return sources
