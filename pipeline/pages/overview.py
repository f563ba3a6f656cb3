"""Messages and input quality: volumes by day and market, rejected input by reason."""

from __future__ import annotations

from typing import Any

from pipeline import charts
from pipeline.report_types import Report, ReportContext, bar_rows, number


def overview(ctx: ReportContext) -> dict[str, Any]:
    con = ctx.con
    messages, contacts, countries, inbound, delivered, failed_window = con.execute("""
        select count(*), count(distinct contact_key), count(distinct country_code),
            count(*) filter (where direction = 'inbound'),
            count(*) filter (where direction = 'outbound' and is_delivered),
            count(*) filter (where error_code = 131047)
        from messages
    """).fetchall()[0]
    daily = con.execute("""
        select local_date,
            count(*) filter (where direction = 'inbound') as inbound,
            count(*) filter (where direction = 'outbound') as outbound
        from messages group by local_date order by local_date
    """).fetchall()
    markets = con.execute("""
        select market, count(*) as delivered from messages
        where direction = 'outbound' and is_delivered
        group by market order by delivered desc, market limit 12
    """).fetchall()
    quarantine = con.execute("""
        select dataset, reason, coalesce(detail, ''), count(*) from quarantine
        group by all order by 4 desc, 1, 2, 3
    """).fetchall()
    recent = _recent_contacts(con, RECENT_CONTACTS)
    return {
        "kpis": [
            {"key": "messages", "value": number(messages), "label": "messages"},
            {"key": "contacts", "value": number(contacts), "label": f"contacts in {countries} countries"},
            {"key": "inbound", "value": number(inbound), "label": "inbound messages"},
            {"key": "delivered", "value": number(delivered), "label": "outbound messages delivered"},
            {"key": "failed_window", "value": number(failed_window),
             "label": "free-form sends failed outside the window (131047)"},
        ],
        "daily": charts.column_chart(
            "Messages per local day", [str(day) for day, _, _ in daily],
            {"inbound": [row[1] for row in daily], "outbound": [row[2] for row in daily]}),
        "markets": charts.bar_chart("Delivered outbound messages by market", bar_rows(markets)),
        "quarantine": [{"dataset": d, "reason": r, "detail": f, "records": number(n)} for d, r, f, n in quarantine],
        "contacts": [{"contact": ctx.mask(key), "name": name or "", "country": country or "",
                      "market": market or "", "messages": number(n)} for key, name, country, market, n in recent],
        "messages": messages,
    }


RECENT_CONTACTS = 10     # the contacts who wrote or were written to last, in the table


def _recent_contacts(con: Any, count: int) -> list[tuple]:
    """The `count` contacts with the latest messages (latest first, ties by key): name, country,
    market and messages of each.

    Grouping every message by contact would read the whole table for ten rows. If at
    least `count` contacts have a message at or after some instant, the last `count`
    contacts all do, and their last message is after it: the contacts are found among the
    messages after it, then only their messages are counted. The instant is the send time
    of the n-th latest message, n growing tenfold until it holds (or every message).
    """
    total = con.execute("select count(*) from messages").fetchall()[0][0]
    latest = 10 * count
    while True:
        since = con.execute("select min(sent_at) from (select sent_at from messages order by sent_at desc limit ?)",
                            [latest]).fetchall()[0][0]
        contacts = con.execute("select count(distinct contact_key) from messages where sent_at >= ?",
                               [since]).fetchall()[0][0]
        if contacts >= count or latest >= total:
            break
        latest *= 10
    window = "sent_at >= ?" if latest < total else "true"
    return con.execute(f"""
        with last_contacts as (
            select contact_key from messages
            where {window}
            group by contact_key order by max(sent_at) desc, contact_key limit ?
        )
        select messages.contact_key, arg_max(contact_name, sent_at), any_value(country_code), any_value(market),
            count(*)
        from messages
        semi join last_contacts
            on last_contacts.contact_key is not distinct from messages.contact_key
        group by messages.contact_key order by max(sent_at) desc, messages.contact_key limit ?
    """, ([since] if latest < total else []) + [count, count]).fetchall()


REPORT = Report(name="overview", title="Messages and input quality", template="overview.html", build=overview,
                summary=lambda data: f"{data['messages']:,} messages; rejected input by reason",
                needs=("messages", "quarantine"))
