"""The SQL models of sql/: what each one is, as its own file declares it.

A model is a file sql/<layer>/<name>.sql holding one select. Its leading comment block
states its grain (line 1) and, on a line of its own, its configuration, the way dbt's
``config()`` does::

    -- config: kind=per-thread, keep=temp

``kind`` (required outside staging/):

* ``staging``: renames and casts the lake (a view; sql/staging/).
* ``per-thread``: reads only its own threads' rows (DESIGN "Two kinds of work"): it is
  run on any subset of contacts (a shard, or the contacts an incremental night touches)
  and gives the same rows for them. ``keep=table`` (default) keeps its rows in the
  warehouse; ``keep=temp`` is a step that only later per-thread models read (never
  written to the warehouse). Persisted per-thread tables carry tenant_id and contact_key
  (their rows are replaced by contact).
* ``cross-thread``: counts across a tenant; recomputed in full by every build (an
  incremental night: but for ``recompute_by``, below).
* ``monthly``: cross-thread, with rows per billing month that depend only on that
  month's rows of their inputs: an incremental night recomputes it from the first month
  that changed on. ``keep=temp``: a step only later monthly models read (an incremental
  night holds only the months it recomputes).

``month=<column>``: the column naming a row's billing month (a date within it): a
monthly model's own rows are replaced by it; a per-thread table's changed rows say which
months changed, and monthly models read only its rows of those months.
``changes_month=<column>``: like ``month`` for change detection only (the table is read
in full).
``recompute_by=contact_phone``: a cross-thread model with (at most) one row per tenant_id x
contact_phone, whose rows for a phone depend only on the staged messages of that phone
and of the platform conversations (tenant_id, conversation_id) those share (DOMAIN R2):
an incremental night runs it for the phones of the lake's new or rewritten messages
and of their conversations only, on its inputs' rows of those phones and conversations
(the inputs with tenant_id and contact_phone columns), and replaces those phones' rows
(pipeline/incremental.py ``run_by_phone``).
``kernel=<name>``: a per-thread model whose select gives its input rows in thread order
(``order by`` last) and whose relation the named kernel of pipeline/kernels.py makes
from them in one compiled pass (DESIGN "Sort once"); the select's tables are what it reads.
``shard_by=contact_key | contact_fields``: a staging or cross-thread relation that
per-thread models read and that holds rows of many threads: it is cut to the contacts
of the subset, by its (tenant_id, contact_key) columns, or by the contact key of its
(tenant_id, contact_bsuid, contact_phone) columns (DOMAIN R2).

What a model reads is found by DuckDB's own parser (``json_serialize_sql``): every
table a select names, less its common table expressions. Nothing is matched by pattern.

sql/functions/*.sql are table macros the models call (``create or replace temp macro``),
defined before the first model of every build (``define_functions``): SQL a model would
otherwise repeat, such as the CBP chaining applied to template and service chains. A
function reads only the relations it is given by name (``query_table``), so what a
model reads stays in the model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb

from pipeline import paths

LAYERS = ("staging", "intermediate", "marts")
KINDS = ("staging", "per-thread", "cross-thread", "monthly")
# The kernels of pipeline/kernels.py (named here so that reading the models needs no numba).
KERNELS = ("thread_pass", "cbp_pass")
_KEYS = {"kind", "keep", "month", "changes_month", "shard_by", "recompute_by", "kernel"}
_SHARD_BY = ("contact_key", "contact_fields")
_RECOMPUTE_BY = ("contact_phone",)


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    sql: str
    kind: str = "cross-thread"
    keep: str = "table"            # per-thread only: table | temp
    month: str | None = None
    changes_month: str | None = None
    shard_by: str | None = None
    recompute_by: str | None = None
    kernel: str | None = None
    reads: frozenset[str] = frozenset()

    @property
    def body(self) -> str:
        return self.sql.strip().rstrip(";")

    @property
    def is_temp(self) -> bool:
        return self.kind in ("per-thread", "monthly") and self.keep == "temp"


class ModelError(RuntimeError):
    """A model file is malformed (our own code: loud, not a user error)."""


def define_functions(con: duckdb.DuckDBPyConnection, sql_root: Path | None = None) -> None:
    """Define the table macros of sql/functions/ on this connection (temp: not in the warehouse)."""
    root = sql_root or paths.sql_dir()
    for path in sorted((root / "functions").glob("*.sql")):
        con.execute(path.read_text(encoding="utf-8"))


def discover(sql_root: Path | None = None) -> list[Model]:
    """Every model, in an order where each comes after the models it reads."""
    root = sql_root or paths.sql_dir()
    models = [_load(path, layer) for layer in LAYERS for path in sorted((root / layer).glob("*.sql"))]
    names = {model.name for model in models}
    models = [_with_reads(model, names) for model in models]
    return _topological(models)


def _load(path: Path, layer: str) -> Model:
    sql = path.read_text(encoding="utf-8")
    config = _config(path, sql)
    kind = config.pop("kind", "staging" if layer == "staging" else None)
    if kind not in KINDS:
        raise ModelError(f"{path}: '-- config: kind=...' must be one of {', '.join(KINDS)} (got {kind!r})")
    keep = config.pop("keep", "table")
    if keep not in ("table", "temp") or (keep == "temp" and kind not in ("per-thread", "monthly")):
        raise ModelError(f"{path}: keep={keep} (keep=temp is for per-thread and monthly models only)")
    shard_by = config.pop("shard_by", None)
    if shard_by is not None and (shard_by not in _SHARD_BY or kind not in ("staging", "cross-thread")):
        raise ModelError(f"{path}: shard_by={shard_by} (one of {', '.join(_SHARD_BY)}, on staging or "
                         "cross-thread models)")
    recompute_by = config.pop("recompute_by", None)
    if recompute_by is not None and (recompute_by not in _RECOMPUTE_BY or kind != "cross-thread"):
        raise ModelError(f"{path}: recompute_by={recompute_by} (one of {', '.join(_RECOMPUTE_BY)}, on "
                         "cross-thread models)")
    kernel = config.pop("kernel", None)
    if kernel is not None and (kernel not in KERNELS or kind != "per-thread"):
        raise ModelError(f"{path}: kernel={kernel} (one of {', '.join(KERNELS)}, on per-thread models)")
    month = config.pop("month", None)
    if kind == "monthly" and month is None:
        raise ModelError(f"{path}: a monthly model declares its month column (month=...)")
    return Model(name=path.stem, layer=layer, sql=sql, kind=kind, keep=keep, month=month,
                 changes_month=config.pop("changes_month", None), shard_by=shard_by, recompute_by=recompute_by,
                 kernel=kernel)


def _config(path: Path, sql: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        if line.startswith("-- config:"):
            for item in line.removeprefix("-- config:").split(","):
                key, equals, value = (part.strip() for part in item.partition("="))
                if not equals or key not in _KEYS:
                    raise ModelError(f"{path}: unknown config item {item.strip()!r} (known: {', '.join(sorted(_KEYS))})")
                found[key] = value
    return found


def _with_reads(model: Model, names: set[str]) -> Model:
    reads = frozenset(relations(model.body) & names - {model.name})
    return Model(**{**model.__dict__, "reads": reads})


@cache
def _parser() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def relations(sql: str) -> set[str]:
    """The tables and views a select reads, by DuckDB's parser, less its CTE names."""
    return set(_relations(sql))


@cache
def _relations(sql: str) -> frozenset[str]:
    # Kept per SQL text: a build discovers the models one to four times, and parsing
    # every model costs ~0.1 CPU-s each time (a test suite builds some 130 times).
    tree = json.loads(_parser().execute("select json_serialize_sql(?::varchar)", [sql]).fetchall()[0][0])
    if tree.get("error"):
        raise ModelError(f"cannot parse a model: {tree.get('error_message')}")
    tables: set[str] = set()
    ctes: set[str] = set()
    _walk(tree, tables, ctes)
    return frozenset(tables - ctes)


def _walk(node: object, tables: set[str], ctes: set[str]) -> None:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and "table_name" in node:
            tables.add(node["table_name"])
        for entry in (node.get("cte_map") or {}).get("map", []):
            ctes.add(entry["key"])
        for value in node.values():
            _walk(value, tables, ctes)
    elif isinstance(node, list):
        for value in node:
            _walk(value, tables, ctes)


def _topological(models: list[Model]) -> list[Model]:
    ordered: list[Model] = []
    done: set[str] = set()
    pending = list(models)
    while pending:
        ready = [model for model in pending if model.reads <= done]
        if not ready:
            cycle = ", ".join(model.name for model in pending)
            raise ModelError(f"SQL models depend on each other in a cycle: {cycle}")
        for model in ready:
            ordered.append(model)
            done.add(model.name)
        pending = [model for model in pending if model.name not in done]
    return ordered


@dataclass(frozen=True)
class Stages:
    """The build's three stages, each in dependency order."""
    before: list[Model]       # staging and cross-thread models the per-thread stage reads
    per_thread: list[Model]
    after: list[Model]        # cross-thread and monthly models that read per-thread ones


def stages(models: list[Model]) -> Stages:
    by_name = {model.name: model for model in models}
    per_thread = [model for model in models if model.kind == "per-thread"]
    needed: set[str] = set()
    pending = [name for model in per_thread for name in model.reads]
    while pending:
        name = pending.pop()
        model = by_name[name]
        if model.kind == "per-thread" or name in needed:
            continue
        needed.add(name)
        pending.extend(model.reads)
    for name in sorted(needed):
        found = upstream(by_name, name)
        if any(by_name[other].kind == "per-thread" for other in found):
            raise ModelError(f"model {name} is read by the per-thread stage but reads a per-thread model "
                             f"({', '.join(sorted(o for o in found if by_name[o].kind == 'per-thread'))})")
    for model in per_thread:
        wrong = [name for name in model.reads if by_name[name].kind == "monthly"]
        if wrong:
            raise ModelError(f"per-thread model {model.name} reads a monthly model ({', '.join(wrong)})")
    per_thread = _chains_first(per_thread)
    before = [model for model in models if model.name in needed]
    after = [model for model in models if model.kind != "per-thread" and model.name not in needed]
    for model in after:
        steps = [name for name in model.reads if by_name[name].kind == "per-thread" and by_name[name].is_temp]
        if steps:
            raise ModelError(f"model {model.name} reads per-thread steps that live only during the per-thread "
                             f"stage ({', '.join(sorted(steps))}): declare them keep=table")
    return Stages(before=before, per_thread=per_thread, after=after)


def _chains_first(per_thread: list[Model]) -> list[Model]:
    """The per-thread models in an order that finishes a chain before starting the next:
    of the models whose inputs are ready, the one reading the most recently made model
    goes first (ties: the order given), so a step's readers follow it closely and the
    step can be dropped early (releases)."""
    names = {model.name for model in per_thread}
    placed: dict[str, int] = {}
    ordered: list[Model] = []
    pending = list(per_thread)
    while pending:
        ready = [model for model in pending if (model.reads & names) <= placed.keys()]
        if not ready:
            raise ModelError(f"per-thread models depend on each other in a cycle: {', '.join(m.name for m in pending)}")
        chosen = max(ready, key=lambda model: max((placed[name] for name in model.reads & names), default=-1))
        placed[chosen.name] = len(ordered)
        ordered.append(chosen)
        pending.remove(chosen)
    return ordered


def releases(per_thread: list[Model], kept: bool = False) -> dict[int, list[Model]]:
    """Per position in the per-thread stage, the temp steps (and with `kept`, the kept
    tables too) no later model of it reads: dropped (a kept table first written to the
    warehouse) as soon as that model has run, so a shard holds only what is still needed."""
    last: dict[str, int] = {}
    for index, model in enumerate(per_thread):
        if model.is_temp or kept:
            last.setdefault(model.name, index)
        for name in model.reads:
            if name in last:
                last[name] = index
    by_name = {model.name: model for model in per_thread}
    found: dict[int, list[Model]] = {}
    for name, index in last.items():
        found.setdefault(index, []).append(by_name[name])
    return found


def upstream(by_name: dict[str, Model], *names: str) -> set[str]:
    """Every model the named models read, directly or through others."""
    seen: set[str] = set()
    pending = [read for name in names for read in by_name[name].reads]
    while pending:
        other = pending.pop()
        if other not in seen:
            seen.add(other)
            pending.extend(by_name[other].reads)
    return seen


def quoted(name: str) -> str:
    if not re.fullmatch(r"\w+", name):
        raise ModelError(f"not a model name: {name!r}")
    return f'"{name}"'
