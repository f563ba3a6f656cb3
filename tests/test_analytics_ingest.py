"""Meta's analytics responses as Meta returns them (DOMAIN R26): pricing_analytics with any
dimension set and granularity, and conversation_analytics for the CBP years.

The responses below are written in Meta's shape (WhatsApp Business Management API,
/work/shared/META_FACTS.md section 4) with values of our own.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.ingest import ingest
from pipeline.readers import InputError
from tests.helpers import rows

UTC = timezone.utc
# 2025-07-01 00:00 in America/Los_Angeles (a WABA in Pacific time), and the days after it
JULY_1 = 1751353200
DAY = 86_400

PRICING_COLUMNS = ("waba_id, dimensions, granularity, start_at, end_at, phone_number, country_code, "
                   "pricing_category, pricing_type, tier, tier_lower, tier_upper, volume, cost_micros")


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# requested with dimensions(PRICING_CATEGORY,PRICING_TYPE,TIER,COUNTRY): no PHONE, so every point is
# the whole WABA's; free messages have no tier; Meta's trailing paging object.
PRICING_RESPONSE = {
    "pricing_analytics": {
        "data": [{"data_points": [
            {"start": JULY_1, "end": JULY_1 + DAY, "country": "MX", "pricing_type": "FREE_CUSTOMER_SERVICE",
             "pricing_category": "SERVICE", "volume": 5, "cost": 0},
            {"start": JULY_1, "end": JULY_1 + DAY, "country": "MX", "tier": "0:500000", "pricing_type": "REGULAR",
             "pricing_category": "AUTHENTICATION_INTERNATIONAL", "volume": 3, "cost": 0.0915},
            {"start": JULY_1, "end": JULY_1 + DAY, "country": "CA", "tier": "0:MAX", "pricing_type": "REGULAR",
             "pricing_category": "MARKETING", "volume": 2, "cost": 0.05},
            {"start": JULY_1 + DAY, "end": JULY_1 + 2 * DAY, "country": "CA", "tier": "0:MAX",
             "pricing_type": "REGULAR", "pricing_category": "MARKETING_LITE", "volume": 4, "cost": 0.1},
            {"start": JULY_1 + DAY, "end": JULY_1 + 2 * DAY, "country": "CA", "pricing_type": "FREE_ENTRY_POINT",
             "pricing_category": "REFERRAL_CONVERSION", "volume": 1, "cost": 0},
            {"start": JULY_1 + DAY, "end": JULY_1 + 2 * DAY, "country": "CA", "tier": "3:7",
             "pricing_type": "REGULAR", "pricing_category": "UTILITY", "volume": 2, "cost": 0.0068},
        ]}],
        "paging": {"cursors": {"before": "QkVGT1JF", "after": "QUZURVI="}},
    },
    "id": "987650001",
}

# conversation_analytics, MONTHLY, dimensions CONVERSATION_CATEGORY, CONVERSATION_TYPE, COUNTRY, PHONE;
# one point with a direction Meta adds unasked; written with the comma Meta's own example leaves
# after its last member.
CONVERSATION_RESPONSE = """{
  "conversation_analytics": {
    "data": [
      {
        "data_points": [
          {"start": 1717225200, "end": 1719817200, "conversation": 12, "phone_number": "15550007777",
           "country": "CA", "conversation_type": "REGULAR", "conversation_direction": "UNKNOWN",
           "conversation_category": "AUTHENTICATION", "cost": 0.162},
          {"start": 1717225200, "end": 1719817200, "conversation": 40, "phone_number": "15550007777",
           "country": "CA", "conversation_type": "REGULAR", "conversation_category": "MARKETING", "cost": 1},
          {"start": 1717225200, "end": 1719817200, "conversation": 9, "phone_number": "15550007777",
           "country": "CA", "conversation_type": "FREE_TIER", "conversation_category": "SERVICE", "cost": 0},
          {"start": 1717225200, "end": 1719817200, "conversation": 2, "phone_number": "15550007777",
           "country": "CA", "conversation_type": "FREE_ENTRY_POINT", "conversation_category": "SERVICE",
           "cost": 0}
        ]
      }
    ]
  },
  "id": "987650001",
}
"""


def test_meta_s_pricing_analytics_response_without_the_phone_dimension(tmp_path: Path) -> None:
    path = tmp_path / "pricing.json"
    path.write_text(json.dumps(PRICING_RESPONSE, indent=2))
    summary = ingest(tmp_path / "lake", [path])
    assert [(f.dataset, f.format, f.read, f.accepted, f.quarantined) for f in summary.files] == [
        ("pricing_analytics", "json", 6, 6, 0)]
    dims = "COUNTRY,PRICING_CATEGORY,PRICING_TYPE"
    first, second, third = at(JULY_1), at(JULY_1 + DAY), at(JULY_1 + 2 * DAY)
    order = "start_at, country_code, pricing_category"
    assert rows(tmp_path / "lake", "pricing_analytics", PRICING_COLUMNS, order) == [
        ("987650001", dims, "DAILY", first, second, "", "CA", "marketing", "regular", "0:MAX", 0, None, 2, 50_000),
        ("987650001", dims, "DAILY", first, second, "", "MX", "authentication_international", "regular",
         "0:500000", 0, 500_000, 3, 91_500),
        ("987650001", dims, "DAILY", first, second, "", "MX", "service", "free_customer_service", "", None, None, 5, 0),
        ("987650001", dims, "DAILY", second, third, "", "CA", "marketing_lite", "regular", "0:MAX", 0, None, 4,
         100_000),
        ("987650001", dims, "DAILY", second, third, "", "CA", "referral_conversion", "free_entry_point", "",
         None, None, 1, 0),
        ("987650001", dims, "DAILY", second, third, "", "CA", "utility", "regular", "3:7", 3, 7, 2, 6_800),
    ]
    # the same file again changes nothing
    assert ingest(tmp_path / "lake", [path]).total("duplicates") == 6


def test_meta_s_conversation_analytics_response_with_its_trailing_comma(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    path.write_text(CONVERSATION_RESPONSE)
    summary = ingest(tmp_path / "lake", [path])
    assert [(f.dataset, f.format, f.read, f.accepted, f.quarantined) for f in summary.files] == [
        ("conversation_analytics", "json", 4, 4, 0)]
    june, july = at(1717225200), at(1719817200)      # 2024-06-01 and 2024-07-01, 00:00 Pacific
    dims = "PHONE,COUNTRY,CONVERSATION_CATEGORY,CONVERSATION_TYPE"
    assert rows(tmp_path / "lake", "conversation_analytics",
                "waba_id, dimensions, granularity, start_at, end_at, phone_number, country_code, "
                "conversation_category, conversation_type, conversation_direction, conversations, cost_micros",
                "conversation_category, conversation_type") == [
        ("987650001", dims, "MONTHLY", june, july, "15550007777", "CA", "authentication", "regular", "unknown",
         12, 162_000),
        ("987650001", dims, "MONTHLY", june, july, "15550007777", "CA", "marketing", "regular", "", 40, 1_000_000),
        ("987650001", dims, "MONTHLY", june, july, "15550007777", "CA", "service", "free_entry_point", "", 2, 0),
        ("987650001", dims, "MONTHLY", june, july, "15550007777", "CA", "service", "free_tier", "", 9, 0),
    ]


DIMENSIONS = {"PHONE": ("phone_number", "15550007777"), "COUNTRY": ("country", "CA"),
              "PRICING_CATEGORY": ("pricing_category", "UTILITY"), "PRICING_TYPE": ("pricing_type", "REGULAR"),
              "TIER": ("tier", "0:MAX")}


def test_every_dimension_subset_is_read_and_a_missing_dimension_is_all(tmp_path: Path) -> None:
    files, expected = [], []
    subsets = [subset for size in range(len(DIMENSIONS) + 1) for subset in itertools.combinations(DIMENSIONS, size)]
    assert len(subsets) == 32
    for index, subset in enumerate(subsets):
        point = {"start": JULY_1 + index * DAY, "end": JULY_1 + (index + 1) * DAY, "volume": index + 1}
        point.update({DIMENSIONS[name][0]: DIMENSIONS[name][1] for name in subset})
        path = tmp_path / "in" / f"subset-{index:02d}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({"pricing_analytics": {"data": [{"data_points": [point]}]}, "id": "w1"}))
        files.append(path)
        expected.append((
            ",".join(name for name in DIMENSIONS if name in subset and name != "TIER"),
            "15550007777" if "PHONE" in subset else "", "CA" if "COUNTRY" in subset else "",
            "utility" if "PRICING_CATEGORY" in subset else "", "regular" if "PRICING_TYPE" in subset else "",
            "0:MAX" if "TIER" in subset else "", index + 1, None))
    summary = ingest(tmp_path / "lake", [tmp_path / "in"])
    assert {f.dataset for f in summary.files} == {"pricing_analytics"}
    assert (summary.total("read"), summary.total("accepted"), summary.total("quarantined")) == (32, 32, 0)
    assert rows(tmp_path / "lake", "pricing_analytics",
                "dimensions, phone_number, country_code, pricing_category, pricing_type, tier, volume, cost_micros",
                "start_at") == expected


def test_each_granularity_is_told_by_the_period(tmp_path: Path) -> None:
    march_8 = 1741420800                    # 2025-03-09 00:00 in Los Angeles is 08:00 UTC; the day has 23 hours
    points = [
        {"start": JULY_1, "end": JULY_1 + 1800, "country": "US", "volume": 1},                 # HALF_HOUR
        {"start": JULY_1 + 1800, "end": JULY_1 + 3600, "country": "US", "volume": 2},
        {"start": march_8 + DAY, "end": march_8 + 2 * DAY - 3600, "country": "US", "volume": 3},   # DAILY, 23 h
        {"start": JULY_1, "end": JULY_1 + DAY, "country": "CA", "volume": 4},                  # DAILY
        {"start": JULY_1, "end": JULY_1 + 31 * DAY, "country": "MX", "volume": 5},             # MONTHLY
    ]
    path = tmp_path / "analytics.json"
    path.write_text(json.dumps({"pricing_analytics": {"data": [{"data_points": points}]}, "id": "w1"}))
    ingest(tmp_path / "lake", [path])
    assert rows(tmp_path / "lake", "pricing_analytics", "granularity, volume", "volume") == [
        ("HALF_HOUR", 1), ("HALF_HOUR", 2), ("DAILY", 3), ("DAILY", 4), ("MONTHLY", 5)]


def test_no_cost_is_volume_only_and_unknown_categories_are_kept(tmp_path: Path) -> None:
    # A WABA on a partner's credit line: no COST in any point. A category Meta adds later is
    # kept (and counted as one convo does not price); a malformed one is quarantined.
    path = tmp_path / "credit_line.json"
    path.write_text(json.dumps({"pricing_analytics": {"data": [{"data_points": [
        {"start": JULY_1, "end": JULY_1 + DAY, "country": "US", "pricing_type": "REGULAR",
         "pricing_category": "MARKETING", "volume": 7},
        {"start": JULY_1, "end": JULY_1 + DAY, "country": "US", "pricing_type": "REGULAR",
         "pricing_category": "BUSINESS_AGENT_TOKENS", "volume": 2},
        {"start": JULY_1, "end": JULY_1 + DAY, "country": "US", "pricing_type": "REGULAR",
         "pricing_category": "??", "volume": 1},
        {"start": JULY_1, "end": JULY_1 + DAY, "country": "US", "pricing_type": "REGULAR",
         "pricing_category": "UTILITY", "tier": "ten:twenty", "volume": 1},
        {"start": JULY_1, "end": JULY_1, "country": "US", "volume": 1},
    ]}]}, "id": "w1"}))
    summary = ingest(tmp_path / "lake", [path])
    assert (summary.total("accepted"), summary.total("quarantined")) == (2, 3)
    assert rows(tmp_path / "lake", "pricing_analytics", "pricing_category, volume, cost_micros", "1") == [
        ("business_agent_tokens", 2, None), ("marketing", 7, None)]
    assert sorted(rows(tmp_path / "lake", "quarantine", "reason, detail")) == [
        ("bad_value", "end"), ("bad_value", "pricing_category"), ("bad_value", "tier")]


def test_the_pages_of_a_paged_response_in_one_file(tmp_path: Path) -> None:
    # The pages of one request (followed by paging.next), saved as a JSON array; each page's id
    # names its WABA. Pages saved as separate files are read like any two files.
    def page(volume: int, after: str | None) -> dict:
        paging: dict = {"cursors": {"before": "QQ==", "after": after or "Qg=="}}
        if after:
            paging["next"] = f"https://graph.facebook.com/v24.0/987650001?fields=pricing_analytics&after={after}"
        return {"pricing_analytics": {"data": [{"data_points": [
            {"start": JULY_1 + volume * DAY, "end": JULY_1 + (volume + 1) * DAY, "volume": volume}]}],
            "paging": paging}, "id": "987650001"}

    path = tmp_path / "pages.json"
    path.write_text(json.dumps([page(1, "Qg=="), page(2, None)]))
    summary = ingest(tmp_path / "lake", [path])
    assert [(f.dataset, f.accepted, f.quarantined) for f in summary.files] == [("pricing_analytics", 2, 0)]
    assert rows(tmp_path / "lake", "pricing_analytics", "waba_id, dimensions, volume", "volume") == [
        ("987650001", "", 1), ("987650001", "", 2)]


def test_an_analytics_response_that_is_not_json_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"pricing_analytics": {"data": [{"data_points": [{"start": 1,]}')
    with pytest.raises(InputError, match=r"broken\.json: not valid JSON"):
        ingest(tmp_path / "lake", [path])
