"""The `convo` command line: parse options, call the library, echo the result."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline import __version__
from pipeline.config import Settings, load
from pipeline.errors import ConvoError, one_line

if TYPE_CHECKING:     # the stages import lazily, so `convo --help` stays fast
    from pipeline.build import BuildSummary
    from pipeline.ingest import IngestSummary
    from pipeline.simulate import SimulateSummary

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
PROGRESS_MIN_BYTES = 16 * 1024 * 1024


def config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--config PATH, loaded and validated before the command runs."""

    @click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                  default=Path("convo.toml"), show_default=True, help="Path of convo.toml.")
    @functools.wraps(command)
    def wrapper(*args: Any, config_path: Path, **kwargs: Any) -> Any:
        return command(*args, settings=_settings(config_path), **kwargs)

    return wrapper


def _settings(path: Path) -> Settings:
    return load(path)


def _timestamp(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"give an offset (e.g. {value}Z): {value!r}")
    return parsed.astimezone(timezone.utc)


class ConvoGroup(click.Group):
    """The error boundary: a ConvoError from any command is one line on stderr and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConvoError as exc:
            raise click.ClickException(one_line(exc)) from None


@click.group(cls=ConvoGroup, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="convo")
def cli() -> None:
    """convo: WhatsApp Business windows, conversations and Meta billing, as a nightly batch.

    \b
    Example:
        convo demo                       # simulate a tenant and build everything
        convo ingest exports/            # exports -> Parquet lake
        convo build                      # lake -> warehouse.duckdb
    """


@cli.command(context_settings=CONTEXT)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the exports and convo.toml into.")
@click.option("--contacts", default=5000, show_default=True, type=click.IntRange(min=1),
              help="Number of contacts (messages grow with it).")
@click.option("--days", default=60, show_default=True, type=click.IntRange(min=1), help="Days simulated.")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed: same seed, same files.")
@click.option("--start", default="2026-09-01", show_default=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First simulated day.")
@click.option("--dirty", is_flag=True, help="Add what real exports contain: duplicates, bad lines, bad values.")
@click.option("--format", "output_format", type=click.Choice(["exports", "meta-webhooks"]), default="exports",
              show_default=True, help="The platform's exports, or the same tenant as Meta Cloud API webhook logs.")
@click.option("--incident", "incidents", multiple=True, metavar="KIND:DATE",
              help="Inject an incident on a local day (repeatable): cost_spike, otp_pumping, failure_spike, "
                   "window_waste, tier_change, input_quality or reconciliation_drift.")
def simulate(out: Path, contacts: int, days: int, seed: int, start: datetime, dirty: bool,
             output_format: str, incidents: tuple[str, ...]) -> None:
    """Write realistic exports of one tenant (deterministic per seed).

    \b
    Example:
        convo simulate --out sim --contacts 2000 --days 30 --dirty
        convo simulate --out sim-meta --format meta-webhooks
        convo simulate --out sim --incident otp_pumping:2026-10-20 --incident cost_spike:2026-10-22
    """
    summary = _simulate(out, contacts, days, seed, start.date(), dirty, show_progress=True,
                        output_format=output_format, incidents=incidents)
    click.echo(f"wrote {len(summary.files)} files to {summary.out}")
    if output_format == "meta-webhooks":
        click.echo(f"  {summary.messages:,} messages as {summary.webhook_bodies:,} webhook bodies")
    else:
        click.echo(f"  {summary.messages:,} messages, {summary.conversations:,} conversations, "
                   f"{summary.events:,} events, {summary.templates:,} templates")
    if summary.dirty:
        defects = ", ".join(f"{kind} {count:,}" for kind, count in sorted(summary.dirty.items()))
        click.echo(f"  dirty extras: {defects}")
    click.echo(f"  config: {summary.config_path}")


def _simulate(out: Path, contacts: int, days: int, seed: int, start: date, dirty: bool,
              show_progress: bool, output_format: str = "exports", incidents: tuple[str, ...] = ()) -> SimulateSummary:
    from pipeline.simulate import SimulateSettings, simulate as run

    settings = SimulateSettings(out=out, contacts=contacts, days=days, seed=seed, start=start, dirty=dirty,
                                format=output_format, incidents=incidents)
    try:
        with click.progressbar(length=contacts, label="simulating contacts", file=sys.stderr,
                               hidden=not show_progress) as bar:
            return run(settings, progress=bar.update)
    except ValueError as exc:     # pipeline.simulate checks its settings with ValueError
        raise ConvoError(str(exc)) from None


@cli.command(context_settings=CONTEXT)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@config_option
def ingest(inputs: tuple[Path, ...], settings: Settings) -> None:
    """Read exports (files or folders) into the Parquet lake, idempotently.

    JSONL, JSON API pages, CSV and Parquet are recognised by content and name;
    rejected records go to the quarantine with their reason.

    \b
    Example:
        convo ingest exports/messages exports/conversations/page-0001.json
    """
    _echo_ingest(_ingest(settings, list(inputs)))


def _ingest(settings: Settings, inputs: list[Path]) -> IngestSummary:
    from pipeline.ingest import ingest as run, plan

    total = sum(source.size for source in plan(inputs))
    with click.progressbar(length=total, label="ingesting", file=sys.stderr,
                           hidden=total < PROGRESS_MIN_BYTES) as bar:
        return run(settings.lake, inputs, progress=lambda n: bar.update(min(n, total)))


def _echo_ingest(summary: IngestSummary) -> None:
    for dataset in summary.datasets:
        read = summary.total("read", dataset)
        click.echo(
            f"{dataset}: {read:,} read = {summary.total('accepted', dataset):,} accepted"
            f" + {summary.total('duplicates', dataset):,} duplicates"
            f" + {summary.total('quarantined', dataset):,} quarantined"
        )
    if summary.quarantine_reasons:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in summary.quarantine_reasons.items())
        click.echo(f"quarantined by reason: {reasons}")
    click.echo(f"{len(summary.files)} files, {summary.partitions_written} lake files written")


@cli.command(context_settings=CONTEXT)
@click.option("--as-of", "as_of", default=None, metavar="TIMESTAMP",
              help="Status of open windows and conversations as of this time (default: the newest message).")
@click.option("--incremental", is_flag=True,
              help="Start from the last warehouse and rebuild only the threads that changed "
                   "(falls back to a full build, saying why). convo nightly always does this.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="Where the per-thread stage runs: here in DuckDB, or one Spark task per shard "
                   "(needs pip install 'convo[spark]' and Java; README \"The Spark engine\").")
@click.option("--spark-master", "spark_master", default=None, metavar="URL",
              help="With --engine spark: the Spark master (default local[*], every core of this machine).")
@config_option
def build(as_of: str | None, incremental: bool, engine: str, spark_master: str | None,
          settings: Settings) -> None:
    """Build the warehouse (DuckDB file) from the lake.

    \b
    Example:
        convo build --as-of 2026-10-31T23:59:59Z
        convo build --incremental
        convo build --engine spark --spark-master spark://head:7077
    """
    if spark_master is not None and engine != "spark":
        raise click.UsageError("--spark-master goes with --engine spark")
    _echo_build(_build(settings, _timestamp(as_of), incremental=incremental, engine=engine,
                       spark_master=spark_master))


def _build(settings: Settings, as_of: datetime | None, incremental: bool = False, engine: str = "duckdb",
           spark_master: str | None = None) -> BuildSummary:
    from pipeline.build import build as run

    # progress on a terminal only: what runs now, each step replacing the last
    show = sys.stderr.isatty()

    def step(text: str) -> None:
        click.echo(f"\r\033[Kbuilding: {text}", nl=False, err=True)

    try:
        return run(settings, as_of=as_of, incremental=incremental, on_step=step if show else None,
                   engine=engine, spark_master=spark_master)
    finally:
        if show:
            click.echo("\r\033[K", nl=False, err=True)


def _echo_build(summary: BuildSummary) -> None:
    click.echo(f"warehouse: {summary.warehouse}")
    if summary.as_of is not None:
        click.echo(f"as of: {summary.as_of.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC")
    for table, rows in summary.tables.items():
        click.echo(f"  {table:<28} {rows:>12,} rows")
    for line in summary.checks:
        click.echo(line)
    for note in summary.notes:
        click.echo(f"note: {note}")


@cli.command(context_settings=CONTEXT)
@click.option("--dir", "directory", default=Path("convo-demo"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the demo's files.")
@click.option("--contacts", default=5000, show_default=True, type=click.IntRange(min=1),
              help="Contacts to simulate.")
@click.option("--days", default=60, show_default=True, type=click.IntRange(min=1), help="Days to simulate.")
@click.option("--start", default="2026-09-01", show_default=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First simulated day (before 2025-07-01: the CBP months too, with Meta's conversation_analytics).")
def demo(directory: Path, contacts: int, days: int, start: datetime) -> None:
    """Simulate a realistic tenant and run the whole flow on it.

    \b
    Example:
        convo demo --dir /tmp/convo-demo
    """
    from pipeline.demo import headline
    from pipeline.report import render

    click.echo(f"1/4 simulating {contacts:,} contacts x {days} days into {directory}")
    simulated = _simulate(directory, contacts, days, seed=7, start=start.date(), dirty=True,
                          show_progress=True)
    settings = _settings(simulated.config_path)
    click.echo("2/4 ingesting the exports into the lake")
    _echo_ingest(_ingest(settings, [directory / "exports"]))
    click.echo("3/4 building the warehouse")
    built = _build(settings, None)
    _echo_build(built)
    click.echo("4/4 writing the reports")
    reports = render(settings)
    click.echo("")
    for line in headline(built.warehouse):
        click.echo(line)
    click.echo("")
    click.echo(f"warehouse: duckdb -readonly {built.warehouse}")
    click.echo(f"   or in Python:  duckdb.connect('{built.warehouse}', read_only=True)")
    click.echo(f"reports:   {reports.index}")


@cli.command(context_settings=CONTEXT)
@click.option("--base-url", default=None, help="The API's base URL (default: [api] base_url of convo.toml).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the pulled pages and the cursor (default: [paths] exports of convo.toml).")
@click.option("--since", default=None, metavar="TIMESTAMP",
              help="Start of the range (default: the stored cursor less one hour, else 30 days ago).")
@click.option("--until", default=None, metavar="TIMESTAMP", help="End of the range (default: now).")
@click.option("--phone-number-id", default=None, help="Only this business number (API filter).")
@click.option("--status", default=None, type=click.Choice(["active", "inactive", "ended"]),
              help="Only conversations in this status (API filter).")
@click.option("--customer-id", default=None, help="Only this customer (API filter).")
@click.option("--contact-phone", default=None, help="Only this contact phone (API filter).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("convo.toml"), show_default=True, help="Path of convo.toml (optional for pull).")
def pull(base_url: str | None, out: Path | None, since: str | None, until: str | None,
         phone_number_id: str | None, status: str | None, customer_id: str | None,
         contact_phone: str | None, config_path: Path) -> None:
    """Pull conversations and messages from the platform's API, incrementally.

    The key comes from the environment variable GOSENDAPI_KEY.

    \b
    Example:
        GOSENDAPI_KEY=... convo pull --base-url https://api.example.com --out exports
    """
    from pipeline.pull import PullSettings, pull as run

    settings = _settings(config_path) if config_path.is_file() else None
    url = base_url or (settings.api.base_url if settings and settings.api else None)
    if not url:
        raise click.ClickException("give --base-url, or [api] base_url in convo.toml")
    folder = out or (settings.exports if settings else None)
    if folder is None:
        raise click.ClickException("give --out, the folder for the pulled pages")
    filters = {name: value for name, value in (("phone_number_id", phone_number_id), ("status", status),
                                                ("customer_id", customer_id), ("contact_phone", contact_phone))
               if value is not None}
    request = PullSettings(base_url=url, out=folder, since=_timestamp(since), until=_timestamp(until),
                           filters=filters)
    summary = run(request, on_page=lambda resource, page, count: click.echo(
        f"  {resource} page {page}: {count:,} records", err=True))
    for result in summary.resources:
        click.echo(f"{result.resource}: {result.records:,} records in {result.pages} pages "
                   f"({result.since:%Y-%m-%d %H:%M:%S} to {result.until:%Y-%m-%d %H:%M:%S} UTC"
                   f"{f', {result.retries} retries' if result.retries else ''})")
    click.echo(f"cursor: {summary.cursor_path}")


@cli.command(context_settings=CONTEXT)
@click.option("--month", default=None, metavar="YYYY-MM",
              help="Month the monthly reports focus on (default: the newest month in the data).")
@click.option("--show-phones", is_flag=True, help="Show contact phone numbers and bsuids unmasked.")
@config_option
def report(month: str | None, show_phones: bool, settings: Settings) -> None:
    """Write the HTML reports (one self-contained file each) from the warehouse.

    \b
    Example:
        convo report --month 2026-10
    """
    from pipeline.report import render

    if month is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise click.BadParameter(f"expected YYYY-MM, got {month!r}", param_hint="--month")
    summary = render(settings, month=month, show_phones=show_phones)
    for path in summary.files:
        click.echo(f"wrote {path}")
    click.echo(f"open {summary.index}")


@cli.command(context_settings=CONTEXT)
@click.option("--phone-number-id", "phone_number_id", required=True, type=int,
              help="The business phone number (phone_number_id).")
@click.option("--contact", required=True,
              help="The contact: a bsuid (BR.1a2b3c) or a phone (+5511987654321), which resolves to its "
                   "contact key as in DOMAIN R2.")
@click.option("--at", "at", default=None, metavar="TIMESTAMP",
              help="The moment asked about (default: the warehouse's as-of, i.e. convo build's --as-of, else "
                   "the newest message; not now).")
@config_option
def window(phone_number_id: int, contact: str, at: str | None, settings: Settings) -> None:
    """May we send a free-form message to a contact? The 24 h window, from the warehouse.

    Exit code 0 whether the window is open or not.

    \b
    Example:
        convo window --phone-number-id 104711550000101 --contact +5511987654321
        convo window --phone-number-id 104711550000101 --contact BR.1a2b3c --at 2026-09-30T12:00:00Z
    """
    from pipeline.window import answer, lines

    result = answer(settings.warehouse, phone_number_id, contact, _timestamp(at))
    for line in lines(result):
        click.echo(line)


ALERTS_FIRED_EXIT = 3   # convo nightly --fail-on: a new alert at least that severe (errors exit 1)


@cli.command(context_settings=CONTEXT)
@click.option("--as-of", "as_of", default=None, metavar="TIMESTAMP",
              help="Status of open windows and conversations as of this time (default: the newest message).")
@click.option("--fail-on", "fail_on", default=None, type=click.Choice(["info", "warning", "critical"]),
              help=f"Exit with code {ALERTS_FIRED_EXIT} when the build gives a new alert at least this severe "
                   "(one the previous warehouse did not have).")
@config_option
def nightly(as_of: str | None, fail_on: str | None, settings: Settings) -> None:
    """Pull (if [api] is configured), ingest new exports, build, report: one run at a time.

    \b
    Example:
        GOSENDAPI_KEY=... convo nightly --config /srv/convo/convo.toml
        convo nightly --fail-on critical || notify-ops "convo: new critical alerts"
    """
    from pipeline.nightly import nightly as run

    summary = run(settings, as_of=_timestamp(as_of), on_step=lambda text: click.echo(f"-- {text}"))
    if summary.pulled is not None:
        for result in summary.pulled.resources:
            click.echo(f"pulled {result.resource}: {result.records:,} records in {result.pages} pages")
    if summary.ingested is not None:
        if summary.ingested.files:
            _echo_ingest(summary.ingested)
        click.echo(f"{summary.ingested.skipped} files already ingested, not read again")
    _echo_build(summary.built)
    failing = _echo_new_alerts(summary.new_alerts, fail_on)
    click.echo(f"reports: {summary.reports.index}")
    if failing:
        click.echo(f"convo nightly: {len(failing)} new alert(s) at or above {fail_on}", err=True)
        sys.exit(ALERTS_FIRED_EXIT)


def _echo_new_alerts(new_alerts: list[Any], fail_on: str | None) -> list[Any]:
    """Print the night's new alerts; those at or above fail_on (none without it)."""
    from pipeline.alerts import at_least

    click.echo(f"new alerts: {len(new_alerts)}")
    for alert in new_alerts:
        click.echo(f"  {alert.line()}")
    return at_least(new_alerts, fail_on) if fail_on else []


@cli.command(context_settings=CONTEXT)
@click.option("--since", default=None, type=click.DateTime(["%Y-%m-%d"]), metavar="DATE",
              help="Only alerts of this local day (YYYY-MM-DD) or later.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of text.")
@config_option
def alerts(since: datetime | None, as_json: bool, settings: Settings) -> None:
    """List the warehouse's alerts: cost spikes, OTP pumping, failures, waste, tiers, input, drift.

    \b
    Example:
        convo alerts --since 2026-10-01
        convo alerts --json | jq -r 'select(.severity == "critical") | .rule'
    """
    import json

    from pipeline.alerts import read

    found = read(settings.warehouse, since.date() if since else None)
    for alert in found:
        click.echo(json.dumps(alert.as_json(), ensure_ascii=False) if as_json else alert.line())
    if not as_json:
        click.echo(f"{len(found)} alert(s)")


def main() -> None:
    cli(prog_name="convo")
