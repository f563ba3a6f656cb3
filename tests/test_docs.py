"""The README and docs/RULES.md say what the code does: table grains, rule numbers."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
RULES = (ROOT / "docs" / "RULES.md").read_text(encoding="utf-8")


def readme_grains() -> dict[str, str]:
    """table -> grain, from the README's warehouse table (rows naming one table)."""
    section = README.split("## The warehouse", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
    return {table: grain.strip() for table, grain in rows}


def model_grain(path: Path) -> str:
    """A model's grain: its first line's comment (and the next lines while the grain runs
    on: a line ending in " x" or a comma), up to the ':' that ends the grain."""
    lines = path.read_text(encoding="utf-8").splitlines()
    text = lines[0].removeprefix("-- ").strip()
    for line in lines[1:]:
        if not re.search(r"( x|,)$", text):
            break
        text += " " + line.removeprefix("-- ").strip()
    return re.split(r":\s|:$", text, maxsplit=1)[0].strip()


def test_every_mart_has_a_readme_row() -> None:
    marts = {path.stem for path in (ROOT / "sql" / "marts").glob("*.sql")}
    assert marts - set(readme_grains()) == set()


def test_each_readme_grain_is_its_models_grain() -> None:
    grains = readme_grains()
    for path in sorted((ROOT / "sql").rglob("*.sql")):
        if path.stem in grains and path.parent.name == "marts":
            model = model_grain(path)
            assert grains[path.stem] == model or model.startswith(grains[path.stem] + " ("), (
                path.stem, grains[path.stem], model)


def test_no_readme_grain_stops_mid_phrase() -> None:
    for table, grain in readme_grains().items():
        assert not re.search(r"( x|,|:)$", grain), (table, grain)


def test_rules_document_has_every_rule_the_code_cites() -> None:
    cited = set()
    for path in [*ROOT.joinpath("pipeline").rglob("*.py"), *ROOT.joinpath("sql").rglob("*.sql"),
                 *ROOT.joinpath("tests").rglob("*.py")]:
        cited |= set(re.findall(r"DOMAIN (R\d+a?)\b", path.read_text(encoding="utf-8")))
    defined = set(re.findall(r"^- \*\*(R\d+a?)\.", RULES, flags=re.MULTILINE))
    assert {f"R{number}" for number in range(1, 28)} | {"R21a"} == defined
    assert cited - defined == set()


def test_the_readme_points_to_the_rules_document_not_to_a_file_a_clone_lacks() -> None:
    assert "docs/RULES.md" in README
    assert "DOMAIN.md" not in README
