"""`convo window` (DOMAIN R6) from a real warehouse: exact output, exit codes, one-line
errors, and agreement with the stored in_service_window macro."""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.window import answer, ask
from tests.helpers import CONFIG, SAO_PAULO, T0, inbound, outbound, warehouse

UTC = timezone.utc
H = timedelta(hours=1)
PHONE = "+5511900001111"

MESSAGES = [
    # DOMAIN R2: phone-only first, then seen with its bsuid: one contact key, BR.win.
    inbound("w1", PHONE, T0),
    outbound("w2", PHONE, T0 + H, contact_bsuid="BR.win"),
    inbound("w3", PHONE, T0 + 10 * H, contact_bsuid="BR.win"),
    # Only templates, never a reply.
    outbound("t1", "BR.silent", T0, template="promo"),
    # The newest message in the lake: the warehouse's as-of is T0 + 30 h.
    inbound("z1", "BR.late", T0 + 30 * H),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("window")
    warehouse(folder, MESSAGES).close()
    return folder


def run(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["window", "--config", str(root / "convo.toml"), *args],
                                catch_exceptions=False)
    return result.exit_code, result.output


def test_open_window_by_default_at_the_as_of(root: Path) -> None:
    # No --at: the warehouse's as-of (T0 + 30 h = 2026-09-02 18:00 UTC). BR.win's last
    # inbound at T0 + 10 h keeps the window open until T0 + 34 h (DOMAIN R4, R6).
    assert run(root, "--phone-number-id", str(SAO_PAULO), "--contact", "BR.win") == (0, (
        "free-form to BR.win on 555000001 at 2026-09-02 18:00:00 UTC: allowed\n"
        "  window opened 2026-09-01 12:00:00 UTC, last inbound 2026-09-01 22:00:00 UTC, "
        "open until 2026-09-02 22:00:00 UTC (2026-09-02 19:00 America/Sao_Paulo)\n"
    ))


def test_a_phone_resolves_to_its_contact_key_and_a_moment_inside_the_window(root: Path) -> None:
    # At T0 + 2 h only w1 (T0) is behind us: open until T0 + 24 h as seen then, and
    # the inbound message at T0 + 10 h later extended it (R4).
    assert run(root, "--phone-number-id", str(SAO_PAULO), "--contact", "+55 11 90000-1111",
               "--at", "2026-09-01T14:00:00Z") == (0, (
        "free-form to BR.win (+55 11 90000-1111) on 555000001 at 2026-09-01 14:00:00 UTC: allowed\n"
        "  window opened 2026-09-01 12:00:00 UTC, last inbound 2026-09-01 12:00:00 UTC, "
        "open until 2026-09-02 12:00:00 UTC (2026-09-02 09:00 America/Sao_Paulo)\n"
        "  later inbound messages kept it open until 2026-09-02 22:00:00 UTC (2026-09-02 19:00 America/Sao_Paulo)\n"
    ))


def test_closed_window_exits_zero_with_the_last_inbound(root: Path) -> None:
    # Exactly 24 h after the last inbound message: closed ((t - 24 h, t] excludes it, R6).
    assert run(root, "--phone-number-id", str(SAO_PAULO), "--contact", "BR.win",
               "--at", "2026-09-02T22:00:00Z") == (0, (
        "free-form to BR.win on 555000001 at 2026-09-02 22:00:00 UTC: not allowed (templates only)\n"
        "  last inbound 2026-09-01 22:00:00 UTC; the window expired 2026-09-02 22:00:00 UTC "
        "(2026-09-02 19:00 America/Sao_Paulo)\n"
        "  note: the warehouse knows messages up to 2026-09-02 18:00:00 UTC (rebuild with `convo build`)\n"
    ))


def test_contact_who_never_wrote(root: Path) -> None:
    assert run(root, "--phone-number-id", str(SAO_PAULO), "--contact", "BR.silent") == (0, (
        "free-form to BR.silent on 555000001 at 2026-09-02 18:00:00 UTC: not allowed (templates only)\n"
        "  no inbound message from this contact on this number yet\n"
    ))


@pytest.mark.parametrize(("args", "error"), [
    (["--phone-number-id", "555000002", "--contact", "BR.win"],
     "Error: unknown phone_number_id 555000002: the warehouse has no message on it"),
    (["--phone-number-id", str(SAO_PAULO), "--contact", "BR.nobody"],
     "Error: unknown contact BR.nobody on phone_number_id 555000001: the warehouse has no message between them"),
    (["--phone-number-id", str(SAO_PAULO), "--contact", "call me"],
     "Error: --contact must be a bsuid (like BR.1a2b3c) or a phone number (like +5511987654321), got 'call me'"),
    (["--phone-number-id", str(SAO_PAULO), "--contact", "BR.win", "--at", "yesterday"],
     "Error: Invalid value: not an ISO 8601 timestamp: 'yesterday'"),
])
def test_user_errors_are_one_line(root: Path, args: list[str], error: str) -> None:
    code, output = run(root, *args)
    assert code != 0
    assert output.strip().splitlines()[-1] == error


def test_missing_warehouse_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "convo.toml").write_text(CONFIG)
    code, output = run(tmp_path, "--phone-number-id", str(SAO_PAULO), "--contact", "BR.win")
    assert (code, output) == (1, f"Error: no warehouse at {tmp_path / 'warehouse.duckdb'}: run `convo build` first\n")


def test_macro_and_command_agree(root: Path) -> None:
    # The stored macro (notebooks) and `convo window` answer R6 the same, every hour
    # and at every boundary instant (and one microsecond either side).
    database = root / "warehouse.duckdb"
    edges = [T0, T0 + 10 * H, T0 + 24 * H, T0 + 34 * H, T0 + 30 * H, T0 + 54 * H]
    moments = [T0 - H + step * H for step in range(60)]
    moments += [edge + delta for edge in edges for delta in (-timedelta(microseconds=1), timedelta(0),
                                                             timedelta(microseconds=1))]
    assert answer(database, SAO_PAULO, "BR.win", T0).is_open
    with duckdb.connect(str(database), read_only=True) as con:
        for contact in ("BR.win", "BR.silent", "BR.late"):
            commands = [ask(con, SAO_PAULO, contact, moment).is_open for moment in moments]
            macro = [con.execute("select in_service_window(?, ?, ?)", [SAO_PAULO, contact, moment]).fetchone()[0]
                     for moment in moments]
            assert commands == macro
            assert any(commands) == (contact != "BR.silent")
