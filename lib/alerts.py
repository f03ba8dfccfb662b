"""Alert thresholds: which of a desk's limits the cached figures cross as of a moment, for a cron
job (`python -m lib alerts`) and for the overview page's limits.

The figures are the overview row's (`lib.overview.asset_rows`; `rows` reads them through the brief's
`AsOf`, so nothing after the moment is used), the level model's cascade-fragility ratio among them
(estimated longs within -5 % against the weekend's 1 % bid depth where cached). Each `RULES` entry
is one limit a desk can set; a figure that is not cached is reported as not checked, never as fine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from lib import brief
from lib import overview as ov
from lib.charts.liquidations import usd_text
from lib.charts.overview import escaped, funding_text, pct_text
from lib.schema import SYMBOL
from lib.views import Loader
from lib.viewstate import View

CROSSED, OK, NOT_CHECKED = "crossed", "ok", "not checked"


@dataclass(frozen=True)
class Rule:
    """One limit: the figure it reads from an asset's row, when a value crosses it, and its words.
    (Each limit's option and help: `lib.cli.ALERT_OPTIONS`.)"""

    label: str  # what is checked, for a line saying it could not be
    value: Callable[[Mapping], float | None]
    crossed: Callable[[float, float], bool]
    text: Callable[[float, float], str]  # (value, limit) -> what the line says
    missing: str  # why the figure can be absent


def _liquidated(row: Mapping) -> float | None:
    if row["liquidated_long_usd"] is None:
        return None
    return (row["liquidated_long_usd"] or 0.0) + (row["liquidated_short_usd"] or 0.0)


def _fall(value: float | None) -> float | None:
    """A change as the size of its fall in percent (a rise: a negative fall)."""
    return None if value is None else -100 * value


RULES: dict[str, Rule] = {
    "drop_24h": Rule(
        "24 h change",
        lambda r: _fall(r["change_24h"]), lambda v, limit: v >= limit,
        lambda v, limit: f"{pct_text(-v / 100, signed=True)} over 24 h (limit −{limit:g} %)",
        "no bar 24 h before the last"),
    "off_30d_high": Rule(
        "distance below the 30-day high",
        lambda r: _fall(r["drawdown_from_30d_high"]), lambda v, limit: v >= limit,
        lambda v, limit: f"{v:.1f} % below its 30-day high (limit {limit:g} %)",
        "no bars in the last 30 days"),
    "liquidated_24h": Rule(
        "liquidations over 24 h",
        _liquidated, lambda v, limit: v >= limit,
        lambda v, limit: f"{usd_text(v)} liquidated over 24 h (limit {usd_text(limit)})",
        "no realised liquidations cached"),
    "longs_vs_depth": Rule(
        "estimated longs against 1 % depth",
        lambda r: r["longs_depth_multiple"], lambda v, limit: v >= limit,
        lambda v, limit: f"estimated longs within −5 % are {v:.1f}× the 1 % bid depth (limit {limit:g}×)",
        "no 1 % depth cached"),
    "funding": Rule(
        "funding",
        lambda r: None if r["funding_rate"] is None else 100 * r["funding_rate"], lambda v, limit: abs(v) >= limit,
        lambda v, limit: f"funding {funding_text(v / 100)} per interval (limit ±{limit:g} %)",
        "no funding cached"),
    "weekend_ratio": Rule(
        "weekend / weekday volume",
        lambda r: r["ratio"], lambda v, limit: v <= limit,
        lambda v, limit: f"weekend / weekday volume {v:.2f}× (limit {limit:g}×)",
        "too few weekends cached"),
}


@dataclass(frozen=True)
class Checked:
    """The checks of one run (`check`) and the latest bar or event its figures were read from."""

    used_until: datetime | None
    checks: pl.DataFrame

    @property
    def crossed(self) -> pl.DataFrame:
        return self.checks.filter(pl.col("status") == CROSSED)


def rows(load: Loader, view: View, asof: datetime) -> tuple[pl.DataFrame, datetime | None]:
    """Per asset of `view`: its overview row as of `asof`, and the latest ts read."""
    reader = brief.AsOf(load, asof)
    market = ov.read_market(reader, view, asof)
    return ov.asset_rows(market, view, ov.fragility(market, view)), reader.used_until


def check(asset_rows: pl.DataFrame, limits: Mapping[str, float]) -> pl.DataFrame:
    """One row per asset and limit (`RULES` name -> limit): symbol, rule, value (in the limit's unit:
    a fall or funding in percent, a multiple, USD), limit, status (`CROSSED`, `OK` or `NOT_CHECKED`)
    and text."""
    checks = []
    for row in asset_rows.iter_rows(named=True):
        for name, limit in limits.items():
            rule = RULES[name]
            value = rule.value(row)
            status = NOT_CHECKED if value is None else CROSSED if rule.crossed(value, limit) else OK
            text = f"{rule.label}: {rule.missing}" if value is None else rule.text(value, limit)
            checks.append({SYMBOL: row[SYMBOL], "rule": name, "value": value, "limit": float(limit), "status": status,
                           "text": text})
    schema = {SYMBOL: pl.String, "rule": pl.String, "value": pl.Float64, "limit": pl.Float64, "status": pl.String,
              "text": pl.String}
    return pl.DataFrame(checks, schema=schema)


def run(load: Loader, view: View, asof: datetime, limits: Mapping[str, float]) -> Checked:
    """`check` of the figures as of `asof`."""
    asset_rows, used_until = rows(load, view, asof)
    return Checked(used_until, check(asset_rows, limits))


def lines(checks: pl.DataFrame) -> list[str]:
    """`check`'s rows for a terminal or a mail: crossed limits first, then the rest."""
    ranked = checks.sort(pl.col("status").replace_strict({CROSSED: 0, NOT_CHECKED: 1, OK: 2}), maintain_order=True)
    return [f"{r['status'].upper():11s}  {r[SYMBOL]}  {r['text']}" for r in ranked.iter_rows(named=True)]


def markdown(checks: pl.DataFrame) -> str:
    """`check`'s rows for a page: the crossed limits, one line each, or that none of them is; and
    how many figures were not cached to check."""
    crossed = checks.filter(pl.col("status") == CROSSED)
    missing = (checks["status"] == NOT_CHECKED).sum()
    not_checked = f" ({missing} not checked: figure not cached)" if missing else ""
    if crossed.is_empty():
        return escaped(f"No limit crossed: {checks.height} checked{not_checked}.")
    head = f"**{crossed.height} of {checks.height} limits crossed**{not_checked}:"
    return escaped("  \n".join([head, *(f"{r[SYMBOL]}: {r['text']}" for r in crossed.iter_rows(named=True))]))
