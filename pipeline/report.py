"""Warehouse -> self-contained HTML reports (one file each, inline CSS and SVG).

Python prepares the figures (queries, dataclasses, chart geometry); the jinja2
templates in reports/ only format them, with autoescape on and StrictUndefined.
Output depends only on the warehouse (the "generated" time shown is the data's
as-of), so two runs on the same warehouse write identical files.

The reports are published as one set: the files are written into a new hidden
folder beside the reports folder (`.reports_out.<digest>`), and the reports
folder, a symbolic link, is swapped onto it with one rename. A reader (or a run
killed half-way) sees the previous set or the new one, never an index of one
night beside a report of another. A reports folder that is still a plain folder
holding only report files becomes the link on the first run; one that holds
anything else is left a folder, and each file is renamed into place instead.
One writer at a time (a lock beside the folder): `convo report` during a
nightly's report step is refused with a one-line error.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import jinja2

from pipeline import __version__, charts, pages, paths
from pipeline.config import Settings
from pipeline.errors import ConvoError
from pipeline.locking import Busy, crash_point, exclusive
# The page types are re-exported: pipeline.report.Report and friends stay importable.
from pipeline.report_types import MASK, Report, ReportContext, bar_rows, mask_contact, number


class ReportError(ConvoError, RuntimeError):
    """The reports cannot be made (no warehouse yet, ...)."""


@dataclass
class ReportSummary:
    folder: Path
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.folder / "index.html"


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.reports_dir())),
        autoescape=jinja2.select_autoescape(["html", "svg", "xml"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )


def registry() -> list[Report]:
    """Every report, in the order the index lists them."""
    return pages.REPORTS


def render(settings: Settings, month: str | None = None, show_phones: bool = False) -> ReportSummary:
    """Write the reports; one writer of a reports folder at a time (ReportError when busy)."""
    if not settings.warehouse.is_file():
        raise ReportError(f"no warehouse at {settings.warehouse}: run `convo build` first")
    folder = settings.reports
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive(folder.with_name(f".{folder.name}.lock"), f"writing the reports in {folder}"):
            con = duckdb.connect(str(settings.warehouse), read_only=True)
            try:
                con.execute("set TimeZone = 'UTC'")
                con.execute("set enable_progress_bar = false")
                return _render(con, settings, month, show_phones)
            finally:
                con.close()
    except Busy as exc:
        raise ReportError(str(exc)) from None


def _render(con: duckdb.DuckDBPyConnection, settings: Settings, month: str | None,
            show_phones: bool) -> ReportSummary:
    env = environment()
    context = ReportContext(con=con, show_phones=show_phones, month=month)
    tables = {row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()}
    as_of = con.execute("select max(sent_at) from messages").fetchall()[0][0]
    tenants = [row[0] for row in con.execute("select distinct tenant_id from phone_numbers order by 1").fetchall()]
    reports = [report for report in registry() if set(report.needs) <= tables]
    summary = ReportSummary(folder=settings.reports)
    summary.skipped = [report.name for report in registry() if report not in reports]
    nav = [{"href": "index.html", "title": "Index"}] + [
        {"href": f"{report.name}.html", "title": report.title} for report in reports]
    common = {
        "nav": nav,
        "version": __version__,
        "warehouse_name": settings.warehouse.name,
        "as_of_text": _as_of_text(as_of),
        "tenant_text": "tenant " + ", ".join(str(t) for t in tenants) if tenants else "no tenant configured",
    }
    entries = []
    pages: dict[str, str] = {}
    for report in reports:
        data = report.build(context)
        pages[f"{report.name}.html"] = env.get_template(report.template).render(
            title=report.title, **common, **data)
        entries.append({"href": f"{report.name}.html", "title": report.title, "summary": report.summary(data)})
    index = env.get_template("index.html").render(title="convo reports", entries=entries, **common)
    pages = {"index.html": index, **pages}
    publish(settings.reports, pages)
    summary.files = [settings.reports / name for name in pages]
    return summary


def _as_of_text(as_of: datetime | None) -> str:
    if as_of is None:
        return "no data"
    return as_of.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def publish(folder: Path, pages: dict[str, str]) -> None:
    """Make `folder` show exactly `pages` (file name -> text), all at once (see the module doc)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.is_dir() and not folder.is_symlink() and not _only_reports(folder):
        for name, text in pages.items():           # a folder shared with other files: file by file
            _write(folder / name, text)
        return
    digest = hashlib.sha256()
    for name, text in sorted(pages.items()):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    version = folder.with_name(f".{folder.name}.{digest.hexdigest()[:16]}")
    if not version.is_dir():
        building = folder.with_name(f".{folder.name}.building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir()
        for name, text in pages.items():
            _write(building / name, text)
        os.rename(building, version)                # a complete set gets its digest's name, or none
    crash_point("report.swap")
    link = folder.with_name(f".{folder.name}.link")
    link.unlink(missing_ok=True)
    link.symlink_to(version.name)
    if folder.is_dir() and not folder.is_symlink():
        legacy = folder.with_name(f".{folder.name}.legacy-{os.getpid()}")
        os.rename(folder, legacy)                   # first run on a plain folder: it becomes the link
        os.replace(link, folder)
        shutil.rmtree(legacy, ignore_errors=True)
    else:
        os.replace(link, folder)
    for old in folder.parent.glob(f".{folder.name}.*"):
        if old != version and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)  # earlier sets, and runs killed half-way
    # (render holds the folder's lock: no other writer's set is half-written here)


def _only_reports(folder: Path) -> bool:
    return all(path.is_file() and (path.suffix == ".html" or path.name.endswith(".html.tmp"))
               for path in folder.iterdir())


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    crash_point("report.write")
    os.replace(tmp, path)
    return path


__all__ = ["MASK", "Report", "ReportContext", "ReportError", "ReportSummary", "bar_rows", "charts", "mask_contact",
           "number", "render"]
