"""Data Docs: the Great Expectations validation results of every run as self-contained HTML.

Layout under the Data Docs folder (`validation.data_docs_dir`, by default `<warehouse>/data_docs`):

    index.html                  every run, newest first, with its verdict and a link to its page
    runs/<run>/index.html       one page per run: every suite validated in it (marts, reconciliation),
                                each expectation as GX evaluated it, met or not, with the observed value
    runs/<run>/<suite>.json     what the page is rendered from (one file per suite validated)
    runs.json                   what the index is rendered from: per run, its time and suites' verdicts

Why not GX's own site builder: in GX 1.24 every page template (`page.j2`, `index_page.j2`,
`js_script_imports.j2`) loads jQuery, Bootstrap, bootstrap-table, Font Awesome and Vega from CDNs,
and its index table is filled in by that JavaScript, so without network access the index is empty.
`custom_views_directory` does not help: GX appends it after its own template loader, so a template
of the same name never replaces GX's. These pages carry their styles inline and need no script.

The folder may be on any file system the warehouse can be on (`s3a://…` as well as a local folder): the
files are written through the Spark session's Hadoop file systems (jobs/storage.py).
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import threading
from typing import TYPE_CHECKING, Any, Iterator

from jobs import storage

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.failed { background: #fde8e8; }
.passed { color: #176f2c; }
.verdict-failed { color: #b00020; font-weight: bold; }
code { font-size: 0.9em; white-space: pre-wrap; }
"""


def record_validation(spark: "SparkSession", site_dir: str, record: dict[str, Any]) -> str:
    """Keep one suite's validation of a run and render that run's page and the index again (or, within
    `rendered_once`, when it ends); return the page's path."""
    site_dir = site_dir.rstrip("/")
    folder = _folder_name(record["run_id"])
    run_dir = f"{site_dir}/runs/{folder}"
    storage.write_text(spark, f"{run_dir}/{_folder_name(record['suite'])}.json", json.dumps(record, indent=2))
    pending = getattr(_deferred, "runs", None)
    if pending is not None and pending[0] == site_dir:
        pending[1][record["run_id"]] = record
    else:
        _render(spark, site_dir, {record["run_id"]: record})
    return f"{run_dir}/index.html"


@contextlib.contextmanager
def rendered_once(spark: "SparkSession", site_dir: str) -> Iterator[None]:
    """Validations recorded within render their runs' pages and the index once, at the end (also when
    it ends with an error), instead of once per suite: a run's 12 suites wrote about 150 files and
    read them back, 2 s locally and more on an object store."""
    site_dir = site_dir.rstrip("/")
    _deferred.runs = (site_dir, {})
    try:
        yield
    finally:
        latest = _deferred.runs[1]
        _deferred.runs = None
        if latest:
            _render(spark, site_dir, latest)


def _render(spark: "SparkSession", site_dir: str, latest: dict[str, dict[str, Any]]) -> None:
    """Render the page of each run in `latest` (run id -> its last record) and the index."""
    # The index is rendered from one small summary file, not from every run's files: a year of
    # hourly runs is thousands of folders.
    summary_path = f"{site_dir}/runs.json"
    summary = json.loads(storage.read_text(spark, summary_path)) if storage.exists(spark, summary_path) else {}
    for run_id, record in latest.items():
        run_dir = f"{site_dir}/runs/{_folder_name(run_id)}"
        records = _records(spark, run_dir)
        storage.write_text(spark, f"{run_dir}/index.html", _run_page(records))
        run = summary.setdefault(run_id, {"folder": _folder_name(run_id), "suites": {}})
        run["validated_at"] = record["validated_at"]
        run["suites"].update((each["suite"], each["success"]) for each in records)
    storage.write_text(spark, summary_path, json.dumps(summary, indent=1))
    storage.write_text(spark, f"{site_dir}/index.html", _index_page(summary))


_deferred = threading.local()


def _records(spark: "SparkSession", run_dir: str) -> list[dict[str, Any]]:
    """A run's records in the order its suites were validated (to the millisecond; the suite's name
    breaks a tie)."""
    records = [
        json.loads(storage.read_text(spark, entry.path))
        for entry in storage.list_dir(spark, run_dir)
        if entry.name.endswith(".json") and not entry.is_dir
    ]
    return sorted(records, key=lambda record: (record["validated_at"], record["suite"]))


def _run_page(records: list[dict[str, Any]]) -> str:
    run_id = records[0]["run_id"]
    sections = []
    for record in records:
        met = sum(each["success"] for each in record["expectations"])
        version = f", contract {record['contract_version']}" if record.get("contract_version") else ""
        rows = "".join(
            f"<tr class=\"{'passed' if each['success'] else 'failed'}\"><td><code>{_e(each['expectation'])}</code></td>"
            f"<td>{'met' if each['success'] else 'FAILED'}</td><td>{_e(each['observed'])}</td></tr>"
            for each in record["expectations"]
        )
        sections.append(
            f"<h2 id=\"{_e(record['suite'])}\">{_e(record['suite'])}{_e(version)}: {_verdict(record['success'])}</h2>"
            f"<p>{met} of {len(record['expectations'])} expectations met; validated {_e(record['validated_at'])}.</p>"
            f"<table><tr><th>expectation</th><th>result</th><th>observed</th></tr>{rows}</table>"
        )
    title = f"Validation of run {run_id}"
    body = f"<p><a href=\"../../index.html\">All runs</a></p><h1>{_e(title)}</h1>{''.join(sections)}"
    return _page(title, body)


def _index_page(summary: dict[str, dict[str, Any]]) -> str:
    runs = sorted(summary.items(), key=lambda item: item[1]["validated_at"], reverse=True)
    rows = "".join(
        f"<tr class=\"{'passed' if all(run['suites'].values()) else 'failed'}\">"
        f"<td><a href=\"runs/{_e(run['folder'])}/index.html\">{_e(run_id)}</a></td>"
        f"<td>{_e(run['validated_at'])}</td>"
        f"<td>{_verdict(all(run['suites'].values()))}</td>"
        f"<td>{', '.join(_e(suite) + ('' if ok else ' (FAILED)') for suite, ok in run['suites'].items())}</td></tr>"
        for run_id, run in runs
    )
    body = (
        "<h1>Data Docs: validations of the marts</h1>"
        "<p>Every run's Great Expectations validation, newest first.</p>"
        f"<table><tr><th>run</th><th>validated</th><th>verdict</th><th>suites</th></tr>{rows}</table>"
    )
    return _page("Data Docs", body)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>{body}</body></html>\n"
    )


def _verdict(success: bool) -> str:
    return "<span class=\"passed\">passed</span>" if success else "<span class=\"verdict-failed\">FAILED</span>"


def _folder_name(name: str) -> str:
    """Run ids become folder names; Airflow's contain ':' and '+'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _e(text: Any) -> str:
    return html.escape(str(text))
