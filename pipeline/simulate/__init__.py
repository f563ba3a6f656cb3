"""A deterministic, realistic, scalable simulator of one tenant's platform exports.

``simulate(SimulateSettings(out=...))`` writes DESIGN.md's export formats and a
matching convo.toml. Meta's pricing objects come from :mod:`pipeline.simulate.meta`,
a plain-Python model of DOMAIN R13-R27 kept apart from the SQL engine.
"""

from __future__ import annotations

from pipeline.simulate.run import SimulateSettings, SimulateSummary, simulate

__all__ = ["SimulateSettings", "SimulateSummary", "simulate"]
