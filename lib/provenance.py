"""Where a chart's data comes from, as one line: shown under every chart and printed into every
export's footer, so a number never travels without its source, coverage, gaps and age."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from lib.schema import TS

DEMO_PREFIX = "DEMO DATA (synthetic). "


def series_entries(status: list[dict], dataset: str, exchange: str, timeframe: str, symbols: set[str]) -> list[dict]:
    """The manifest entries of one dataset, exchange and timeframe for `symbols`."""
    return [
        e for e in status
        if e["dataset"] == dataset and e["exchange"] == exchange and e["timeframe"] == timeframe and e["symbol"] in symbols
    ]


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
    sources = sorted({e["source"] for e in entries})
    fetched = min((e["fetched_at"] for e in entries), default=None)
    text = (f"Data: {', '.join(series)} (from {', '.join(sources) or 'unknown'}); covers {covered}; "
            f"{gaps} gap(s) in range, shown, never filled; cached {fetched[:16].replace('T', ' ') + ' UTC' if fetched else 'never'}.")
    return (DEMO_PREFIX if is_demo else "") + text
