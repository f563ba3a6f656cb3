"""`convo nightly`: pull (when [api] is configured) -> ingest -> build -> report.

One run at a time per warehouse (a lock released by the OS however the run
ends). Every step leaves the previous state intact until it succeeds: pages and
lake partitions are renamed into place, the warehouse is built under a
temporary name, each report is renamed into place. A killed run is completed
by the next one; two runs in a row give the same tables and report files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pipeline import alerts as alert_rows
from pipeline import locking
from pipeline.build import BuildSummary, build
from pipeline.config import Settings
from pipeline.ingest import IngestSummary, ingest
from pipeline.pull import PullSettings, PullSummary, pull
from pipeline.report import ReportSummary, render


@dataclass
class NightlySummary:
    pulled: PullSummary | None
    ingested: IngestSummary | None
    built: BuildSummary
    reports: ReportSummary
    # alerts of the new warehouse that the one it replaced did not have (all of them
    # when there was none, or it had no alerts table): what --fail-on judges
    new_alerts: list[alert_rows.Alert] = field(default_factory=list)


def lock_path(settings: Settings):  # noqa: ANN201 (a Path)
    return settings.warehouse.with_name(settings.warehouse.name + ".nightly.lock")


def nightly(settings: Settings, as_of: datetime | None = None,
            on_step: Callable[[str], None] | None = None) -> NightlySummary:
    step = on_step or (lambda _: None)
    with locking.exclusive(lock_path(settings), f"convo nightly for {settings.warehouse}"):
        pulled = None
        if settings.api is not None and settings.exports is not None:
            step(f"pulling from {settings.api.base_url}")
            pulled = pull(PullSettings(base_url=settings.api.base_url, out=settings.exports))
        ingested = None
        if settings.exports is not None and settings.exports.is_dir():
            step(f"ingesting new files from {settings.exports}")
            ingested = ingest(settings.lake, [settings.exports], skip_known=True)
        previous = alert_rows.keys(settings.warehouse)
        step("building the warehouse")
        built = build(settings, as_of=as_of, incremental=True)
        new_alerts = [alert for alert in alert_rows.read(settings.warehouse)
                      if previous is None or alert.alert_key not in previous]
        step("writing the reports")
        reports = render(settings)
    return NightlySummary(pulled=pulled, ingested=ingested, built=built, reports=reports, new_alerts=new_alerts)
