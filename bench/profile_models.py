"""Time models of `convo build` one at a time on a built warehouse (bench/README.md, Build profile).

    .venv/bin/python bench/profile_models.py --dir DIR                  # every model
    .venv/bin/python bench/profile_models.py --dir DIR --models a,b     # these only
    .venv/bin/python bench/profile_models.py --dir DIR --in-build       # one whole build, per model
    .venv/bin/python bench/profile_models.py --dir DIR --operators      # and by kind of DuckDB operator

DIR holds a convo.toml whose lake and warehouse are built (`convo ingest`, `convo build`).
The warehouse is copied to <warehouse>.profile; each model is run there as the build
runs it (same settings, lake views and variables), replacing its table, and timed:
wall and CPU seconds of this process, DuckDB's peak buffer memory and bytes spilled
(from its JSON profile). The models a model reads are the built ones, so each row is
the cost of that model alone. --memory-limit sets DuckDB's limit (default: the build's).
Per-thread steps (keep=temp) are not in the warehouse: the ones a timed model reads are
made first, untimed.

--operators also sums DuckDB's own operator timings (its detailed profile: CPU seconds of
each physical operator, over all threads) by kind of operator: each model's largest four,
and at the end every model's together (writes, window sorts, joins, group-bys, ...): what
kind of work the build's time is, beside which model does it.

--in-build runs one whole `convo build` into <warehouse>.profile instead and prints, per
model, the CPU and wall seconds of this process from its start to the next model's
(the stages' own work between models, and the summaries at the end, count with the
model before them); with several shards a model is named once, on the first shard.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from pipeline import build, config, paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="folder with convo.toml, lake and warehouse built")
    parser.add_argument("--models", default="", help="comma-separated model names (default: every model)")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 1GB")
    parser.add_argument("--repeat", type=int, default=1, help="runs per model (the fastest is shown)")
    parser.add_argument("--in-build", action="store_true", help="time each model inside one whole build")
    parser.add_argument("--operators", action="store_true",
                        help="also sum DuckDB's operator timings by kind of operator, per model and in all")
    args = parser.parse_args(argv)

    settings = config.load(args.dir / "convo.toml")
    if args.memory_limit:
        settings = dataclasses.replace(settings, build=config.Build(memory_limit=args.memory_limit))
    if args.in_build:
        return _in_build(settings)
    models = build.discover()
    wanted = [name for name in args.models.split(",") if name]
    unknown = set(wanted) - {model.name for model in models}
    if unknown:
        print(f"unknown model(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    chosen = [model for model in models if not wanted or model.name in wanted]

    copy = settings.warehouse.with_name(settings.warehouse.name + ".profile")
    shutil.copyfile(settings.warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        build._prepare(con, settings, None)
        for model in models:                        # staging views every model may read
            if model.layer == "staging":
                build._run(con, model)
        print(f"{'model':<36} {'rows':>12} {'wall s':>8} {'CPU s':>8} {'peak MB':>9} {'spill MB':>9}")
        by_name = {model.name: model for model in models}
        made: set[str] = set()
        operators: collections.Counter[str] = collections.Counter()
        for model in chosen:
            if model.layer == "staging":
                continue
            _make_temp_inputs(con, model, by_name, made)
            best = None
            for _ in range(args.repeat):
                result = _time(con, model, args.operators)
                if best is None or result["wall"] < best["wall"]:
                    best = result
            rows = con.execute(f'select count(*) from "{model.name}"').fetchall()[0][0]
            print(f"{model.name:<36} {rows:>12,} {best['wall']:>8.2f} {best['cpu']:>8.2f} "
                  f"{best['peak'] / 1e6:>9,.0f} {best['spill'] / 1e6:>9,.0f}", flush=True)
            if args.operators:
                operators.update(best["operators"])
                print("    " + ", ".join(f"{kind} {seconds:.2f}" for kind, seconds in best["operators"].most_common(4)))
        if args.operators:
            print(f"\nDuckDB operator CPU seconds by kind, all models ({sum(operators.values()):.1f} in all):")
            for kind, seconds in operators.most_common():
                if seconds >= 0.005:
                    print(f"  {kind:<28} {seconds:>8.2f}")
    finally:
        con.close()
        paths.remove_duckdb(copy)
    return 0


def _in_build(settings: config.Settings) -> int:
    copy = settings.warehouse.with_name(settings.warehouse.name + ".profile")
    marks: list[tuple[str, float, float]] = []

    def mark(model: build.Model) -> None:
        marks.append((model.name, time.perf_counter(), _cpu()))

    started, cpu = time.perf_counter(), _cpu()
    try:
        summary = build.build(dataclasses.replace(settings, warehouse=copy), on_model=mark)
        marks.append(("(end)", time.perf_counter(), _cpu()))
    finally:
        paths.remove_duckdb(copy)
    rows = sorted(((c2 - c1, t2 - t1, name) for (name, t1, c1), (_, t2, c2) in zip(marks, marks[1:])), reverse=True)
    print(f"{'model':<36} {'CPU s':>8} {'wall s':>8}")
    for cpu_s, wall_s, name in rows:
        print(f"{name:<36} {cpu_s:>8.1f} {wall_s:>8.1f}")
    print(f"{'whole build':<36} {_cpu() - cpu:>8.1f} {time.perf_counter() - started:>8.1f}   "
          f"({summary.shards} shard(s))")
    return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _make_temp_inputs(con: duckdb.DuckDBPyConnection, model: build.Model, by_name: dict[str, build.Model],
                      made: set[str]) -> None:
    """Per-thread steps kept only for the build's own session (keep=temp) are not in the
    warehouse: make the ones the model reads, untimed, before timing it."""
    for name in sorted(model.reads):
        needed = by_name[name]
        if needed.is_temp and name not in made:
            _make_temp_inputs(con, needed, by_name, made)
            build._run(con, needed)
            made.add(name)
    if model.is_temp:
        made.add(model.name)


def _time(con: duckdb.DuckDBPyConnection, model: build.Model, operators: bool = False) -> dict[str, object]:
    with tempfile.NamedTemporaryFile(suffix=".json") as profile:
        con.execute("set enable_profiling = 'json'")
        con.execute("set profiling_mode = ?", ["detailed" if operators else "standard"])
        con.execute("set profiling_output = ?", [profile.name])
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        build._run(con, model)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        con.execute("set enable_profiling = 'no_output'")
        con.execute("pragma disable_profiling")
        tree = json.loads(Path(profile.name).read_text() or "{}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak": _largest(tree, "peak_buffer_memory"),
            "spill": _largest(tree, "peak_temp_dir_size"), "operators": _by_operator(tree.get("operator", []))}


def _by_operator(node: object) -> collections.Counter[str]:
    """CPU seconds of each kind of physical operator in DuckDB's profile tree."""
    found: collections.Counter[str] = collections.Counter()
    if isinstance(node, list):
        for child in node:
            found.update(_by_operator(child))
    elif isinstance(node, dict):
        if "name" in node:
            found[node["name"]] += float(node.get("timing") or 0.0)
        found.update(_by_operator(node.get("children", [])))
    return found


def _largest(node: object, key: str) -> float:
    """The largest value of key anywhere in DuckDB's profile tree (0 when absent)."""
    if isinstance(node, dict):
        own = node.get(key)
        found = float(own) if isinstance(own, (int, float)) else 0.0
        return max([found, *(_largest(value, key) for value in node.values())])
    if isinstance(node, list):
        return max([0.0, *(_largest(value, key) for value in node)])
    return 0.0


if __name__ == "__main__":
    raise SystemExit(main())
