"""A deterministic, realistic, scalable simulator of one tenant's platform exports.

``simulate(SimulateSettings(out=...))`` writes, under ``out/`` (same settings, same
bytes):

- ``convo.toml``: the matching configuration (DESIGN.md's format);
- ``exports/messages/messages-YYYY-MM-DD.jsonl``: one file per UTC day of ``timestamp``;
- ``exports/conversations/page-NNNN.json``: API pages of conversations (DOMAIN R10)
  as of the end of the period;
- ``exports/events/events.jsonl``: the webhook log (DOMAIN R11);
- ``exports/templates/templates.csv``: the template catalog, with one template Meta
  re-categorised during the period.

Modules: ``world`` (tenant, numbers, countries, contacts, templates, campaigns),
``threads`` (behaviour of a thread), ``lifecycle`` (the platform's conversations),
``meta`` (Meta's pricing object: a plain-Python model of DOMAIN R13-R27, kept apart
from the SQL engine so the two check each other), ``dirty`` (--dirty defects),
``writer`` (file formats), ``run`` (the streaming driver), ``clock`` (time).
"""

from __future__ import annotations

from pipeline.simulate.run import SimulateSettings, SimulateSummary, simulate

__all__ = ["SimulateSettings", "SimulateSummary", "simulate"]
