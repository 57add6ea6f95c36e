"""The endpoint's Java classes, compiled once per source version into `.cache/bi-jvm/<hash>` (jobs/bi/jvm.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from jobs.bi import jvm


def test_processes_compiling_at_once_each_get_the_complete_classes_and_leave_one_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(jvm, "CACHE", tmp_path / "bi-jvm")
    with ThreadPoolExecutor(max_workers=3) as pool:
        targets = list(pool.map(lambda _: jvm.compiled_classes(), range(3)))

    assert len(set(targets)) == 1
    target = targets[0]
    assert (target / "_ok").exists()
    classes = {path.name for path in target.rglob("*.class")}
    assert {f"{source.stem}.class" for source in jvm.SOURCES.rglob("*.java")} <= classes
    assert [path.name for path in (tmp_path / "bi-jvm").iterdir()] == [target.name]  # no copy left behind
    assert jvm.compiled_classes() == target  # compiled once: later calls find it
