"""Alerts (sql/marts/alerts.sql): each injected incident fires its alert on its day and
scope; `convo alerts` lists them; `convo nightly --fail-on` fails only on new ones."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.build import build
from pipeline.cli import ALERTS_FIRED_EXIT, cli
from pipeline.config import load
from pipeline.ingest import ingest
from pipeline.paths import data_dir
from pipeline.simulate import SimulateSettings, simulate
from pipeline.simulate.incidents import KINDS, SCOPES, audience, parse
from pipeline.simulate.world import NUMBERS

INCIDENTS = {
    "tier_change": date(2026, 9, 2),
    "cost_spike": date(2026, 9, 20),
    "otp_pumping": date(2026, 9, 21),
    "failure_spike": date(2026, 9, 22),
    "window_waste": date(2026, 9, 23),     # regime B: a template in an open window is waste (DOMAIN R19)
    "input_quality": date(2026, 9, 24),
    "reconciliation_drift": date(2026, 9, 25),
}
CONTACTS = 600
# Brazil's utility tier ends at 150 charged messages a month instead of 100,000, so the
# tier_change incident (300 utility templates on 2026-09-02) crosses it (DOMAIN R24).
SMALL_TIER = ("2025-07-01,Brazil,utility,USD,1,100000,", "2025-07-01,Brazil,utility,USD,1,150,")
NEXT_TIER = ("2025-07-01,Brazil,utility,USD,100001,500000,", "2025-07-01,Brazil,utility,USD,151,500000,")


@pytest.fixture(scope="module")
def incidents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("incidents")
    simulate(SimulateSettings(out=out, contacts=CONTACTS, days=60, seed=7, start=date(2026, 8, 1),
                              incidents=tuple(f"{kind}:{day}" for kind, day in INCIDENTS.items())))
    card = (data_dir() / "rate_cards" / "illustrative_usd.csv").read_text(encoding="utf-8")
    for old, new in (SMALL_TIER, NEXT_TIER):
        assert old in card
        card = card.replace(old, new)
    (out / "small_tiers.csv").write_text(card, encoding="utf-8")
    config = out / "convo.toml"
    text = config.read_text(encoding="utf-8")
    start = text.index("rate_card =")
    config.write_text(text[:start] + 'rate_card = "small_tiers.csv"' + text[text.index("\n", start):],
                      encoding="utf-8")
    settings = load(config)
    ingest(settings.lake, [out / "exports"])
    build(settings)
    return out


def rows(project: Path, sql: str, *params: object) -> list[tuple]:
    con = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("kind", KINDS)
def test_each_incident_fires_its_alert_on_its_day_and_scope(incidents: Path, kind: str) -> None:
    scope = SCOPES[kind]
    found = rows(incidents, """
        select severity from alerts
        where kind = ? and local_date = ? and phone_number_id is not distinct from ?
            and (?::varchar is null or market = ?) and (?::varchar is null or country_code = ?)
            and (?::varchar is null or category = ?)
    """, kind, INCIDENTS[kind], scope.phone_number_id, scope.market, scope.market, scope.country_code,
        scope.country_code, scope.category, scope.category)
    assert found, f"no {kind} alert on {INCIDENTS[kind]}"


def test_alerts_of_a_kind_fire_on_the_incident_day_only(incidents: Path) -> None:
    # the three rules that must not fire on ordinary traffic fire on their incident's day alone
    for kind in ("otp_pumping", "failure_spike"):
        days = {day for (day,) in rows(incidents, "select distinct local_date from alerts where kind = ?", kind)}
        assert days == {INCIDENTS[kind]}, kind
    days = {day for (day,) in rows(incidents, "select distinct local_date from alerts where kind = 'cost_spike'")}
    # the window_waste incident (marketing templates) is also a cost far above the baseline;
    # the tier_change one (300 utility templates, most past the tier at 0.00646 USD) stays
    # just under cost_spike_min_cost_micros (2 USD)
    assert days == {INCIDENTS["cost_spike"], INCIDENTS["window_waste"]}


def test_otp_pumping_counts_the_pumped_recipients(incidents: Path) -> None:
    found = rows(incidents, """
        select severity, severity_level, measure, observed_value, expected_value, tenant_id from alerts
        where kind = 'otp_pumping'
    """)
    # 40 Uzbek numbers, never served before (busiest earlier day: 0); cost_spike_severity 3
    assert found == [("critical", 3, "recipients", 40.0, 0.0, 1)]
    assert audience("otp_pumping", CONTACTS) == 40


def test_input_quality_share_is_the_truncated_half(incidents: Path) -> None:
    # every record of the day's file got a truncated copy: exactly half the day's records
    found = rows(incidents, """
        select local_date, measure, observed_value, expected_value, tenant_id, phone_number_id from alerts
        where kind = 'input_quality'
    """)
    assert found == [(INCIDENTS["input_quality"], "quarantined_share", 0.5, 0.0, None, None)]


def test_failure_spike_counts_the_bot_failures(incidents: Path) -> None:
    madrid = NUMBERS[2].phone_number_id
    (failed_131047, free_form), = rows(incidents, """
        select count(*) filter (where error_code = 131047), count(*) from messages
        where phone_number_id = ? and local_date = ? and direction = 'outbound' and not is_template
    """, madrid, INCIDENTS["failure_spike"])
    assert failed_131047 >= audience("failure_spike", CONTACTS) == 60
    found = rows(incidents, """
        select observed_value from alerts where kind = 'failure_spike' and measure = 'share_131047'
    """)
    assert found == [(failed_131047 / free_form,)]


def test_tier_change_names_the_tier_entered(incidents: Path) -> None:
    found = rows(incidents, """
        select local_date, market, category, measure, observed_value, expected_value, severity
        from alerts where kind = 'tier_change'
    """)
    assert found == [(INCIDENTS["tier_change"], "Brazil", "utility", "convo_tier", 151.0, 1.0, "info")]


def test_alert_keys_are_unique(incidents: Path) -> None:
    assert rows(incidents, "select count(*) = count(distinct alert_key) from alerts") == [(True,)]


def test_convo_alerts_lists_them_as_text_and_json(incidents: Path) -> None:
    runner = CliRunner()
    config = str(incidents / "convo.toml")
    result = runner.invoke(cli, ["alerts", "--config", config, "--since", "2026-09-25"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # (this fixture's rate card is not the one the simulator's Meta priced with, so
    # pricing_analytics costs disagree on many days: reconciliation_drift says so)
    since = rows(incidents, "select count(*) from alerts where local_date >= '2026-09-25'")[0][0]
    assert lines[-1] == f"{since} alert(s)" and len(lines) == since + 1
    agreeing, compared = rows(incidents, """
        select count(*) filter (where agrees), count(*) from pricing_reconciliation
        where phone_number_id = 104711550000202 and billing_date = '2026-09-25'
    """)[0]
    assert compared - agreeing >= audience("reconciliation_drift", CONTACTS)
    assert (f"2026-09-25 warning  reconciliation_drift tenant 1, number 104711550000202: {agreeing} of "
            f"{compared} messages carrying Meta's pricing object agree with convo's estimate "
            f"({100 * agreeing / compared:.1f}%, below 95%); most often: category") in lines
    result = runner.invoke(cli, ["alerts", "--config", config, "--json"])
    assert result.exit_code == 0, result.output
    parsed = [json.loads(line) for line in result.output.splitlines()]
    expected = rows(incidents, "select count(*) from alerts")[0][0]
    assert len(parsed) == expected
    assert {item["kind"] for item in parsed} == set(KINDS)


def test_nightly_fails_on_new_alerts_only(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    simulate(SimulateSettings(out=out, contacts=300, days=30, seed=3, start=date(2026, 9, 1),
                              incidents=("otp_pumping:2026-09-25",)))
    config = str(out / "convo.toml")
    runner = CliRunner()
    first = runner.invoke(cli, ["nightly", "--config", config, "--fail-on", "critical"])
    assert first.exit_code == ALERTS_FIRED_EXIT, first.output
    assert "new alerts: 1\n  2026-09-25 critical otp_pumping " in first.output
    # the same alert again the next night is not new: the run succeeds
    second = runner.invoke(cli, ["nightly", "--config", config, "--fail-on", "critical"])
    assert second.exit_code == 0, second.output
    assert "new alerts: 0\n" in second.output


def test_bad_incident_is_a_one_line_error(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["simulate", "--out", str(tmp_path / "x"), "--incident", "meteor:2026-09-02"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: --incident 'meteor:2026-09-02': expected KIND:YYYY-MM-DD with KIND one of cost_spike, "
        "otp_pumping, failure_spike, window_waste, tier_change, input_quality, reconciliation_drift")
    result = runner.invoke(cli, ["simulate", "--out", str(tmp_path / "x"), "--incident", "cost_spike:2027-01-01"])
    assert result.output.splitlines()[-1] == (
        "Error: --incident cost_spike:2027-01-01: 2027-01-01 is not one of the simulated days "
        "(2026-09-01 and 59 after)")
    with pytest.raises(ValueError):
        parse("cost_spike:tomorrow")
