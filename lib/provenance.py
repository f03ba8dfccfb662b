"""Where a chart's data comes from, as one line: shown under every chart and printed into every
export's footer, so a number never travels without its source, coverage, gaps and age."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from lib.analytics.liquidations import SAMPLED_NOTE
from lib.schema import EXCHANGE, SYMBOL, TIMEFRAME, TS

DEMO_PREFIX = "DEMO DATA (synthetic). "
MEASURED = "Measured."
ESTIMATED = "Estimated by a model from these inputs, not measured (every assumption: the page's panel and the export's assumptions.json)."


def series_entries(status: list[dict], dataset: str, exchange: str, timeframe: str, symbols: set[str]) -> list[dict]:
    """The manifest entries of one dataset, exchange and timeframe for `symbols`."""
    return [
        e for e in status
        if e["dataset"] == dataset and e["exchange"] == exchange and e["timeframe"] == timeframe and e["symbol"] in symbols
    ]


def series_behind(status: list[dict], dataset: str, frame: pl.DataFrame) -> list[dict]:
    """The manifest entries of the series `frame`'s rows come from (each exchange, symbol and
    timeframe in it), so a chart of one asset names that asset's gaps, not every asset's."""
    present = set(frame.select(EXCHANGE, SYMBOL, TIMEFRAME).unique().iter_rows())
    return [e for e in status if e["dataset"] == dataset and (e["exchange"], e["symbol"], e["timeframe"]) in present]


_TICK = timedelta(microseconds=1)  # timestamps' resolution: where one span ends, the next time begins


def sources_between(entry: dict, first: datetime | None, last: datetime | None) -> list[str]:
    """The sources of a manifest entry's rows from `first` to `last`: walking its write spans from
    the latest, each span names the source of the part of [first, last] no later span covered
    (a write replaces the rows it covers). An entry without spans names its one source."""
    spans = entry.get("spans")
    if not spans or first is None or last is None:
        return [entry["source"]]
    left, names = [(first, last)], []
    for span in reversed(spans):
        lo, hi = datetime.fromisoformat(span["first_ts"]), datetime.fromisoformat(span["last_ts"])
        if any(a <= hi and b >= lo for a, b in left):
            names.append(span["source"])
        parts = ((a, min(b, lo - _TICK)) for a, b in left), ((max(a, hi + _TICK), b) for a, b in left)
        left = [(a, b) for part in parts for a, b in part if a <= b]
    return names or [entry["source"]]


def chart_provenance(
    status: list[dict], inputs: Sequence[tuple[str, pl.DataFrame]], lo: datetime, hi: datetime, is_demo: bool,
    estimated: bool = False,
) -> str:
    """The badge under one chart (and its export footer): for each (dataset, rows drawn) of
    `inputs`, the series, coverage, gaps in [lo, hi), fetch time and whether a feed is sampled;
    then whether the chart is measured or a model's estimate."""
    clauses = [f"No {dataset} rows cached in this range." if frame.is_empty() else
               provenance_text(series_behind(status, dataset, frame), frame, lo, hi, is_demo=False)
               + (f" Note: {SAMPLED_NOTE}." if "sampled" in frame.columns and frame["sampled"].any() else "")
               for dataset, frame in inputs]
    kind = ESTIMATED if estimated else "" if is_demo else MEASURED  # demo data is synthetic, never measured
    return " ".join(part for part in (DEMO_PREFIX.strip() if is_demo else "", *clauses, kind) if part)


def provenance_text(entries: list[dict], frame: pl.DataFrame, lo: datetime, hi: datetime, is_demo: bool) -> str:
    """`entries`: the manifest entries of the series behind `frame` (the rows shown, lo <= ts < hi).

    Says which sources, the time range actually covered, the number of gaps inside [lo, hi), and
    when the oldest of them was fetched."""
    covered = (f"{frame[TS].min():%Y-%m-%d %H:%M} to {frame[TS].max():%Y-%m-%d %H:%M} UTC"
               if not frame.is_empty() else "no rows")
    gaps = sum(
        1 for e in entries for g in e["gaps"]
        if datetime.fromisoformat(g["start"]) < hi and datetime.fromisoformat(g["end"]) > lo
    )
    series = sorted({f"{e['exchange']} {e['dataset']} {e['timeframe']}" for e in entries}) or ["nothing cached"]
    sources = sorted({name for e in entries for name in sources_between(e, frame[TS].min(), frame[TS].max())})
    fetched = min((e["fetched_at"] for e in entries), default=None)
    text = (f"Data: {', '.join(series)} (from {', '.join(sources) or 'unknown'}); covers {covered}; "
            f"{gaps} gap(s) in range, shown, never filled; cached {fetched[:16].replace('T', ' ') + ' UTC' if fetched else 'never'}.")
    return (DEMO_PREFIX if is_demo else "") + text
