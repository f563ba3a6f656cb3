"""The simulator's exports: formats, determinism, realism and --dirty, checked by
parsing the files it writes (independently of how it wrote them)."""

from __future__ import annotations

import csv
import tomllib
from collections import Counter, defaultdict
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import phonenumbers
import pytest

from pipeline import schema
from pipeline.simulate import SimulateSettings, SimulateSummary, simulate
from pipeline.simulate import meta as meta_module

DAY = 86400
MESSAGE_FIELDS = [
    "message_id", "tenant_id", "phone_number_id", "contact_bsuid", "contact_phone", "contact_name",
    "direction", "type", "template_name", "template_category", "status", "error_code", "timestamp",
    "delivered_at", "referral_source", "conversation_id", "pricing",
]
CONVERSATION_FIELDS = [
    "id", "tenant_id", "customer_id", "phone_number_id", "contact_phone", "contact_bsuid", "contact_name",
    "status", "ended_reason", "messages_count", "last_inbound_at", "last_outbound_at", "started_at", "ended_at",
]
SMALL = dict(contacts=90, days=45, seed=11)          # Sep 1 .. Oct 15 2026: regimes B and C


def seconds(value: str | int) -> int:
    if isinstance(value, int):
        return value
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, value
    return int(moment.timestamp())


def run(tmp: Path, **options: object) -> SimulateSummary:
    return simulate(SimulateSettings(out=tmp, **options))  # type: ignore[arg-type]


def message_lines(out: Path) -> list[tuple[str, bytes]]:
    return [(path.name, line) for path in sorted((out / "exports/messages").glob("*.jsonl"))
            for line in path.read_bytes().splitlines()]


def messages(out: Path) -> list[dict]:
    return [orjson.loads(line) for _, line in message_lines(out)]


def conversations(out: Path) -> list[dict]:
    records = []
    for path in sorted((out / "exports/conversations").glob("page-*.json")):
        records += orjson.loads(path.read_bytes())["data"]
    return records


def events(out: Path) -> list[dict]:
    return [orjson.loads(line) for line in (out / "exports/events/events.jsonl").read_bytes().splitlines()]


def thread_key(record: dict) -> tuple:
    return record["phone_number_id"], record["contact_bsuid"] or record["contact_phone"].lstrip("+")


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> SimulateSummary:
    return run(tmp_path_factory.mktemp("clean"), **SMALL)


@pytest.fixture(scope="module")
def clean_messages(clean: SimulateSummary) -> list[dict]:
    return messages(clean.out)


@pytest.fixture(scope="module")
def cutover(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Messages of a run across the bsuid cut-over of 2026-03-31 (DOMAIN R2)."""
    return messages(run(tmp_path_factory.mktemp("cutover"), contacts=80, days=25, start=date(2026, 3, 20)).out)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> SimulateSummary:
    return run(tmp_path_factory.mktemp("dirty"), dirty=True, **SMALL)


# --- settings, determinism, formats ------------------------------------------------------


def test_bad_settings_are_one_line_value_errors(tmp_path: Path) -> None:
    for options in ({"contacts": 0}, {"days": 0}, {"contacts": -5}):
        with pytest.raises(ValueError, match=r"^[^\n]+$"):
            run(tmp_path, **options)


def test_progress_counts_every_contact(tmp_path: Path) -> None:
    done: list[int] = []
    summary = simulate(SimulateSettings(out=tmp_path, contacts=7, days=3), progress=done.append)
    assert sum(done) == 7 and all(step > 0 for step in done)
    assert summary.messages == len(message_lines(tmp_path))


def test_same_seed_same_bytes_other_seed_other_bytes(clean: SimulateSummary, tmp_path: Path) -> None:
    again = run(tmp_path / "again", **SMALL)
    assert [path.relative_to(again.out) for path in again.files] == [
        path.relative_to(clean.out) for path in clean.files]
    for path in clean.files:
        assert path.read_bytes() == (again.out / path.relative_to(clean.out)).read_bytes(), path.name
    assert clean.config_path.read_bytes() == again.config_path.read_bytes()
    other = run(tmp_path / "other", **{**SMALL, "seed": 12})
    assert message_lines(other.out) != message_lines(clean.out)


def test_summary_counts_what_was_written(clean: SimulateSummary, clean_messages: list[dict]) -> None:
    assert clean.messages == len(clean_messages) > 2000
    assert clean.conversations == len(conversations(clean.out))
    assert clean.events == len(events(clean.out))
    assert clean.dirty == {}
    assert set(clean.files) == {path for path in clean.out.joinpath("exports").rglob("*") if path.is_file()}
    rows = list(csv.DictReader(open(clean.out / "exports/templates/templates.csv", encoding="utf-8")))
    assert clean.templates == len(rows)


def test_messages_have_design_fields_and_schema_values(clean: SimulateSummary, clean_messages: list[dict]) -> None:
    for name, line in message_lines(clean.out):
        record = orjson.loads(line)
        assert list(record) == MESSAGE_FIELDS
        assert name == f"messages-{datetime.fromtimestamp(seconds(record['timestamp']), timezone.utc).date()}.jsonl"
    ids = [record["message_id"] for record in clean_messages]
    assert len(ids) == len(set(ids)) and all(value.startswith("wamid.") for value in ids)
    for record in clean_messages:
        assert record["tenant_id"] == 1
        assert record["direction"] in schema.DIRECTIONS
        assert record["type"] in schema.MESSAGE_TYPES
        assert record["status"] in schema.STATUSES
        assert record["template_category"] in (*schema.TEMPLATE_CATEGORIES, None)
        assert record["referral_source"] in (*schema.REFERRAL_SOURCES, None)
        assert (record["type"] == "template") == (record["template_name"] is not None)
        if record["direction"] == "inbound":
            assert record["status"] == "received" and record["pricing"] is None
        pricing = record["pricing"]
        if pricing is not None:
            assert list(pricing) == ["billable", "pricing_model", "type", "category"]
            assert pricing["pricing_model"] in schema.PRICING_MODELS
            assert pricing["type"] in schema.PRICING_TYPES
            assert pricing["category"] in schema.PRICING_CATEGORIES


def test_timestamp_styles_are_all_valid_input(clean_messages: list[dict]) -> None:
    styles = Counter()
    for record in clean_messages:
        value = record["timestamp"]
        styles["unix" if isinstance(value, int) else "Z" if value.endswith("Z") else "offset"] += 1
        seconds(value)
    assert styles["Z"] > styles["offset"] > styles["unix"] > 0
    offsets = {record["timestamp"][-6:] for record in clean_messages
               if isinstance(record["timestamp"], str) and not record["timestamp"].endswith("Z")}
    # Kolkata (half hour), Madrid and New York in summer time, Sao Paulo
    assert {"+05:30", "+02:00", "-04:00", "-03:00"} <= offsets


def test_conversation_pages_and_events_parse(clean: SimulateSummary) -> None:
    pages = sorted((clean.out / "exports/conversations").glob("page-*.json"))
    for number, path in enumerate(pages, start=1):
        page = orjson.loads(path.read_bytes())
        assert list(page) == ["data", "page", "has_more"]
        assert page["page"] == number and page["has_more"] == (number < len(pages))
        assert len(page["data"]) <= 1000
        for record in page["data"]:
            assert list(record) == CONVERSATION_FIELDS
            assert record["status"] in schema.CONVERSATION_STATUSES
            assert record["ended_reason"] in (*schema.ENDED_REASONS, None)
    for event in events(clean.out):
        assert list(event) == ["id", "type", "created_at", "data"]
        assert event["type"] in schema.EVENT_TYPES
        assert list(event["data"]) == CONVERSATION_FIELDS


def test_config_matches_the_exports(clean: SimulateSummary, clean_messages: list[dict]) -> None:
    config = tomllib.loads(clean.config_path.read_text(encoding="utf-8"))
    assert config["paths"] == {"lake": "lake", "warehouse": "warehouse.duckdb", "reports": "reports_out"}
    assert config["lifecycle"] == {"inactive_after_minutes": 30}
    assert config["billing"]["rate_card"] == "meta_usd"
    assert config["billing"]["auth_international_eligible"] is False
    numbers = {item["phone_number_id"]: item for item in config["phone_numbers"]}
    assert {"Asia/Kolkata", "Europe/Madrid", "America/New_York", "America/Sao_Paulo"} == {
        item["timezone"] for item in numbers.values()}
    assert all(item["currency"] == "USD" and item["tenant_id"] == 1 for item in numbers.values())
    assert {record["phone_number_id"] for record in clean_messages} == set(numbers)


# --- realism ---------------------------------------------------------------------------


def test_contacts_from_many_countries_with_valid_numbers(clean_messages: list[dict], cutover: list[dict]) -> None:
    regions = Counter()
    area_codes: dict[str, set[str]] = defaultdict(set)
    for phone in {record["contact_phone"] for record in clean_messages + cutover if record["contact_phone"]}:
        parsed = phonenumbers.parse("+" + phone.lstrip("+"))
        assert phonenumbers.is_valid_number(parsed), phone
        region = phonenumbers.region_code_for_number(parsed)
        regions[region] += 1
        if parsed.country_code == 1:
            area_codes[region].add(str(parsed.national_number)[:3])
    countries = set(regions) | {record["contact_bsuid"].split(".")[0] for record in clean_messages
                                if record["contact_bsuid"]}       # bsuid-only contacts (DOMAIN R22)
    assert len(regions) >= 15 and len(countries) >= 25
    assert {"BR", "IN", "MX", "DE", "GB", "ES", "NG", "ZA", "KE", "PH", "PL", "US", "CA", "ZW", "DO", "JM", "PR"} <= countries
    assert area_codes["DO"] <= {"809", "829", "849"} and area_codes["DO"]
    assert area_codes["JM"] <= {"876", "658"} and area_codes["JM"]
    assert area_codes["PR"] <= {"787", "939"} and area_codes["PR"]
    for record in clean_messages:
        if record["contact_bsuid"] and record["contact_phone"]:
            region = phonenumbers.region_code_for_number(phonenumbers.parse("+" + record["contact_phone"].lstrip("+")))
            assert record["contact_bsuid"].split(".")[0] == region


def test_contact_names_include_hostile_text(clean_messages: list[dict], tmp_path: Path) -> None:
    names = {record["contact_name"] for record in clean_messages} | {
        record["contact_name"] for record in messages(run(tmp_path, contacts=400, days=2, seed=3).out)}
    assert None in names
    assert any(name and "<script>" in name for name in names)
    assert any(name and any(0x1F300 <= ord(char) <= 0x1FAFF for char in name) for name in names)
    assert any(name and any("\u0590" <= char <= "\u06ff" for char in name) for name in names)  # RTL
    assert any(name and '"' in name for name in names)


def test_each_contact_mostly_on_one_number_some_on_two(clean_messages: list[dict]) -> None:
    numbers_by_contact = defaultdict(set)
    for record in clean_messages:
        numbers_by_contact[record["contact_bsuid"] or record["contact_phone"]].add(record["phone_number_id"])
    sizes = Counter(len(numbers) for numbers in numbers_by_contact.values())
    assert sizes[1] > sizes[2] > 0 and set(sizes) <= {1, 2}


def test_phone_only_before_the_bsuid_cutover_then_stable_bsuids(cutover: list[dict]) -> None:
    # DOMAIN R2: before 2026-03-31 records carry only the phone.
    records = cutover
    cutover = int(datetime(2026, 3, 31, tzinfo=timezone.utc).timestamp())
    before = [record for record in records if seconds(record["timestamp"]) < cutover]
    after = [record for record in records if seconds(record["timestamp"]) >= cutover]
    assert before and after
    assert all(record["contact_bsuid"] is None and record["contact_phone"] for record in before)
    assert all(record["contact_bsuid"] for record in after)
    bsuid_only = sum(record["contact_phone"] is None for record in after)
    assert 0.1 < bsuid_only / len(after) < 0.5
    bsuids_of_phone = defaultdict(set)
    for record in after:
        if record["contact_phone"]:
            bsuids_of_phone[record["contact_phone"].lstrip("+")].add(record["contact_bsuid"])
    assert all(len(bsuids) == 1 for bsuids in bsuids_of_phone.values())
    phones_before = {record["contact_phone"].lstrip("+") for record in before}
    assert phones_before & set(bsuids_of_phone)          # the same people, now with bsuids


def test_failed_free_form_is_outside_the_window_and_never_priced(clean_messages: list[dict]) -> None:
    inbound = defaultdict(list)
    for record in clean_messages:
        if record["direction"] == "inbound":
            inbound[thread_key(record)].append(seconds(record["timestamp"]))
    failures = [record for record in clean_messages if record["error_code"] == 131047]
    assert len(failures) >= 10
    for record in failures:
        sent = seconds(record["timestamp"])
        assert record["status"] == "failed" and record["type"] != "template"
        assert record["pricing"] is None and record["delivered_at"] is None
        assert not any(sent - DAY < at <= sent for at in inbound[thread_key(record)])   # DOMAIN R6
    for record in clean_messages:
        if record["direction"] == "outbound" and record["type"] != "template" and record["status"] != "failed":
            sent = seconds(record["timestamp"])
            assert any(sent - DAY < at <= sent for at in inbound[thread_key(record)])


def test_pricing_on_every_delivered_outbound_and_nowhere_else(clean_messages: list[dict]) -> None:
    statuses = Counter()
    for record in clean_messages:
        statuses[record["status"], record["error_code"]] += 1
        delivered = record["status"] in ("delivered", "read")
        assert (record["pricing"] is not None) == delivered
        assert (record["delivered_at"] is not None) == delivered
        if delivered:
            assert 0 < seconds(record["delivered_at"]) - seconds(record["timestamp"]) < 7 * 3600
    assert statuses["read", None] > statuses["delivered", None] > statuses["sent", None] > 0
    assert statuses["failed", 131026] > 0


def test_delivery_time_decides_the_regime(clean_messages: list[dict]) -> None:
    # DOMAIN R21, R27: from local 2026-10-01 on, service messages are charged or free_tier.
    zones = {104711550000101: "America/Sao_Paulo", 104711550000202: "Asia/Kolkata",
             104711550000303: "Europe/Madrid", 104711550000404: "America/New_York"}
    seen = Counter()
    for record in clean_messages:
        if record["pricing"] is None or record["template_name"] is not None:
            continue
        delivered = datetime.fromtimestamp(seconds(record["delivered_at"]), ZoneInfo(zones[record["phone_number_id"]]))
        regime_c = delivered.date() >= date(2026, 10, 1)
        kind = record["pricing"]["type"]
        if kind == "free_entry_point":
            continue
        assert kind == ("free_tier" if regime_c else "free_customer_service"), record
        seen[regime_c] += 1
    assert seen[True] and seen[False]


def test_referral_arrivals_mostly_answered_within_24h(clean_messages: list[dict]) -> None:
    by_thread = defaultdict(list)
    for record in clean_messages:
        by_thread[thread_key(record)].append(record)
    arrivals = answered = 0
    for records in by_thread.values():
        records.sort(key=lambda record: seconds(record["timestamp"]))
        for position, record in enumerate(records):
            if record["referral_source"] is None:
                continue
            assert record["direction"] == "inbound"
            arrivals += 1
            at = seconds(record["timestamp"])
            answered += any(later["direction"] == "outbound" and later["delivered_at"]
                            and seconds(later["delivered_at"]) - at < DAY for later in records[position + 1:])
    assert arrivals >= 10 and answered / arrivals > 0.7
    sources = {record["referral_source"] for record in clean_messages}
    assert {"ad", "page_cta"} <= sources
    assert any(record["pricing"] and record["pricing"]["type"] == "free_entry_point" for record in clean_messages)


def test_templates_of_every_category_and_a_recategorised_one(clean: SimulateSummary,
                                                             clean_messages: list[dict]) -> None:
    rows = list(csv.DictReader(open(clean.out / "exports/templates/templates.csv", encoding="utf-8")))
    versions = defaultdict(set)
    for row in rows:
        versions[row["name"]].add((row["updated_at"], row["category"]))
    changed = {name: sorted(found) for name, found in versions.items() if len({c for _, c in found}) > 1}
    assert len(changed) == 1
    (name, ((_, old), (switch, new))), = changed.items()
    switch_at = seconds(switch)
    sent = [(seconds(record["timestamp"]), record["template_category"])
            for record in clean_messages if record["template_name"] == name]
    assert {category for at, category in sent if at < switch_at} == {old}
    assert {category for at, category in sent if at >= switch_at} == {new}
    categories = Counter(record["template_category"] for record in clean_messages if record["template_name"])
    assert categories["marketing"] > categories["utility"] > categories["authentication"] > 0


def test_utility_templates_inside_and_outside_the_window(clean_messages: list[dict]) -> None:
    types = Counter(record["pricing"]["type"] for record in clean_messages
                    if record["pricing"] and record["template_category"] == "utility"
                    and seconds(record["delivered_at"]) < int(datetime(2026, 9, 30).timestamp()))
    assert types["free_customer_service"] > 0 and types["regular"] > 0


def test_lifecycle_records_agree_with_messages_and_events(clean: SimulateSummary,
                                                          clean_messages: list[dict]) -> None:
    records = {record["id"]: record for record in conversations(clean.out)}
    end = int(datetime(2026, 10, 16, tzinfo=timezone.utc).timestamp())
    counted = Counter(record["conversation_id"] for record in clean_messages
                      if record["conversation_id"] is not None and record["status"] != "failed")
    assert set(counted) == set(records)
    reasons = Counter()
    for conversation_id, record in records.items():
        assert record["messages_count"] == counted[conversation_id]
        reasons[record["ended_reason"]] += 1
        last = max(seconds(value) for value in (record["last_inbound_at"], record["last_outbound_at"]) if value)
        if record["status"] == "ended":
            assert record["ended_at"] is not None
            if record["ended_reason"] == "timeout":
                assert seconds(record["ended_at"]) == last + DAY      # DOMAIN R8
            else:
                assert last <= seconds(record["ended_at"]) < last + DAY
        else:
            assert record["ended_at"] is None and end - last < DAY
            assert record["status"] == ("inactive" if end - last >= 30 * 60 else "active")
    assert reasons["timeout"] and reasons["agent_close"] and reasons["manual_close"]
    kinds = Counter((event["type"], event["data"]["id"]) for event in events(clean.out))
    for conversation_id, record in records.items():
        assert kinds["whatsapp.conversation.created", conversation_id] == 1
        assert kinds["whatsapp.conversation.ended", conversation_id] == (record["status"] == "ended")
    assert sum(1 for kind, _ in kinds if kind == "whatsapp.conversation.inactive") > 0


def test_users_reopen_after_a_close(clean: SimulateSummary) -> None:
    # DOMAIN R9: an inbound message after a close opens a new conversation.
    by_thread = defaultdict(list)
    for record in conversations(clean.out):
        by_thread[record["phone_number_id"], record["contact_bsuid"] or record["contact_phone"]].append(record)
    reopens = 0
    for records in by_thread.values():
        records.sort(key=lambda record: record["started_at"])
        for before, after in zip(records, records[1:]):
            if before["ended_reason"] in ("agent_close", "manual_close") and after["last_inbound_at"]:
                reopens += seconds(after["started_at"]) - seconds(before["ended_at"]) < 6 * 3600
    assert reopens > 0


def test_regime_c_free_tier_is_the_earliest_per_number_and_month(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # DOMAIN R21, with the allowance shrunk so a small run crosses it.
    monkeypatch.setattr(meta_module, "REGIME_C_SERVICE_FREE_TIER", 40)
    records = messages(run(tmp_path, **SMALL).out)
    service = defaultdict(list)
    for record in records:
        pricing = record["pricing"]
        if pricing and pricing["category"] == "service" and pricing["type"] in ("free_tier", "regular"):
            service[record["phone_number_id"]].append(
                (seconds(record["delivered_at"]), int(record["message_id"][6:], 16), pricing["type"]))
    assert len(service) == 4
    for units in service.values():
        units.sort()
        assert len(units) > 40
        assert [kind for _, _, kind in units] == ["free_tier"] * 40 + ["regular"] * (len(units) - 40)


# --- dirty ------------------------------------------------------------------------------------


def _classify(name: str, line: bytes, clean_by_id: dict[str, dict]) -> str | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "malformed_json"
    if any(field not in record for field in ("message_id", "direction", "timestamp", "phone_number_id")):
        return "missing_required_field"
    try:
        at = seconds(record["timestamp"])
    except (ValueError, AssertionError):
        return "bad_timestamp"
    if (record["direction"] not in schema.DIRECTIONS or record["status"] not in schema.STATUSES
            or record["template_category"] not in (*schema.TEMPLATE_CATEGORIES, None)):
        return "unknown_enum"
    phone = record["contact_phone"]
    if phone is not None:
        try:
            phonenumbers.parse("+" + phone.lstrip("+"))
        except phonenumbers.NumberParseException:
            return "unparseable_phone"
    clean = clean_by_id.get(record["message_id"])
    assert clean is not None, record
    if record != clean:
        assert record["status"] == "sent" and clean["status"] in ("delivered", "read")
        return "duplicate_status_update"
    if name != f"messages-{datetime.fromtimestamp(at, timezone.utc).date()}.jsonl":
        return "files_out_of_order"
    return None


def test_dirty_counts_match_the_lines_written(clean: SimulateSummary, dirty: SimulateSummary) -> None:
    clean_lines = Counter(line for _, line in message_lines(clean.out))
    clean_by_id = {orjson.loads(line)["message_id"]: orjson.loads(line) for line in clean_lines}
    found = Counter()
    seen: Counter[bytes] = Counter()
    for name, line in message_lines(dirty.out):
        kind = _classify(name, line, clean_by_id)
        if kind is None and seen[line]:
            kind = "exact_duplicate"
        seen[line] += 1
        if kind is not None:
            found[kind] += 1
    pages = Counter(record["id"] for record in conversations(dirty.out))
    found["conversations_duplicate_record"] = sum(count - 1 for count in pages.values())
    event_lines = (dirty.out / "exports/events/events.jsonl").read_bytes().splitlines()
    parsed = Counter()
    for line in event_lines:
        try:
            parsed[orjson.loads(line)["id"]] += 1
        except orjson.JSONDecodeError:
            found["events_malformed_json"] += 1
    found["events_exact_duplicate"] = sum(count - 1 for count in parsed.values())
    expected = {kind: count for kind, count in found.items() if count}
    assert dirty.dirty == expected
    assert set(dirty.dirty) >= {
        "duplicate_status_update", "exact_duplicate", "malformed_json", "missing_required_field",
        "bad_timestamp", "unknown_enum", "unparseable_phone", "files_out_of_order"}
    assert dirty.messages == clean.messages and dirty.conversations == clean.conversations


def test_clean_records_are_all_in_the_dirty_run(clean: SimulateSummary, dirty: SimulateSummary) -> None:
    clean_lines = Counter(line for _, line in message_lines(clean.out))
    dirty_lines = Counter(line for _, line in message_lines(dirty.out))
    assert not clean_lines - dirty_lines
    assert {record["id"]: record for record in conversations(clean.out)} == {
        record["id"]: record for record in conversations(dirty.out)}


def test_dirty_file_times_are_not_in_date_order(dirty: SimulateSummary) -> None:
    files = sorted((dirty.out / "exports/messages").glob("*.jsonl"))
    times = [path.stat().st_mtime for path in files]
    assert times != sorted(times)


def test_fast_message_lines_equal_orjson_of_the_records(tmp_path: Path) -> None:
    # writer.MessageRecords.line builds JSON from parts for speed: it must be orjson's bytes.
    from pipeline.simulate.meta import FreeAllowances
    from pipeline.simulate.run import _Run
    from pipeline.simulate.world import NUMBERS
    from pipeline.simulate.writer import MessageRecords

    simulation = _Run(SimulateSettings(out=tmp_path, contacts=60, days=40, start=date(2026, 3, 10)))
    allowances = FreeAllowances.counting()
    compared = 0
    for index in range(60):
        contact, threads = simulation.contact(index)
        simulation.price(contact, threads, allowances)
        for persona, number_index, msgs in threads:
            records = MessageRecords(NUMBERS[number_index], persona, contact.name)
            for msg in msgs:
                if msg.close is None:
                    assert records.line(msg) == orjson.dumps(records.record(msg), option=orjson.OPT_APPEND_NEWLINE)
                    compared += 1
    assert compared > 1000


def test_phone_numbers_are_valid_and_unique_per_slot() -> None:
    from pipeline.simulate.world import COUNTRIES, MAX_CONTACTS, phone_number

    for country in COUNTRIES:
        slots = range(0, 2 * MAX_CONTACTS, 2 * MAX_CONTACTS // 150)
        for slot in slots:
            parsed = phonenumbers.parse(phone_number(country, slot, seed=7))
            assert phonenumbers.is_valid_number(parsed), (country.iso, slot)
            assert phonenumbers.region_code_for_number(parsed) == country.iso
    smallest = min(COUNTRIES, key=lambda country: sum(10 ** digits for _, digits, _ in country.blocks))
    numbers = {phone_number(smallest, slot, seed=7) for slot in range(30_000)}
    assert len(numbers) == 30_000
