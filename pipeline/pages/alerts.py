"""Alerts: what the build flagged (sql/marts/alerts.sql), newest day first."""

from __future__ import annotations

from typing import Any

from pipeline.report_types import Report, ReportContext, number


def alerts(ctx: ReportContext) -> dict[str, Any]:
    con = ctx.con
    counts = con.execute("""
        select kind, count(*) filter (where severity = 'critical'), count(*) filter (where severity = 'warning'),
            count(*) filter (where severity = 'info'), max(local_date)
        from alerts group by kind order by kind
    """).fetchall()
    rows = con.execute("""
        select local_date, severity, kind, tenant_id, phone_number_id, market, country_code, category, rule
        from alerts order by local_date desc, severity_level desc, kind, alert_key limit 200
    """).fetchall()
    total = sum(critical + warning + info for _, critical, warning, info, _ in counts)
    return {
        "kpis": [
            {"key": "alerts", "value": number(total), "label": "alerts"},
            {"key": "critical", "value": number(sum(row[1] for row in counts)), "label": "critical"},
            {"key": "warning", "value": number(sum(row[2] for row in counts)), "label": "warning"},
        ],
        "kinds": [{"kind": kind, "critical": number(critical), "warning": number(warning), "info": number(info),
                   "latest": str(latest)} for kind, critical, warning, info, latest in counts],
        "alerts": [{"day": str(day), "severity": severity, "kind": kind,
                    "scope": ", ".join(str(part) for part in (tenant, phone, market, country, category)
                                       if part is not None),
                    "rule": rule} for day, severity, kind, tenant, phone, market, country, category, rule in rows],
        "total": total,
    }


REPORT = Report(name="alerts", title="Alerts", template="alerts.html", build=alerts,
                summary=lambda data: f"{data['total']:,} alerts: cost spikes, OTP pumping, failures, waste, "
                                     "tiers, input quality, reconciliation drift",
                needs=("alerts",))
