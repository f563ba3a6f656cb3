"""Close rates and response times: who ends the conversations, how fast a human answers.

Figures come from conversation_outcomes and close_rates_daily, over the conversations
that started in the period (local days of each business number): the month given by
``convo report --month``, else the newest RECENT_DAYS local days. Open conversations
waiting for an answer are listed whatever day they started. Definitions (close rate,
waits, automated replies, p90) are those of the two models' header comments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb

from pipeline import charts
from pipeline.report_types import Report, ReportContext, number

# Without --month the page covers this many local days up to the newest one, so that
# the first morning of a month does not show one day alone.
RECENT_DAYS = 30
# Open conversations listed, longest wait first.
SLOWEST_OPEN = 10
# close_rates_daily's bucket columns, fastest first, with the labels that
# conversation_outcomes.first_response_bucket gives them.
BUCKETS = (
    ("first_response_0_1h", "0-1h"),
    ("first_response_1_4h", "1-4h"),
    ("first_response_4_8h", "4-8h"),
    ("first_response_8_24h", "8-24h"),
    ("first_response_over_24h", "over 24h"),
)
NEVER_ANSWERED = "no human reply"
ALL = "all"                      # the key of the figures over every conversation
MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def duration(seconds: float | None) -> str:
    """42 s, 7m 03s, 2h 05m, 3d 04h (rounded to the second); – when there is none."""
    if seconds is None:
        return "–"
    total = round(seconds)
    if total < MINUTE:
        return f"{total} s"
    if total < HOUR:
        return f"{total // MINUTE}m {total % MINUTE:02d}s"
    if total < DAY:
        return f"{total // HOUR}h {total % HOUR // MINUTE:02d}m"
    return f"{total // DAY}d {total % DAY // HOUR:02d}h"


def percent(ratio: float | None) -> str:
    return "–" if ratio is None else f"{100 * ratio:.1f}%"


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @property
    def text(self) -> str:
        return f"{self.first} to {self.last}"


@dataclass(frozen=True)
class Figures:
    """The headline figures of a set of conversations (all of the period, or one number's)."""

    conversations: int
    engaged: int
    agent_closes: int
    manual_closes: int
    still_open: int
    close_rate: float | None
    first_responses: int
    unanswered: int
    first_response_median: float | None
    first_response_p90: float | None
    first_response_mean: float | None
    exchanges: int
    reply_median: float | None
    reply_p90: float | None
    reply_mean: float | None
    reopens: int
    # the same in business hours ([[phone_numbers]] business_hours; None without them)
    first_response_business_median: float | None = None
    reply_business_median: float | None = None


@dataclass(frozen=True)
class Kpi:
    key: str
    value: str                   # as shown
    raw: str                     # the warehouse's figure (data-value), '' when none
    label: str


@dataclass(frozen=True)
class NumberRow:
    phone_number_id: int
    number: str                  # the business number as configured, else its id
    timezone: str
    conversations: str
    engaged: str
    agent_closes: str
    manual_closes: str
    still_open: str
    close_rate: str
    first_response_median: str
    first_response_p90: str
    first_response_mean: str
    reply_median: str
    reply_p90: str
    unanswered: str
    reopens: str


@dataclass(frozen=True)
class OpenRow:
    contact: str                 # masked unless --show-phones
    number: str
    status: str
    started_at: str
    waiting_since: str
    waiting: str
    first_response: str
    messages: str


# The figures of the conversations started in [first, last], per `group` (a column of
# conversation_outcomes) or overall; the close rate as close_rates_daily defines it.
_FIGURES = """
    with outcomes as (
        select * from conversation_outcomes where local_start_date between $first and $last
    ),
    conversation_figures as (
        select
            {group} as grouping_key,
            count(*) as conversations,
            count(*) filter (where inbound_count > 0) as engaged,
            count(*) filter (where inbound_count > 0 and ended_reason = 'agent_close') as agent_closes,
            count(*) filter (where inbound_count > 0 and ended_reason = 'manual_close') as manual_closes,
            count(*) filter (where inbound_count > 0 and ended_reason is null) as still_open,
            count(first_response_seconds) as first_responses,
            count(*) filter (where inbound_count > 0 and first_response_seconds is null) as unanswered,
            quantile_cont(first_response_seconds, 0.5) as first_response_median,
            quantile_cont(first_response_seconds, 0.9) as first_response_p90,
            avg(first_response_seconds) as first_response_mean,
            count(*) filter (where is_reopen) as reopens,
            quantile_cont(first_response_business_seconds, 0.5) as first_response_business_median
        from outcomes
        group by grouping_key
    ),
    business_reply_figures as (
        select grouping_key, quantile_cont(reply_business_seconds, 0.5) as reply_business_median
        from (select {group} as grouping_key, unnest(reply_business_seconds) as reply_business_seconds
              from outcomes)
        group by grouping_key
    ),
    reply_figures as (
        select
            grouping_key,
            count(*) as exchanges,
            quantile_cont(reply_seconds, 0.5) as reply_median,
            quantile_cont(reply_seconds, 0.9) as reply_p90,
            avg(reply_seconds) as reply_mean
        from (select {group} as grouping_key, unnest(reply_seconds) as reply_seconds from outcomes)
        group by grouping_key
    )
    select
        conversation_figures.grouping_key,
        conversations, engaged, agent_closes, manual_closes, still_open,
        (agent_closes + manual_closes) / nullif(engaged, 0) as close_rate,
        first_responses, unanswered, first_response_median, first_response_p90, first_response_mean,
        coalesce(exchanges, 0) as exchanges, reply_median, reply_p90, reply_mean,
        reopens, first_response_business_median, reply_business_median
    from conversation_figures
    left join reply_figures using (grouping_key)
    left join business_reply_figures using (grouping_key)
    order by conversation_figures.grouping_key
"""


def figures(con: duckdb.DuckDBPyConnection, period: Period, group: str | None = None) -> dict[Any, Figures]:
    """Figures of the period's conversations, keyed by `group`'s value (None: one key, ALL)."""
    sql = _FIGURES.format(group=group or f"'{ALL}'")
    rows = con.execute(sql, {"first": period.first, "last": period.last}).fetchall()
    return {row[0]: Figures(*row[1:]) for row in rows}


def period_of(con: duckdb.DuckDBPyConnection, month: str | None) -> Period | None:
    if month is not None:
        first = date.fromisoformat(month + "-01")
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        return Period(first, following - timedelta(days=1))
    newest = con.execute("select max(local_date) from close_rates_daily").fetchall()[0][0]
    if newest is None:
        return None
    return Period(newest - timedelta(days=RECENT_DAYS - 1), newest)


def _raw(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def _kpis(total: Figures) -> list[Kpi]:
    return [
        Kpi("conversations", number(total.conversations), _raw(total.conversations),
            f"conversations started, {number(total.engaged)} with a message from the contact"),
        Kpi("close_rate", percent(total.close_rate), _raw(total.close_rate),
            f"closed by an operator ({number(total.agent_closes)} by the agent, "
            f"{number(total.manual_closes)} by hand; {number(total.still_open)} still open)"),
        Kpi("first_response_median", duration(total.first_response_median), _raw(total.first_response_median),
            f"median first response, over {number(total.first_responses)} answered"),
        Kpi("first_response_p90", duration(total.first_response_p90), _raw(total.first_response_p90),
            "p90 first response (9 in 10 answered faster)"),
        Kpi("first_response_mean", duration(total.first_response_mean), _raw(total.first_response_mean),
            "mean first response"),
        Kpi("reply_median", duration(total.reply_median), _raw(total.reply_median),
            f"median reply, over {number(total.exchanges)} exchanges"),
        Kpi("reply_p90", duration(total.reply_p90), _raw(total.reply_p90), "p90 reply"),
        Kpi("unanswered", number(total.unanswered), _raw(total.unanswered),
            "conversations where the contact wrote and no human answered"),
        Kpi("reopens", number(total.reopens), _raw(total.reopens), "reopened after an operator's close"),
        *([Kpi("first_response_business_median", duration(total.first_response_business_median),
               _raw(total.first_response_business_median), "median first response in business hours"),
           Kpi("reply_business_median", duration(total.reply_business_median), _raw(total.reply_business_median),
               "median reply in business hours")]
          if total.first_response_business_median is not None else []),
    ]


def _daily_chart(con: duckdb.DuckDBPyConnection, period: Period) -> charts.ColumnChart:
    daily = con.execute("""
        select
            local_date,
            sum(engaged_agent_closes) / sum(engaged_conversations),
            sum(engaged_manual_closes) / sum(engaged_conversations),
            sum(engaged_still_open) / sum(engaged_conversations)
        from close_rates_daily
        where local_date between ? and ? and engaged_conversations > 0
        group by local_date
        order by local_date
    """, [period.first, period.last]).fetchall()
    return charts.column_chart(
        "Closed by an operator, % of the engaged conversations started each local day",
        [str(day) for day, *_ in daily],
        {
            "agent close": [100 * agent for _, agent, _, _ in daily],
            "manual close": [100 * manual for _, _, manual, _ in daily],
            "still open": [100 * still_open for _, _, _, still_open in daily],
        },
        fmt="{:.1f}%",
    )


def _bucket_chart(con: duckdb.DuckDBPyConnection, period: Period) -> charts.BarChart:
    sums = ", ".join(f"coalesce(sum({column}), 0)" for column, _ in BUCKETS)
    counts = con.execute(f"""
        select {sums}, coalesce(sum(unanswered), 0)
        from close_rates_daily where local_date between ? and ?
    """, [period.first, period.last]).fetchall()[0]
    labels = [label for _, label in BUCKETS] + [NEVER_ANSWERED]
    total = sum(counts)
    rows = [(label, count, f"{count:,} ({percent(count / total if total else None)})")
            for label, count in zip(labels, counts)]
    return charts.bar_chart("First response: conversations by time to the first human reply", rows)


def _numbers(con: duckdb.DuckDBPyConnection, period: Period) -> list[NumberRow]:
    names = {
        phone_number_id: (display or str(phone_number_id), timezone)
        for phone_number_id, display, timezone in con.execute(
            "select phone_number_id, display_phone_number, timezone from phone_numbers").fetchall()
    }
    rows = []
    for phone_number_id, figure in figures(con, period, "phone_number_id").items():
        display, timezone = names.get(phone_number_id, (str(phone_number_id), "UTC"))
        rows.append(NumberRow(
            phone_number_id=phone_number_id, number=display, timezone=timezone,
            conversations=number(figure.conversations), engaged=number(figure.engaged),
            agent_closes=number(figure.agent_closes), manual_closes=number(figure.manual_closes),
            still_open=number(figure.still_open), close_rate=percent(figure.close_rate),
            first_response_median=duration(figure.first_response_median),
            first_response_p90=duration(figure.first_response_p90),
            first_response_mean=duration(figure.first_response_mean),
            reply_median=duration(figure.reply_median), reply_p90=duration(figure.reply_p90),
            unanswered=number(figure.unanswered), reopens=number(figure.reopens),
        ))
    return rows


def _slowest_open(ctx: ReportContext) -> list[OpenRow]:
    rows = ctx.con.execute("""
        select
            outcomes.contact_key,
            coalesce(numbers.display_phone_number, cast(outcomes.phone_number_id as varchar)),
            outcomes.status,
            outcomes.started_at,
            outcomes.awaiting_reply_since_at,
            outcomes.awaiting_reply_seconds,
            outcomes.first_response_seconds,
            outcomes.messages_count
        from conversation_outcomes as outcomes
        left join phone_numbers as numbers using (phone_number_id)
        where outcomes.ended_reason is null and outcomes.awaiting_reply_since_at is not null
        order by outcomes.awaiting_reply_seconds desc, outcomes.conversation_id
        limit ?
    """, [SLOWEST_OPEN]).fetchall()
    return [
        OpenRow(contact=ctx.mask(contact), number=display, status=status,
                started_at=_utc(started_at), waiting_since=_utc(since), waiting=duration(waiting),
                first_response=duration(first_response) if first_response is not None else "none yet",
                messages=number(messages))
        for contact, display, status, started_at, since, waiting, first_response, messages in rows
    ]


def _utc(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _policy(con: duckdb.DuckDBPyConnection, key: str) -> float | int | None:
    """The value of a data/policy.csv key in force at the build's newest data."""
    row = con.execute("""
        select value from ref_policy
        where key = ? and effective_from <= (select max(local_date) from close_rates_daily)
        order by effective_from desc limit 1
    """, [key]).fetchall()
    return row[0][0] if row else None


def outcomes(ctx: ReportContext) -> dict[str, Any]:
    con = ctx.con
    period = period_of(con, ctx.month)
    empty = Period(date.min, date.min)
    total = figures(con, period or empty).get(ALL)
    automated = _policy(con, "automated_reply_max_seconds")
    return {
        "period": period.text if period else "no conversation yet",
        "kpis": _kpis(total) if total else [],
        "daily": _daily_chart(con, period or empty),
        "buckets": _bucket_chart(con, period or empty),
        "numbers": _numbers(con, period or empty),
        "slowest": _slowest_open(ctx),
        "automated_text": "–" if automated is None else f"{automated:g} s",
        "slowest_limit": SLOWEST_OPEN,
        "conversations": total.conversations if total else 0,
        "close_rate": total.close_rate if total else None,
        "first_response_median": total.first_response_median if total else None,
    }


def _summary(data: dict[str, Any]) -> str:
    return (f"{data['conversations']:,} conversations, {percent(data['close_rate'])} closed by an operator, "
            f"median first response {duration(data['first_response_median'])}")


REPORT = Report(name="outcomes", title="Close rates and response times", template="outcomes.html",
                build=outcomes, summary=_summary, needs=("conversation_outcomes", "close_rates_daily"))
