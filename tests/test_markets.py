from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import phonenumbers
import pytest

from pipeline import markets
from pipeline.markets import (
    MarketMapError,
    calling_prefixes,
    country_for_bsuid,
    country_for_phone,
    load_market_map,
    market_for,
    register,
)

DAY = datetime.date(2025, 8, 15)
HEADER = "country_code,market,effective_from,effective_to\n"


def example_numbers() -> dict[str, str]:
    """E.164 example number of every region, by region."""
    return {
        region: phonenumbers.format_number(
            phonenumbers.example_number(region), phonenumbers.PhoneNumberFormat.E164,
        )
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    }


# --- country of a phone number (DOMAIN R22) ---------------------------------

@pytest.mark.parametrize(("phone", "country", "market"), [
    # DOMAIN R22: +1 809/829/849, 658/876 and 787/939 are Rest of Latin America.
    ("+18095551234", "DO", "Rest of Latin America"),
    ("+18295551234", "DO", "Rest of Latin America"),
    ("+18495551234", "DO", "Rest of Latin America"),
    ("+18765551234", "JM", "Rest of Latin America"),
    ("+16585551234", "JM", "Rest of Latin America"),
    ("+17875551234", "PR", "Rest of Latin America"),
    ("+19395551234", "PR", "Rest of Latin America"),
    # DOMAIN R22: the rest of +1 US/CA is North America.
    ("+12125551234", "US", "North America"),
    ("+14165551234", "CA", "North America"),
    ("+447400123456", "GB", "United Kingdom"),
    ("+441481256789", "GG", "United Kingdom"),
    ("+77012345678", "KZ", "Other"),
    ("+79123456789", "RU", "Russia"),
    ("+5511987654321", "BR", "Brazil"),
    ("+2348031234567", "NG", "Nigeria"),
])
def test_country_and_market_of_phone(phone: str, country: str, market: str) -> None:
    assert country_for_phone(phone) == country
    assert market_for(country, DAY) == market


def test_plus_is_optional() -> None:
    assert country_for_phone("18095551234") == "DO"
    assert country_for_phone("442079460000") == "GB"


@pytest.mark.parametrize("garbage", [
    "", "+", "abc", "+44 20 7946 0000", "+44-2079460000", "++442079460000",
    "0044207946000", "+1234567890123456", "٤٤٢٠٧٩٤٦٠٠٠٠", "44207946000x",
])
def test_garbage_phones_have_no_country(garbage: str) -> None:
    assert country_for_phone(garbage) is None


def test_example_number_of_every_region_gets_phonenumbers_region() -> None:
    for region, phone in example_numbers().items():
        expected = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
        assert country_for_phone(phone) == expected, (region, phone)


def test_calling_prefixes_are_unique_digits_and_known_regions() -> None:
    table = calling_prefixes()
    prefixes = table["prefix"].to_pylist()
    assert table.column_names == ["prefix", "country_code"]
    assert len(prefixes) == len(set(prefixes))
    assert all(prefix.isdigit() for prefix in prefixes)
    assert set(table["country_code"].to_pylist()) <= phonenumbers.SUPPORTED_REGIONS
    assert "1" in prefixes and "44" in prefixes and "800" not in prefixes  # +800 is non-geographic


# --- country of a bsuid -----------------------------------------------------
# DOMAIN R2: ISO country, a dot, up to 128 alphanumerics; R22: a contact known
# only by bsuid gets its country from the prefix.

@pytest.mark.parametrize(("bsuid", "country"), [
    ("US.13491208655302741918", "US"),   # DOMAIN R2's example
    ("BR.abcDEF123", "BR"),
    ("GB." + "a" * 128, "GB"),
    ("GB." + "a" * 129, None),           # more than 128 alphanumerics
    ("XX.13491208655302741918", None),   # not an ISO region
    ("us.13491208655302741918", None),   # country must be upper case
    ("US13491208655302741918", None),    # no dot
    ("US.", None),
    ("US.1349-1208", None),
    ("USA.1349", None),
    ("", None),
])
def test_country_for_bsuid(bsuid: str, country: str | None) -> None:
    assert country_for_bsuid(bsuid) == country


# --- the shipped market map (DOMAIN R22) ------------------------------------

def test_zimbabwe_moves_to_rest_of_africa_on_2025_10_01() -> None:
    # DOMAIN R22: the mapping changes over time, e.g. Zimbabwe.
    assert market_for("ZW", datetime.date(2025, 9, 30)) == "Other"
    assert market_for("ZW", datetime.date(2025, 10, 1)) == "Rest of Africa"


def test_every_region_has_exactly_one_market_on_any_day() -> None:
    # DOMAIN R22: no gaps, no overlaps, from 2020-01-01 on.
    rows = load_market_map().to_pylist()
    by_country: dict[str, list[dict]] = {}
    for row in rows:
        by_country.setdefault(row["country_code"], []).append(row)
    assert set(by_country) == phonenumbers.SUPPORTED_REGIONS
    for country, periods in by_country.items():
        periods.sort(key=lambda row: row["effective_from"])
        assert periods[0]["effective_from"] == datetime.date(2020, 1, 1), country
        assert periods[-1]["effective_to"] is None, country
        for earlier, later in zip(periods, periods[1:]):
            assert earlier["effective_to"] == later["effective_from"], country


def test_market_names_and_standalone_markets() -> None:
    table = load_market_map()
    assert set(table["market"].to_pylist()) <= set(markets.MARKETS)
    expected = {
        "AR": "Argentina", "DE": "Germany", "AE": "United Arab Emirates", "GB": "United Kingdom",
        "ZA": "South Africa", "US": "North America", "CA": "North America",
        "KE": "Rest of Africa", "AU": "Rest of Asia Pacific", "PL": "Rest of Central & Eastern Europe",
        "PT": "Rest of Western Europe", "BO": "Rest of Latin America", "JO": "Rest of Middle East",
    }
    assert {country: market_for(country, DAY) for country in expected} == expected


def test_unmapped_country_is_other(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(HEADER + "FR,France,2020-01-01,\n")
    table = load_market_map(path)
    assert market_for("FR", DAY, table) == "France"
    assert market_for("DE", DAY, table) == "Other"
    assert market_for("FR", datetime.date(2019, 12, 31), table) == "Other"


# --- market map validation --------------------------------------------------

@pytest.mark.parametrize(("content", "problem"), [
    ("country_code,market,effective_from\nFR,France,2020-01-01\n",
     ":1: the columns must be country_code,market,effective_from,effective_to[,confidence[,source]], got country_code,market,effective_from"),
    ("country_code,market,effective_from,effective_to,note\nFR,France,2020-01-01,,x\n",
     ":1: the columns must be country_code,market,effective_from,effective_to[,confidence[,source]], "
     "got country_code,market,effective_from,effective_to,note"),
    (HEADER + "FR,France,2020-01-01,\nDE,Germany,2020-13-01,\n",
     ":3: effective_from: not a date YYYY-MM-DD: '2020-13-01'"),
    (HEADER + "FR,France,01/01/2020,\n",
     ":2: effective_from: not a date YYYY-MM-DD: '01/01/2020'"),
    (HEADER + "FR,France,2021-01-01,2021-01-01\n",
     ":2: effective_to: 2021-01-01 is not after effective_from 2021-01-01"),
    (HEADER + "FR,Frankreich,2020-01-01,\n",
     ":2: market: unknown market 'Frankreich'"),
    (HEADER + "FR,France,2020-01-01,2024-01-01\nDE,Germany,2020-01-01,\nFR,Other,2023-06-01,\n",
     ":4: FR: its period overlaps the row on line 2"),
    (HEADER + "ZZ,Other,2020-01-01,\n",
     ":2: country_code: unknown country code 'ZZ' (not an ISO region of phonenumbers)"),
])
def test_bad_market_map_is_a_one_line_error(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "map.csv"
    path.write_text(content)
    with pytest.raises(MarketMapError) as error:
        load_market_map(path)
    assert str(error.value) == f"{path}{problem}"
    assert isinstance(error.value, ValueError)


def test_confidence_and_source_columns_are_optional_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("country_code,market,effective_from,effective_to,confidence,source\n"
                    "FR,France,2020-01-01,,high,Meta's page\nDE,Germany,2020-01-01,,,\n")
    table = load_market_map(path)
    assert table.select(["country_code", "confidence", "source"]).to_pylist() == [
        {"country_code": "DE", "confidence": None, "source": None},
        {"country_code": "FR", "confidence": "high", "source": "Meta's page"},
    ]
    path.write_text("country_code,market,effective_from,effective_to,confidence\nFR,France,2020-01-01,,sure\n")
    with pytest.raises(MarketMapError) as error:
        load_market_map(path)
    assert str(error.value) == f"{path}:2: confidence: must be empty or one of high, medium, low, got 'sure'"
    path.write_text("country_code,market,effective_from,effective_to,source\nFR,France,2020-01-01,,x\n")
    with pytest.raises(MarketMapError) as error:
        load_market_map(path)
    assert str(error.value) == f"{path}:1: the columns must be country_code,market,effective_from,effective_to[,confidence[,source]], got {HEADER.strip()},source"


def test_every_shipped_row_says_how_sure_it_is() -> None:
    rows = load_market_map().to_pylist()
    assert all(row["confidence"] in ("high", "medium", "low") and row["source"] for row in rows)
    # DOMAIN R22: the 2026 standalone markets, each from its first day
    new = {(row["country_code"], row["market"], row["effective_from"]) for row in rows
           if row["effective_from"] >= datetime.date(2026, 1, 1)}
    july, october = datetime.date(2026, 7, 1), datetime.date(2026, 10, 1)
    assert new == {
        ("HK", "Hong Kong", july), ("SG", "Singapore", july), ("HU", "Hungary", july), ("PL", "Poland", july),
        ("RO", "Romania", july), ("QA", "Qatar", july),
        ("BD", "Bangladesh", october), ("IQ", "Iraq", october), ("KZ", "Kazakhstan", october),
        ("KW", "Kuwait", october), ("MA", "Morocco", october), ("NP", "Nepal", october), ("OM", "Oman", october),
        ("LK", "Sri Lanka", october), ("UA", "Ukraine", october), ("EH", "Morocco", october),
    }
    for country, _, first_day in new:
        before = market_for(country, first_day - datetime.timedelta(days=1))
        assert before.startswith("Rest of ") or before == "Other", country


def test_missing_market_map_file_is_a_market_map_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    with pytest.raises(MarketMapError, match=r"absent\.csv: file not found$"):
        load_market_map(path)


def test_open_ended_row_overlaps_a_later_one(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(HEADER + "ZW,Other,2020-01-01,\nZW,Rest of Africa,2025-10-01,\n")
    with pytest.raises(MarketMapError, match=r":3: ZW: its period overlaps the row on line 2$"):
        load_market_map(path)


# --- DuckDB -----------------------------------------------------------------

LONGEST_PREFIX_SQL = """
    select numbers.digits, arg_max(prefixes.country_code, prefixes.prefix_length) as country_code
    from numbers
    cross join (select distinct prefix_length from ref_calling_prefixes) as lengths
    join ref_calling_prefixes as prefixes
        on prefixes.prefix_length = lengths.prefix_length
        and prefixes.prefix = left(numbers.digits, lengths.prefix_length)
    group by numbers.digits
"""


def test_duckdb_longest_prefix_join_agrees_with_python() -> None:
    con = duckdb.connect()
    register(con)
    phones = sorted(set(example_numbers().values()) | {"+18095551234", "+14165551234", "+77012345678"})
    con.execute("create table numbers (digits varchar)")
    con.executemany("insert into numbers values (?)", [[phone.removeprefix("+")] for phone in phones])
    found = dict(con.execute(LONGEST_PREFIX_SQL).fetchall())
    assert found == {phone.removeprefix("+"): country_for_phone(phone) for phone in phones}


def test_register_creates_typed_reference_tables(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(HEADER + "ZW,Other,2020-01-01,2025-10-01\nZW,Rest of Africa,2025-10-01,\n")
    con = duckdb.connect()
    register(con)
    register(con, path)  # replaces
    assert con.execute("describe ref_calling_prefixes").fetchall() == [
        ("prefix", "VARCHAR", "YES", None, None, None),
        ("prefix_length", "INTEGER", "YES", None, None, None),
        ("country_code", "VARCHAR", "YES", None, None, None),
    ]
    assert con.execute("""
        select market from ref_market_map
        where country_code = 'ZW'
            and effective_from <= date '2025-10-01'
            and (effective_to is null or date '2025-10-01' < effective_to)
    """).fetchall() == [("Rest of Africa",)]
    assert con.execute("select count(*) from ref_market_map").fetchone() == (2,)
    assert con.execute(
        "select count(*) from ref_calling_prefixes where prefix_length <> length(prefix)"
    ).fetchone() == (0,)
