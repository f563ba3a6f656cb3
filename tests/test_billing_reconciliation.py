"""Reconciliation with Meta's own numbers (DOMAIN R26): the pricing object on each
message (pricing_reconciliation) and the pricing_analytics data points
(analytics_reconciliation), with their lines in the build output."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from pipeline.ingest import ingest
from tests.helpers import Thread, build_threads, local, project

UTC = timezone.utc


def pricing(model: str, kind: str, category: str, billable: bool) -> dict[str, object]:
    return {"pricing": {"billable": billable, "pricing_model": model, "type": kind, "category": category}}


def test_pricing_objects_are_compared_message_by_message(tmp_path: Path) -> None:
    thread = Thread("rec", "+5511966660001")
    thread.template(local("2025-06-10 10:00"), "marketing", **pricing("CBP", "regular", "marketing", True))
    thread.user(local("2025-06-10 11:00"))
    # absorbed into the marketing conversation: Meta labels it with that conversation
    thread.text(local("2025-06-10 11:05"), **pricing("CBP", "regular", "marketing", True))
    # PMP: a utility template in the window is free; this pricing object says otherwise
    thread.user(local("2025-08-10 11:00"))
    thread.template(local("2025-08-10 11:30"), "utility", **pricing("PMP", "regular", "utility", True))
    # never delivered: not billed, not in the agreement rate
    thread.template(local("2025-08-11 11:30"), "marketing", status="sent",
                    **pricing("PMP", "regular", "marketing", True))
    con, summary = build_threads(project(tmp_path), [thread], tmp_path)
    assert con.execute(
        "select message_id, is_delivered, unit, estimated_pricing_model, estimated_category, estimated_pricing_type, "
        "estimated_billable, agrees, disagreement from pricing_reconciliation order by message_id").fetchall() == [
        ("rec-01", True, "conversation", "CBP", "marketing", "regular", True, True, ""),
        ("rec-03", True, "conversation", "CBP", "marketing", "regular", True, True, ""),
        ("rec-05", True, "message", "PMP", "utility", "free_customer_service", False, False, "pricing_type, billable"),
        ("rec-06", False, None, None, None, None, None, False, "pricing_model, category, pricing_type, billable"),
    ]
    lines = [line for line in summary.checks if line.startswith(("pricing:", "  differs"))]
    assert lines == [
        "pricing: Meta's pricing object agrees on 2 of 3 delivered messages (66.67%)",
        "  differs in pricing_type, billable: ours PMP/utility/free_customer_service vs Meta PMP/utility/regular: "
        "1 messages (e.g. rec-05)",
    ]


def test_pricing_analytics_are_compared_per_day_country_category_and_type(tmp_path: Path) -> None:
    settings = project(tmp_path)
    day = local("2025-08-12 00:00")                  # local midnight, Sao Paulo
    sale = Thread("sale", "+5511955550001")
    sale.template(local("2025-08-12 09:00"), "marketing")
    sale.user(local("2025-08-12 10:00"))
    sale.text(local("2025-08-12 10:05"))
    india = Thread("india", "+919800000001")
    india.template(local("2025-08-13 09:00"), "marketing")
    analytics = tmp_path / "exports" / "pricing_analytics.csv"
    analytics.parent.mkdir(parents=True)
    start, end = int(day.timestamp()), int(day.timestamp()) + 86_400
    analytics.write_text(
        "start,end,phone_number,country,pricing_type,pricing_category,tier,volume,cost\n"
        f"{start},{end},5511900000001,BR,REGULAR,MARKETING,,1,0.05\n"                    # agrees
        f"{start},{end},5511900000001,BR,FREE_CUSTOMER_SERVICE,SERVICE,,2,0\n"           # one more than ours
        f"{start},{end},5511900000001,BR,REGULAR,UTILITY,1:2,1,0.01\n"                   # only Meta's
        f"{start},{end},5511999999999,BR,REGULAR,MARKETING,,4,0.2\n"                     # a number we don't know
        f"{start + 86_400},{end + 86_400},5511900000001,IN,REGULAR,MARKETING,,1,0.0101\n"  # 1% off: within tolerance
    )
    ingest(settings.lake, [analytics])
    con, summary = build_threads(settings, [sale, india], tmp_path)
    assert con.execute(
        "select billing_date, phone_number_id, country_code, category, pricing_type, units, meta_volume, "
        "cost_micros, meta_cost_micros, status, is_beyond_tolerance from analytics_reconciliation "
        "order by billing_date, phone_number_id nulls last, country_code, category").fetchall() == [
        (datetime(2025, 8, 12).date(), 555000001, "BR", "marketing", "regular", 1, 1, 50_000, 50_000, "matched", False),
        (datetime(2025, 8, 12).date(), 555000001, "BR", "service", "free_customer_service", 1, 2, 0, 0, "matched", True),
        (datetime(2025, 8, 12).date(), 555000001, "BR", "utility", "regular", 0, 1, 0, 10_000, "only_meta", True),
        (datetime(2025, 8, 12).date(), None, "BR", "marketing", "regular", 0, 4, 0, 200_000,
         "unknown_phone_number", True),
        (datetime(2025, 8, 13).date(), 555000001, "IN", "marketing", "regular", 1, 1, 10_000, 10_100, "matched", False),
    ]
    assert ("pricing analytics: 3 of 5 day x number x country x category x type rows beyond tolerance; "
            "volume ours 3 vs Meta 9, cost ours 0.06 vs Meta 0.27 (1 rows name a phone number without "
            "display_phone_number in convo.toml)") in summary.checks
