from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.config import ConfigError, default_memory_limit, load, memory_bytes
from tests.helpers import CONFIG


def test_loads_numbers_and_resolves_paths_against_the_file(project: Path) -> None:
    settings = load(project / "convo.toml")
    assert settings.lake == project.resolve() / "lake"
    assert settings.warehouse == project.resolve() / "warehouse.duckdb"
    assert [p.timezone for p in settings.phone_numbers] == ["America/Sao_Paulo", "Asia/Kolkata"]
    assert settings.inactive_after_minutes == 30
    assert settings.billing.rate_card.name == "illustrative_usd.csv"
    assert settings.api is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[lifecycle]\ninactive_minutes = 5\n", "lifecycle.inactive_minutes: unknown key"),
        ("[lifecycle]\ninactive_after_minutes = 0\n", "lifecycle.inactive_after_minutes: must be an integer"),
        ("[billing]\nbusiness_country = \"Brazil\"\n", "billing.business_country: must be an ISO 3166"),
        ("[billing]\nassume_service_allowance = \"yes\"\n",
         "billing.assume_service_allowance: must be true or false, got 'yes'"),
        ("[billing]\nassume_service_allowance = 1\n", "billing.assume_service_allowance: must be true or false, got 1"),
        ("[api]\nbase_url = \"ftp://x\"\n", "api.base_url: must be an http(s) URL"),
        ("colour = 1\n", "colour: unknown key"),
        ("[build]\nmemory_limit = \"lots\"\n", "build.memory_limit: must be a size like \"8GB\""),
        ("[build]\nmemory_limit = 8\n", "build.memory_limit: must be a size like \"8GB\""),
        ("[build]\nthreads = 2\n", "build.threads: unknown key"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    # Top-level keys must precede the [[phone_numbers]] tables in TOML.
    text = extra + CONFIG if not extra.startswith("[") else CONFIG + extra
    (tmp_path / "convo.toml").write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(tmp_path / "convo.toml")


def test_unknown_timezone(tmp_path: Path) -> None:
    (tmp_path / "convo.toml").write_text(CONFIG.replace("Asia/Kolkata", "Mars/Olympus"))
    with pytest.raises(ConfigError, match=r"phone_numbers\[1\]\.timezone: unknown IANA timezone 'Mars/Olympus'"):
        load(tmp_path / "convo.toml")


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "nope.toml")
    (tmp_path / "convo.toml").write_text("[paths\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path / "convo.toml")


def test_duplicate_phone_number(tmp_path: Path) -> None:
    (tmp_path / "convo.toml").write_text(CONFIG.replace("555000002", "555000001"))
    with pytest.raises(ConfigError, match="phone_number_id 555000001 appears twice"):
        load(tmp_path / "convo.toml")


def test_display_phone_number_is_optional_and_kept_as_digits(tmp_path: Path) -> None:
    text = CONFIG.replace('currency = "USD"\n', 'currency = "USD"\ndisplay_phone_number = "+1 5550001111"\n', 1)
    (tmp_path / "convo.toml").write_text(text)
    numbers = load(tmp_path / "convo.toml").phone_numbers
    assert [n.display_phone_number for n in numbers] == ["15550001111", None]
    (tmp_path / "convo.toml").write_text(text.replace("+1 5550001111", "call us"))
    with pytest.raises(ConfigError, match=r"phone_numbers\[0\]\.display_phone_number: must be an E\.164"):
        load(tmp_path / "convo.toml")


def test_build_memory_limit_defaults_to_6500mb_or_less(project: Path, tmp_path: Path) -> None:
    assert load(project / "convo.toml").build.memory_limit is None
    assert default_memory_limit().endswith("MB") and 0 < int(default_memory_limit()[:-2]) <= 6500
    (tmp_path / "convo.toml").write_text(CONFIG + "[build]\nmemory_limit = \"512 MB\"\n")
    assert load(tmp_path / "convo.toml").build.memory_limit == "512MB"


def test_memory_sizes_are_read_exactly_as_duckdb_counts_them() -> None:
    # Shards are sized from the exact limit: DuckDB reads 6500MB back as "6.0 GiB", which
    # made the 10M bench lake (9,992,411 messages) two shards instead of one.
    assert memory_bytes("6500MB") == 6_500_000_000
    assert memory_bytes("6.5 GB") == 6_500_000_000
    assert memory_bytes("8GiB") == 8 * 2**30
    assert memory_bytes("512 kib") == 512 * 2**10
    assert memory_bytes("1TB") == 10**12
    with pytest.raises(ValueError, match="not a memory size: 'lots'"):
        memory_bytes("lots")


def test_assume_service_allowance_is_optional_true_or_false(project: Path, tmp_path: Path) -> None:
    # Unset: None, so pricing follows data/pricing_policy.csv's assume_unconfirmed_allowance (DOMAIN R21).
    assert load(project / "convo.toml").billing.assume_service_allowance is None
    for text, expected in (("true", True), ("false", False)):
        (tmp_path / "convo.toml").write_text(CONFIG + f"[billing]\nassume_service_allowance = {text}\n")
        assert load(tmp_path / "convo.toml").billing.assume_service_allowance is expected
