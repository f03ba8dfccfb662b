"""Every benchmark in one command, each in its own process, summed up in one table.

    .venv/bin/python bench/run_all.py [--quick] [--only NAME ...]

Every `bench/*_bench.py` runs (a new bench is picked up by its name), in `ORDER` first. The benches
print their own lines as they go (shown here as they arrive); at the end comes one Markdown table:
measure, figure, goal, met?. `--quick` passes `--quick` to the benches that take it (smaller
datasets), `QUICK_ARGS` to some that do not, and skips `QUICK_SKIPS`: the two that always build the
full 7.9M-row dataset and take minutes (quantstats alone takes over a minute).

The protocol: a bench reports a figure by printing one `RESULT {json}` line (see `report`); the
older benches print prose, read here through `LEGACY` (one pattern per figure).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PREFIX = "RESULT "
QUICK_SKIPS = ("store_bench.py", "drawdowns_bench.py")  # 7.9M rows, no size option: minutes each
QUICK_ARGS: dict[str, tuple[str, ...]] = {"collector_bench.py": ("--seconds", "60")}  # 10 minutes by default
ORDER = ("liquidity_bench.py", "drawdowns_bench.py", "liquidations_bench.py", "store_bench.py", "archive_bench.py",
         "overview_bench.py", "pages_bench.py", "sessions_bench.py", "collector_bench.py")


@dataclass(frozen=True)
class Goal:
    """A figure's target: at most `limit` (or at least, with `at_least`), in `unit`."""

    limit: float
    unit: str
    at_least: bool = False

    def met(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit

    def text(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.limit:g} {self.unit}"

    def miss(self, value: float) -> str:
        """By how much `value` misses the goal: '2.1× over' or '30 % short'; '' when met."""
        if self.met(value):
            return ""
        if self.at_least:
            return f"{1 - value / self.limit:.0%} short" if value > 0 else "short"
        if self.limit <= 0:
            return "over"
        ratio = value / self.limit
        return f"{ratio - 1:.0%} over" if ratio < 2 else f"{ratio:.1f}× over"


@dataclass(frozen=True)
class Result:
    """One row of the table."""

    measure: str
    value: float | None
    unit: str
    goal: Goal | None = None
    note: str = ""

    @property
    def figure(self) -> str:
        if self.value is None:
            return f"n/a {self.note}".strip()
        size = abs(self.value)
        digits = 0 if size >= 100 or float(self.value).is_integer() else 1 if size >= 10 else 2 if size >= 1 else 3
        return f"{self.value:,.{digits}f} {self.unit}" + (f" ({self.note})" if self.note else "")

    @property
    def verdict(self) -> str:
        if self.goal is None or self.value is None:
            return "–"
        return "yes" if self.goal.met(self.value) else f"**no**, {self.goal.miss(self.value)}"


def report(measure: str, value: float | None, unit: str, goal: Goal | None = None, note: str = "") -> Result:
    """Print a human line and the machine line run_all reads; return the result."""
    result = Result(measure, value, unit, goal, note)
    target = f"; goal {goal.text()} {'met' if result.verdict == 'yes' else 'NOT met ' + goal.miss(value)}" \
        if goal and value is not None else ""
    print(f"{measure}: {result.figure}{target}", flush=True)
    print(PREFIX + json.dumps(asdict(result)), flush=True)
    return result


def parse_results(lines: Iterable[str]) -> list[Result]:
    """The `RESULT` lines of a bench's output."""
    found = []
    for line in lines:
        if line.startswith(PREFIX):
            raw = json.loads(line[len(PREFIX):])
            goal = raw.pop("goal")
            found.append(Result(**raw, goal=Goal(**goal) if goal else None))
    return found


@dataclass(frozen=True)
class Legacy:
    """One figure printed as prose by an older bench: `pattern`'s first group is the number."""

    measure: str
    pattern: str
    unit: str
    goal: Goal | None = None

    def parse(self, text: str) -> Result:
        match = re.search(self.pattern, text)
        value = float(match.group(1).replace(",", "")) if match else None
        return Result(self.measure, value, self.unit, self.goal, "" if match else "(line not found)")


SECONDS = r"([\d.]+) s"
LEGACY: dict[str, tuple[Legacy, ...]] = {
    "store_bench.py": (
        Legacy("store: import 1M one-minute rows (CSV)", r"import 1,000,000 .*?: " + SECONDS, "s", Goal(5, "s")),
        Legacy("store: read 6 months of ETH closes from 7.9M rows", r"read ETH closes .*?best " + SECONDS, "s",
               Goal(0.5, "s")),
        Legacy("store: peak RSS of that read", r"peak RSS of the reading process (\d+) MB", "MB"),
    ),
    "drawdowns_bench.py": (
        Legacy("drawdowns: floor, Parquet scan of symbol, ts, close (7.9M)", r"floor: .*?: " + SECONDS, "s"),
        Legacy("drawdowns: episodes + desk metrics, 7.9M rows", r"from memory: " + SECONDS, "s", Goal(1, "s")),
        Legacy("drawdowns: quantstats on the same series", r"quantstats .*?series: " + SECONDS, "s"),
        Legacy("drawdowns: faster than quantstats", r"ratio: ours ([\d.]+)x", "×", Goal(20, "×", at_least=True)),
    ),
    "archive_bench.py": (
        Legacy("archive: import 1 year of 1m klines (12 monthly zips)", r"archive import: .*? in " + SECONDS, "s",
               Goal(10, "s")),
    ),
    "liquidations_bench.py": (
        Legacy("liquidations: estimated levels, 1 year hourly", r"estimated levels, .*?: " + SECONDS, "s",
               Goal(1, "s")),
        Legacy("liquidations: realised heatmap, 1 year of minutes", r"realised heatmap, .*?: " + SECONDS, "s",
               Goal(0.5, "s")),
        Legacy("liquidations: heatmap figure JSON, hourly price line", r"hourly price line .*?: ([\d.]+) MB", "MB",
               Goal(1.5, "MB")),
        Legacy("liquidations: heatmap figure JSON, 1-minute price line (min-max)",
               r"1-minute min-max price line .*?: ([\d.]+) MB", "MB", Goal(1.5, "MB")),
    ),
}


def derived(results: list[Result]) -> list[Result]:
    """Ratios the older benches print the parts of: drawdowns against their floor."""
    by_name = {r.measure: r.value for r in results}
    ours = by_name.get("drawdowns: episodes + desk metrics, 7.9M rows")
    floor = by_name.get("drawdowns: floor, Parquet scan of symbol, ts, close (7.9M)")
    if ours and floor:
        return [Result("drawdowns: episodes + metrics / floor", ours / floor, "×", Goal(3, "×"))]
    return []


def benches() -> list[str]:
    """Every bench file: those in `ORDER` first, then the others by name."""
    names = sorted(path.name for path in BENCH_DIR.glob("*_bench.py"))
    return sorted(names, key=lambda name: ORDER.index(name) if name in ORDER else len(ORDER))


def arguments(name: str, quick: bool) -> tuple[str, ...]:
    """A bench's command-line arguments in a full or a quick run."""
    if not quick:
        return ()
    return ("--quick",) if '"--quick"' in (BENCH_DIR / name).read_text() else QUICK_ARGS.get(name, ())


def run_bench(name: str, args: tuple[str, ...]) -> tuple[list[str], float, int]:
    """Run one bench in a fresh interpreter, echoing its human lines; return its output lines,
    the wall time and the exit code."""
    started = time.perf_counter()
    print(f"\n== {name} {' '.join(args)}", flush=True)
    process = subprocess.Popen([sys.executable, str(BENCH_DIR / name), *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=BENCH_DIR.parent)
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if not line.startswith(PREFIX):
            print("   " + line, end="", flush=True)
    return lines, time.perf_counter() - started, process.wait()


def results_of(name: str, lines: list[str], code: int) -> list[Result]:
    if code != 0:
        return [Result(f"{name} failed (exit {code}); see its output above", None, "")]
    if name in LEGACY:
        text = "\n".join(lines)
        parsed = [spec.parse(text) for spec in LEGACY[name]]
        return parsed + derived(parsed)
    return parse_results(lines) or [Result(f"{name}: no RESULT lines; see its output above", None, "")]


def table(results: list[Result]) -> str:
    """The Markdown table of every result."""
    rows = ["| measure | figure | goal | met? |", "|---|---|---|---|"]
    rows += [f"| {r.measure} | {r.figure} | {r.goal.text() if r.goal else '–'} | {r.verdict} |" for r in results]
    return "\n".join(rows)


def machine() -> str:
    return f"{os.cpu_count()} CPUs, load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller datasets; skip " + ", ".join(QUICK_SKIPS))
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benches (e.g. pages_bench.py)")
    args = parser.parse_args()
    started, before = time.perf_counter(), machine()
    results: list[Result] = []
    for name in benches():
        if (args.only and name not in args.only) or (args.quick and name in QUICK_SKIPS):
            continue
        lines, seconds, code = run_bench(name, arguments(name, args.quick))
        results += results_of(name, lines, code)
        print(f"   ({name}: {seconds:.0f} s)", flush=True)
    print(f"\nmachine before: {before}\nmachine after:  {machine()}\n"
          f"total {time.perf_counter() - started:.0f} s{' (--quick)' if args.quick else ''}\n")
    print(table(results))


if __name__ == "__main__":
    main()
