"""Money reports: the monthly bill (with month-over-month change and a month-end
forecast for the running month), wasted spend, and reconciliation with Meta.

Money stays integer micro-units until here: it is rounded once, for display."""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

import duckdb

from pipeline import charts, paths
from pipeline.report_types import Report, ReportContext, number

MICROS = 1_000_000


def money(micros: int | float | None, currency: str = "USD") -> str:
    if micros is None:
        return "–"
    return f"{currency} {micros / MICROS:,.2f}"


def change(current: int | None, previous: int | None) -> str:
    if not previous:
        return "new" if current else "–"
    return f"{(current or 0) / previous * 100 - 100:+.1f}%"


def _month(ctx: ReportContext) -> tuple[date | None, date | None]:
    """The month shown (--month or the newest billing month) and the month before."""
    months = [row[0] for row in ctx.con.execute(
        "select distinct billing_month from costs_monthly order by 1").fetchall()]
    if not months:
        return None, None
    chosen = date.fromisoformat(f"{ctx.month}-01") if ctx.month else months[-1]
    earlier = [m for m in months if m < chosen]
    return chosen, earlier[-1] if earlier else None


def pricing_sources(con: duckdb.DuckDBPyConnection) -> list[str]:
    """What share of the bill was priced from sourced rates and what from illustrative
    ones: the lines `convo build` prints (sql/summaries/pricing_sources.sql, one
    derivation for both); none for a warehouse built before the rate card kept them."""
    body = (paths.sql_dir() / "summaries" / "pricing_sources.sql").read_text(encoding="utf-8")
    try:
        return [line for (line,) in con.execute(f"select line from ({body.strip().rstrip(';')})").fetchall()]
    except duckdb.Error:
        return []


def allowance_assumptions(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Per month priced under a free allowance Meta has not confirmed (DOMAIN R21), which
    assumption priced it (int_bill_assumptions); none for an older warehouse."""
    try:
        rows = con.execute("select billing_month, category, is_free_allowance_applied, free_allowance, "
                           "free_allowance_per, free_tier_units, charged_units from int_bill_assumptions "
                           "order by billing_month, category").fetchall()
    except duckdb.Error:
        return []
    holder = {"phone_number_month": "phone number", "waba_month": "WABA"}
    return [f"{month:%Y-%m}: {category} priced {'assuming' if applied else 'without'} the unconfirmed "
            f"{allowance:,} free per {holder.get(per, per)} and month (DOMAIN R21): {number(free)} free, "
            f"{number(charged)} charged; [billing] assume_service_allowance switches it"
            for month, category, applied, allowance, per, free, charged in rows]


def costs(ctx: ReportContext) -> dict[str, Any]:
    con = ctx.con
    month, previous = _month(ctx)
    currency = (con.execute("select min(currency) from costs_monthly").fetchall()[0][0]) or "USD"
    def breakdown(column: str) -> list[dict[str, str]]:
        rows = con.execute(f"""
            select {column} as label,
                coalesce(sum(cost_micros) filter (where billing_month = ?), 0) as cost,
                coalesce(sum(cost_micros) filter (where billing_month = ?), 0) as before,
                coalesce(sum(units) filter (where billing_month = ? and pricing_type = 'regular'), 0) as charged,
                coalesce(sum(units) filter (where billing_month = ?), 0) as units
            from costs_monthly group by all
            having cost > 0 or before > 0 or units > 0
            order by cost desc, label
        """, [month, previous, month, month]).fetchall()
        return [{"label": label or "(unknown)", "cost": money(cost, currency), "cost_micros": int(cost),
                 "previous": money(before, currency), "change": change(cost, before),
                 "charged": number(charged), "units": number(units)} for label, cost, before, charged, units in rows]
    total, total_before = con.execute(
        "select coalesce(sum(cost_micros) filter (where billing_month = ?), 0), "
        "coalesce(sum(cost_micros) filter (where billing_month = ?), 0) from costs_monthly",
        [month, previous]).fetchall()[0]
    monthly = con.execute(
        "select billing_month, sum(cost_micros) from costs_monthly group by 1 order by 1").fetchall()
    # Month-end forecast for the running month: the cost so far at the run-rate of its
    # days with data (an estimate, and labelled so).
    last_day = con.execute("select max(billing_date) from costs_daily where date_trunc('month', billing_date) = ?",
                           [month]).fetchall()[0][0]
    forecast = None
    if month is not None and last_day is not None:
        days_in_month = calendar.monthrange(month.year, month.month)[1]
        elapsed = (last_day - month).days + 1
        if elapsed < days_in_month:
            forecast = int(total) * days_in_month // elapsed
    markets = breakdown("market")
    return {
        "month_text": f"{month:%Y-%m}" if month else "no billed month",
        "previous_text": f"{previous:%Y-%m}" if previous else "none",
        "kpis": [
            {"key": "cost", "value": money(total, currency), "label": f"bill for {month:%Y-%m}" if month else "bill"},
            {"key": "change", "value": change(total, total_before), "label": "change on the month before"},
            {"key": "forecast", "value": money(forecast, currency) if forecast is not None else "month complete",
             "label": (f"month-end forecast (estimate: run-rate of {((last_day - month).days + 1)} days)"
                       if forecast is not None else "no forecast needed")},
        ],
        "trend": charts.column_chart("Bill per month", [f"{m:%Y-%m}" for m, _ in monthly],
                                     {currency: [int(c) / MICROS for _, c in monthly]}, fmt="{:,.2f}", every=1),
        "market_chart": charts.bar_chart(f"Cost by market, {month:%Y-%m}" if month else "Cost by market",
                                         [(r["label"], r["cost_micros"] / MICROS, r["cost"]) for r in markets[:12]]),
        "markets": markets,
        "countries": breakdown("country_code")[:20],
        "categories": breakdown("category"),
        "pricing_types": breakdown("pricing_type"),
        "total_micros": int(total),
        "pricing_sources": pricing_sources(con) + allowance_assumptions(con),
    }


def wasted(ctx: ReportContext) -> dict[str, Any]:
    con = ctx.con
    currency = (con.execute("select min(currency) from wasted_spend").fetchall()[0][0]) or "USD"
    reasons = con.execute("""
        select reason, count(*), sum(cost_micros) from wasted_spend group by 1 order by 3 desc, 1
    """).fetchall()
    templates = con.execute("""
        select coalesce(template_name, '(free-form)'), reason, count(*), sum(cost_micros)
        from wasted_spend group by all order by 4 desc, 3 desc, 1, 2 limit 15
    """).fetchall()
    total = sum(int(cost) for _, _, cost in reasons)
    return {
        "kpis": [{"key": "wasted", "value": money(total, currency), "label": "spent where it was not needed"}] + [
            {"key": reason, "value": number(count), "label": f"{reason.replace('_', ' ')} ({money(cost, currency)})"}
            for reason, count, cost in reasons],
        "template_chart": charts.bar_chart("Templates that waste most", [
            (name, int(cost) / MICROS, money(cost, currency)) for name, cost in con.execute("""
                select coalesce(template_name, '(free-form)'), sum(cost_micros) from wasted_spend
                group by 1 order by 2 desc, 1 limit 10""").fetchall()]),
        "templates": [{"template": name, "reason": reason, "messages": number(count), "cost": money(cost, currency)}
                      for name, reason, count, cost in templates],
        "total_micros": total,
    }


def reconciliation(ctx: ReportContext) -> dict[str, Any]:
    con = ctx.con
    messages, agreeing = con.execute(
        "select count(*), count(*) filter (where agrees) from pricing_reconciliation").fetchall()[0]
    disagreements = con.execute("""
        select estimated_pricing_type, meta_pricing_type, estimated_category, meta_category, count(*)
        from pricing_reconciliation where not agrees group by all order by 5 desc limit 10
    """).fetchall()
    analytics = analytics_grains(con)
    differences = con.execute("""
        select api, billing_date, granularity, coalesce(phone_number, 'all'), coalesce(country_code, 'all'),
            coalesce(category, 'all'), coalesce(pricing_type, 'all'), units, meta_volume, cost_micros,
            meta_cost_micros, status, coalesce(our_tiers, ''), coalesce(meta_tiers, ''), currency
        from analytics_reconciliation where is_beyond_tolerance
        order by abs(volume_difference) desc, api, billing_date, 4, 5, 6, 7 limit 15
    """).fetchall()
    conversations = con.execute(
        "select outcome, count(*) from conversation_reconciliation group by 1 order by 1").fetchall()
    rate = f"{agreeing / messages * 100:.2f}%" if messages else "–"
    return {
        "kpis": [
            {"key": "pricing_agreement", "value": rate,
             "label": f"of {number(messages)} messages with Meta's pricing object agree with our estimate"},
            {"key": "conversations_matched", "value": number(sum(n for o, n in conversations if o == "matched")),
             "label": f"of {number(sum(n for _, n in conversations))} conversations match the platform's export"},
        ],
        "disagreements": [{"ours": f"{et} / {ec}", "meta": f"{mt} / {mc}", "messages": number(n)}
                          for et, mt, ec, mc, n in disagreements],
        "analytics": analytics,
        "analytics_apis": [{"api": api, "era": era, "covered": "; ".join(
                                f"{row['months']} ({row['grain']})" for row in analytics if row["api"] == api)}
                           for api, era in ANALYTICS_APIS],
        "analytics_differences": [
            {"api": api, "period": f"{period:%Y-%m-%d}" if granularity != "MONTHLY" else f"{period:%Y-%m}",
             "number": phone, "country": country, "category": category, "type": pricing_type,
             "ours": number(units), "meta": number(volume), "cost": money(cost, currency or "USD"),
             "meta_cost": "not given" if meta_cost is None else money(meta_cost, currency or "USD"),
             "status": status, "tiers": f"{our_tiers or '–'} / {meta_tiers or '–'}"}
            for (api, period, granularity, phone, country, category, pricing_type, units, volume, cost, meta_cost,
                 status, our_tiers, meta_tiers, currency) in differences],
        "conversations": [{"outcome": outcome, "count": number(n)} for outcome, n in conversations],
        "rate": rate,
    }


# Which of convo's units each of Meta's analytics APIs counts (analytics_reconciliation).
ANALYTICS_APIS = (
    ("pricing_analytics", "per-message pricing: messages delivered from 2025-07-01"),
    ("conversation_analytics", "conversation-based pricing: conversations opened before 2025-07-01"),
)
GRANULARITY_WORDS = {"HALF_HOUR": "half hour", "DAILY": "day", "MONTHLY": "month"}


def analytics_grains(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """One row per API and grain of Meta's analytics files: what was compared, the months it
    covers, and how much of it differs (DOMAIN R26)."""
    rows = con.execute("""
        select api, granularity, dimensions, count(*), count(*) filter (where is_beyond_tolerance),
            count(*) filter (where not is_priced_by_convo), coalesce(sum(units), 0), coalesce(sum(meta_volume), 0),
            coalesce(sum(cost_micros), 0), sum(meta_cost_micros), min(billing_date), max(billing_date),
            count(distinct waba_id), min(currency)
        from analytics_reconciliation group by all order by api, granularity, dimensions
    """).fetchall()
    grains = []
    for (api, granularity, dimensions, compared, differing, unpriced, units, volume, cost, meta_cost,
         first, last, wabas, currency) in rows:
        named = set(dimensions.split(",")) if dimensions else set()
        grain = " x ".join([GRANULARITY_WORDS.get(granularity, granularity.lower()),
                            "number" if "PHONE" in named else "WABA"]
                           + [word for word, keys in (("country", {"COUNTRY"}),
                                                      ("category", {"PRICING_CATEGORY", "CONVERSATION_CATEGORY"}),
                                                      ("type", {"PRICING_TYPE", "CONVERSATION_TYPE"}))
                              if named & keys])
        months = f"{first:%Y-%m}" if f"{first:%Y-%m}" == f"{last:%Y-%m}" else f"{first:%Y-%m} to {last:%Y-%m}"
        grains.append({
            "api": api, "grain": grain, "months": months, "wabas": number(wabas), "rows": number(compared),
            "differing": number(differing), "unpriced": number(unpriced), "ours": number(units),
            "meta": number(volume), "cost": money(cost, currency or "USD"),
            "meta_cost": "not given" if meta_cost is None else money(meta_cost, currency or "USD"),
        })
    return grains


COSTS = Report(name="costs", title="Monthly cost", template="costs.html", build=costs,
               summary=lambda d: f"{d['month_text']}: by market, country, category and pricing type; forecast",
               needs=("costs_monthly", "costs_daily"))
WASTED = Report(name="wasted", title="Wasted spend", template="wasted.html", build=wasted,
                summary=lambda d: "templates paid for while free-form was free, 131047 failures, "
                                  "unanswered re-engagement",
                needs=("wasted_spend",))
RECONCILIATION = Report(name="reconciliation", title="Reconciliation with Meta", template="reconciliation.html",
                        build=reconciliation,
                        summary=lambda d: f"Meta's pricing objects agree on {d['rate']} of messages",
                        needs=("pricing_reconciliation", "analytics_reconciliation", "conversation_reconciliation"))
