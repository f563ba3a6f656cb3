"""The 10M row of `convo build --engine spark` beside the DuckDB engine (bench/README.md "Spark engine").

    .venv/bin/python bench/spark_engine.py --config DIR/convo.toml [--engines duckdb,spark] [--master local[*]]

Each engine builds the config's lake into its own warehouse (<warehouse>-<engine>.duckdb,
removed after), as `convo build` in a child process. Spark's JVM and its Python workers
are not waited for by the build (wait4 would miss them), so the whole process tree is
sampled from /proc every 0.2 s: CPU is the sum over every process seen of its own user +
system time at its last sample, peak memory the largest sum of the tree's RSS at one
sample. The load average is the machine's 1-minute one before and after. Prints one
Markdown row per engine; the tables of the two warehouses are compared row for row.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree(root: int) -> dict[int, tuple[float, int]]:
    """Every live process under root (root too): its own CPU seconds and RSS bytes."""
    parents: dict[int, int] = {}
    found: dict[int, tuple[float, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry)] = int(fields[1])
        found[int(entry)] = ((int(fields[11]) + int(fields[12])) / TICK, int(fields[21]) * PAGE)
    mine = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return {pid: found[pid] for pid in mine if pid in found}


def measure(command: list[str]) -> dict[str, float]:
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cpu: dict[int, float] = {}
    peak = 0
    while child.poll() is None:
        seen = tree(child.pid)
        for pid, (seconds, _) in seen.items():
            cpu[pid] = max(cpu.get(pid, 0.0), seconds)
        peak = max(peak, sum(rss for _, rss in seen.values()))
        time.sleep(0.2)
    out, err = child.communicate()
    wall = time.perf_counter() - started
    if child.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{err[-3000:]}")
    return {"wall": wall, "cpu": sum(cpu.values()), "peak_mb": peak / 2**20, "load_before": load_before,
            "load_after": os.getloadavg()[0], "output": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--keep", action="store_true", help="keep the warehouses")
    args = parser.parse_args()
    convo = str(Path(sys.executable).with_name("convo"))
    messages = duckdb.connect().execute(
        "select count(*) from read_parquet(?)",
        [str(_lake(args.config) / "messages" / "**" / "*.parquet")]).fetchall()[0][0]
    built = {}
    print("| engine | messages | wall | CPU | peak RSS (tree) | load | notes |")
    print("|---|---|---|---|---|---|---|")
    for engine in args.engines.split(","):
        config = _config_for(args.config, engine)
        command = [convo, "build", "--config", str(config), "--engine", engine]
        if engine == "spark":
            command += ["--spark-master", args.master]
        found = measure(command)
        notes = "; ".join(line.removeprefix("note: ") for line in found["output"].splitlines()
                          if line.startswith("note: engine"))
        print(f"| `--engine {engine}` | {messages:,} | {found['wall']:.1f} s | {found['cpu']:.1f} s | "
              f"{found['peak_mb']:,.0f} MB | {found['load_before']:.1f} -> {found['load_after']:.1f} | {notes} |",
              flush=True)
        built[engine] = config.parent / f"warehouse-{engine}.duckdb"
    if len(built) == 2:
        con = duckdb.connect()
        for engine, path in built.items():
            con.execute(f"attach '{path}' as {engine} (read_only)")
        names = [row[0] for row in con.execute(
            "select table_name from duckdb_tables() where database_name = 'duckdb' "
            "and table_name not in ('build_info', 'build_lake_files') order by 1").fetchall()]
        differing = {name: con.execute(f"""select count(*) from (
            (select * from duckdb."{name}" except all select * from spark."{name}") union all
            (select * from spark."{name}" except all select * from duckdb."{name}"))""").fetchall()[0][0]
            for name in names}
        print(f"tables compared: {len(names)}; differing rows: {sum(differing.values())} "
              + str({name: rows for name, rows in differing.items() if rows}))
    if not args.keep:
        for path in built.values():
            path.unlink(missing_ok=True)


def _lake(config: Path) -> Path:
    import tomllib

    lake = Path(tomllib.loads(config.read_text())["paths"]["lake"])
    return lake if lake.is_absolute() else config.parent / lake


def _config_for(config: Path, engine: str) -> Path:
    """A copy of the config beside it whose warehouse is warehouse-<engine>.duckdb."""
    import re

    text = re.sub(r'(?m)^warehouse\s*=.*$', f'warehouse = "warehouse-{engine}.duckdb"', config.read_text())
    text = re.sub(r'(?m)^lake\s*=\s*"([^"/][^"]*)"$', lambda m: f'lake = "{(config.parent / m.group(1)).resolve()}"',
                  text)
    copy = config.with_name(f"convo-{engine}.toml")
    copy.write_text(text)
    return copy


if __name__ == "__main__":
    main()
