"""A deterministic, realistic, scalable simulator of one tenant's platform exports.

``simulate(SimulateSettings(out=...))`` writes, under ``out/`` (same settings, same
bytes):

- ``convo.toml``: the matching configuration (DESIGN.md's format), with each number's
  ``display_phone_number`` (the digits Meta's pricing_analytics names it by);
- ``exports/messages/messages-YYYY-MM-DD.jsonl``: one file per UTC day of ``timestamp``;
- ``exports/conversations/page-NNNN.json``: API pages of conversations (DOMAIN R10)
  as of the end of the period;
- ``exports/events/events.jsonl``: the webhook log (DOMAIN R11);
- ``exports/templates/templates.csv``: the template catalog, with one template Meta
  re-categorised during the period;
- ``exports/pricing_analytics/pricing_analytics-YYYY-MM-<waba id>.json``: Meta's
  pricing_analytics response (DOMAIN R26) for the PMP days (from 2025-07-01), one per
  WABA and calendar month of its number's local days: DAILY data points of volume and
  cost per business number, recipient country, pricing type, category and volume tier
  (``SimulateSummary.pricing_analytics`` counts them); and
  ``pricing_analytics-monthly-<waba id>.json``: the same WABA-level (no PHONE
  dimension), MONTHLY, for the whole period;
- ``exports/conversation_analytics/``: the same two shapes of Meta's
  conversation_analytics for the CBP days (before 2025-07-01): conversations and cost
  per number (or WABA), country, conversation type and category
  (``SimulateSummary.conversation_analytics``). --dirty adds no defects to either.

Modules: ``world`` (tenant, numbers, countries, contacts, templates, campaigns),
``threads`` (behaviour of a thread), ``lifecycle`` (the platform's conversations),
``meta`` (Meta's pricing object: a plain-Python model of DOMAIN R13-R27, kept apart
from the SQL engine so the two check each other), ``analytics`` (Meta's
pricing_analytics and conversation_analytics: units, rate card, volume tiers), ``dirty`` (--dirty defects),
``writer`` (file formats), ``run`` (the streaming driver), ``clock`` (time).
"""

from __future__ import annotations

from pipeline.simulate.run import SimulateSettings, SimulateSummary, simulate

__all__ = ["SimulateSettings", "SimulateSummary", "simulate"]
