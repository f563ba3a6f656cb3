"""Headline numbers of a built warehouse, for `convo demo`."""

from __future__ import annotations

from pathlib import Path

import duckdb


def headline(warehouse: Path) -> list[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        messages, contacts, countries, markets, first, last = con.execute("""
            select count(*), count(distinct contact_key), count(distinct country_code),
                count(distinct market), min(local_date), max(local_date)
            from messages
        """).fetchall()[0]
        delivered, failed_window = con.execute("""
            select count(*) filter (where direction = 'outbound' and is_delivered),
                count(*) filter (where error_code = 131047)
            from messages
        """).fetchall()[0]
        top = con.execute("""
            select market, count(*) as outbound from messages
            where direction = 'outbound' and is_delivered
            group by market order by outbound desc, market limit 3
        """).fetchall()
        quarantined = con.execute("select count(*) from quarantine").fetchall()[0][0]
    finally:
        con.close()
    lines = [
        f"{messages:,} messages from {contacts:,} contacts in {countries} countries "
        f"({markets} Meta markets), {first} to {last}",
        f"{delivered:,} outbound messages delivered; {failed_window:,} free-form sends "
        "failed outside the 24 h window (131047)",
        "busiest markets: " + ", ".join(f"{market} ({count:,})" for market, count in top),
        f"{quarantined:,} input records quarantined (see the quarantine table)",
    ]
    return lines
