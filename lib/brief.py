"""The weekend brief: what a desk should read before a weekend, as of a moment, from cached data only.

`build` reads through `AsOf`, a loader that passes on only the rows whose bar had closed by the
as-of time (``ts + bar length <= asof``; events and snapshots: ``ts < asof``) and keeps them, so the
brief says what it used (`Brief.used_until`, and each figure's provenance). Its figures are the
overview row's (`lib.overview`): drawdowns, the weekend-vs-weekday quote-volume ratio of the last
twelve weeks with its CI and verdict, the nearest estimated liquidation clusters (±2/5/10 %) against
1 % depth where cached, funding and open interest over the last 30 days, and the last two weekends'
moves (Friday close -> Monday open, `liquidity.weekend_moves`; one still under way to its last close).

Out (`files`): one page (a plotly figure as PNG, every figure's sources in its footer), a standalone
HTML page with the same figure and the summary, and the summary as Markdown for a chat message.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.subplots import make_subplots

from lib import export
from lib import overview as ov
from lib.analytics import liquidity as liq
from lib.analytics.liquidations import LONG, SHORT
from lib.charts import theme
from lib.charts.liquidations import usd_range_text, usd_text
from lib.charts.overview import (
    DEMO_TITLE,
    PRICE_BASE,
    TABLE_COLUMNS,
    cells,
    day_text,
    funding_text,
    pct_text,
    ratio_text,
)
from lib.provenance import series_entries
from lib.schema import SYMBOL, TIMEFRAMES, TS
from lib.views import Loader
from lib.viewstate import View

WEEKENDS_SHOWN = 2
WEEKEND_HISTORY = timedelta(weeks=4)  # bars enough to hold the last two complete weekends
TREND = timedelta(days=7)  # funding's mean and open interest's change over the last week
PAGE_HEIGHT = 1560
TABLE_ROW_PX = 26
PERCENT = 100
PAGE_STYLE = "font-family:sans-serif;max-width:1700px;margin:auto"  # as export.html's pages
TITLES = {
    "drawdowns": "Drawdowns and realised liquidations",
    "liquidity": "Weekend liquidity, last 12 weeks",
    "clusters": "Nearest estimated liquidation clusters (a model, not a measurement)",
    "funding": "Funding and open interest",
    "weekends": "The last two weekends (Friday close → Monday open, or to the last close of one under way)",
}


class AsOf:
    """A Loader that passes on only the rows that had closed by `asof`, and keeps them per dataset."""

    def __init__(self, load: Loader, asof: datetime) -> None:
        self.load, self.asof = load, asof
        self.frames: dict[str, list[pl.DataFrame]] = {}

    def __call__(self, dataset: str, symbols: tuple[str, ...], start: datetime, end: datetime,
                 exchange: str | None = None, timeframe: str | None = None) -> pl.DataFrame:
        rows = self.load(dataset, symbols, start, min(end, self.asof), exchange, timeframe)
        closed = rows.filter(pl.col(TS) + ov.bar_length() <= self.asof, pl.col(TS) < self.asof)
        self.frames.setdefault(dataset, []).append(closed)
        return closed

    @property
    def used_until(self) -> datetime | None:
        """The latest ts of any row passed on."""
        return max((f[TS].max() for frames in self.frames.values() for f in frames if f.height), default=None)


@dataclass(frozen=True)
class Brief:
    """The brief's data; `sections`, `figure`, `markdown` and `files` present it."""

    asof: datetime
    view: View
    is_demo: bool
    rows: pl.DataFrame  # `lib.overview.asset_rows`
    fragility: pl.DataFrame  # `lib.overview.fragility`: every band, against weekday / weekend depth where cached
    trends: pl.DataFrame  # per symbol: funding_7d_mean, open_interest_usd, open_interest_change_7d
    funding: pl.DataFrame  # symbol, ts, funding_rate over the last 30 days
    open_interest: pl.DataFrame  # symbol, ts, open_interest_usd (summed over exchanges), same days
    weekends: pl.DataFrame  # the last two complete weekends per symbol (`weekend_moves`)
    sources: dict[str, str]  # TITLES key -> the provenance of that figure's data
    used_until: datetime | None  # the latest row read (before asof)


def latest_close(status: list[dict], view: View) -> datetime | None:
    """The close of the view's last cached bar: the default as-of time (None when none is cached)."""
    entries = series_entries(status, "bars", view.exchange, view.timeframe, set(view.assets))
    last = max((datetime.fromisoformat(e["last_ts"]) for e in entries), default=None)
    return None if last is None else last + TIMEFRAMES[view.timeframe]


def trends(funding: pl.DataFrame, open_interest: pl.DataFrame, asof: datetime) -> pl.DataFrame:
    """Per symbol: funding_7d_mean (the mean rate over the `TREND` before `asof`), the latest
    open_interest_usd and its open_interest_change_7d against the last value `TREND` before it."""
    ts, oi = pl.col(TS), pl.col("open_interest_usd")
    rate = funding.group_by(SYMBOL).agg(
        pl.col("funding_rate").filter(ts >= asof - TREND).mean().alias("funding_7d_mean"))
    held = open_interest.group_by(SYMBOL).agg(
        oi.last(), (oi.last() / oi.filter(ts <= ts.last() - TREND).last() - 1).alias("open_interest_change_7d"))
    return rate.join(held, on=SYMBOL, how="full", coalesce=True)


def last_weekends(bars: pl.DataFrame, weekend: str, n: int = WEEKENDS_SHOWN) -> pl.DataFrame:
    """The last `n` weekends per symbol of `bars` with a Friday close, oldest first. A weekend with
    no bar after it yet (a brief as of Saturday, or of Monday 00:00) is still under way: its move is
    to its last close, and `so_far` is true."""
    moves = liq.with_so_far(liq.weekend_moves(liq.with_calendar(bars, weekend=weekend))).drop_nulls("friday_close")
    return moves.sort(SYMBOL, "start").group_by(SYMBOL, maintain_order=True).tail(n)


def build(load: Loader, view: View, asof: datetime, status: list[dict], is_demo: bool) -> Brief:
    """The brief for `view`'s assets, exchange, timeframe and weekend as of `asof` (its dates are
    not used: every figure has its own history before `asof`). `status`: the store's manifest."""
    reader = AsOf(load, asof)
    market = ov.read_market(reader, view, asof)
    fragile = ov.fragility(market, view, with_range=True)
    month = asof - ov.FUNDING_HISTORY
    oi = market.open_interest.filter(pl.col(TS) >= month)
    summed_oi = oi.group_by(SYMBOL, TS).agg(pl.col("open_interest_usd").sum()).sort(SYMBOL, TS)
    recent = market.bars.filter(pl.col(TS) >= asof - WEEKEND_HISTORY)
    early = asof - ov.LEVEL_HISTORY - ov.levels.WARM_UP

    def source(dataset: str, frame: pl.DataFrame, lo: datetime) -> str:
        """The provenance of `frame`'s rows from `lo` on."""
        return ov.provenance_line(status, dataset, frame.filter(pl.col(TS) >= lo), lo, asof, is_demo)

    sources = {
        "drawdowns": f"{source('bars', market.bars, asof - ov.DRAWDOWN_HISTORY)} Realised liquidations: "
                     f"{source('liquidation_totals', market.totals, asof - ov.REALISED_HISTORY)}",
        "liquidity": source("bars", market.bars, asof - ov.LIQUIDITY_HISTORY),
        "clusters": f"Estimated from {source('bars', market.bars, early)} Open interest: "
                    f"{source('open_interest', market.open_interest, early)} "
                    f"1 % depth: {source('depth', market.depth, early)}",
        "funding": f"{source('funding', market.funding, month)} Open interest: {source('open_interest', oi, month)}",
        "weekends": source("bars", recent, asof - WEEKEND_HISTORY),
    }
    return Brief(asof, view, is_demo, ov.asset_rows(market, view, fragile), fragile,
                 trends(market.funding, summed_oi, asof), market.funding.select(SYMBOL, TS, "funding_rate"), summed_oi,
                 last_weekends(recent, view.weekend), sources, reader.used_until)


# ---------------------------------------------------------------------------------------------
# Text


@dataclass(frozen=True)
class Section:
    """One figure of the brief in words: a title, a line per asset, and the provenance of its data."""

    title: str
    lines: tuple[str, ...]
    source: str


def title(brief: Brief) -> str:
    view = brief.view
    demo = DEMO_TITLE if brief.is_demo else ""
    return (f"{demo}Cascade weekend brief · as of {brief.asof:{theme.DATE_TEXT}} UTC · {', '.join(view.assets)} · "
            f"{view.exchange} {view.timeframe}")


def _drawdown_line(r: dict) -> str:
    liquidated = ("realised liquidations not cached" if r["liquidated_long_usd"] is None else
                  f"{usd_text(r['liquidated_long_usd'])} longs / {usd_text(r['liquidated_short_usd'])} shorts "
                  "liquidated in 24 h")
    return (f"{r[SYMBOL]} {cells(r)['price']}: drawdown {pct_text(r['current_drawdown'])} from its 1-year peak, "
            f"{pct_text(r['drawdown_from_30d_high'])} from its 30-day high; "
            f"24 h {pct_text(r['change_24h'], signed=True)}, 7 d {pct_text(r['change_7d'], signed=True)}; {liquidated}")


def _liquidity_line(r: dict) -> str:
    measure = liq.MEASURES[r["measure"]].short if r["measure"] else "volume"
    ratio = ratio_text(r["ratio"], r["ci_low"], r["ci_high"])
    return f"{r[SYMBOL]}: weekend / weekday {measure} {ratio}. {r['verdict'] or ''}".strip()


def _cluster_line(symbol: str, fragile: pl.DataFrame) -> str:
    """Longs and shorts within each band, and the multiple of 1 % depth (the weekend book where
    cached) the nearest band would sell or buy into."""
    mine = fragile.filter(pl.col(SYMBOL) == symbol)
    if mine.is_empty():
        return f"{symbol}: no bars to estimate from"
    booked, sides = ov.weekend_book(mine), []
    for side, word, depth_side in ((LONG, "longs", "bids"), (SHORT, "shorts", "asks")):
        rows = booked.filter(pl.col("side") == side).sort(pl.col("band").abs())
        bands = ", ".join(f"{usd_text(r['liquidation_usd'])} within {pct_text(r['band'], signed=True, digits=0)}"
                          + _range_text(r) for r in rows.iter_rows(named=True))
        nearest = rows.row(0, named=True)
        depth = ("" if nearest["depth_multiple"] is None else
                 f" (those within {pct_text(nearest['band'], signed=True, digits=0)}: {nearest['depth_multiple']:.1f}× "
                 f"the {nearest['period']} 1 % {depth_side})")
        sides.append(f"{word} {bands}{depth}")
    no_depth = "" if mine["depth_usd"].drop_nulls().len() else "; no 1 % depth cached"
    proxy = " (no open interest cached to date: volume proxy, USD scale indicative)" if mine["volume_proxy"][0] else ""
    return f"{symbol}: {'; '.join(sides)}{no_depth}{proxy}"


def _range_text(r: dict) -> str:
    """A band's range over other assumptions, e.g. " (range $9.6M–$52.2M)", or "" without one."""
    return "" if r["low_usd"] is None else f" (range {usd_range_text(r['low_usd'], r['high_usd'])})"


def _funding_line(r: dict, trend: dict) -> str:
    oi = ("open interest not cached in the last 30 days" if trend.get("open_interest_usd") is None else
          f"open interest {usd_text(trend['open_interest_usd'])} "
          f"({pct_text(trend['open_interest_change_7d'], signed=True)} in 7 d)")
    mean = "" if trend.get("funding_7d_mean") is None else f" (7-day mean {funding_text(trend['funding_7d_mean'])})"
    return f"{r[SYMBOL]}: funding {funding_text(r['funding_rate'])} per interval{mean}; {oi}"


def _weekend_line(w: dict) -> str:
    moves = (f"weekend of {day_text(start)} {pct_text(move, signed=True)}{' so far' if so_far else ''} "
             f"(low {pct_text(low)})"
             for start, move, low, so_far in zip(w["start"], w["move"], w["max_drawdown"], w["so_far"], strict=True))
    return f"{w[SYMBOL]}: {'; '.join(moves)}"


def sections(brief: Brief) -> list[Section]:
    """The brief's figures in words, in the order of `TITLES`."""
    rows = list(brief.rows.iter_rows(named=True))
    trends_by = {t[SYMBOL]: t for t in brief.trends.iter_rows(named=True)}
    weekends = brief.weekends.group_by(SYMBOL, maintain_order=True).agg(pl.all()).iter_rows(named=True)
    lines = {
        "drawdowns": [_drawdown_line(r) for r in rows],
        "liquidity": [_liquidity_line(r) for r in rows],
        "clusters": [_cluster_line(r[SYMBOL], brief.fragility) for r in rows],
        "funding": [_funding_line(r, trends_by.get(r[SYMBOL], {})) for r in rows],
        "weekends": [_weekend_line(w) for w in weekends] or ["no weekend cached in the last four weeks"],
    }
    return [Section(TITLES[key], tuple(lines[key]), brief.sources[key]) for key in TITLES]


def markdown(brief: Brief) -> str:
    """The summary for a chat message: a bold title, each figure's lines and its data's provenance."""
    parts = [f"**{title(brief)}**", f"Cached data only, read up to {_when(brief.used_until)}."]
    parts += [f"**{s.title}**\n" + "\n".join(f"- {line}" for line in s.lines) + f"\n_{s.source}_"
              for s in sections(brief)]
    return "\n\n".join(parts) + "\n"


def _when(moment: datetime | None) -> str:
    return "nothing" if moment is None else f"{moment:{theme.DATE_TEXT}} UTC (bar open)"


# ---------------------------------------------------------------------------------------------
# The page


def figure(brief: Brief) -> go.Figure:
    """The one-page brief: the overview table, the weekend liquidity ratios, the estimated clusters,
    funding, open interest and the last two weekends."""
    fig = make_subplots(
        rows=4, cols=2, specs=[[{"type": "table", "colspan": 2}, None], [{}, {}], [{}, {}], [{"colspan": 2}, None]],
        row_heights=[0.14, 0.3, 0.28, 0.28], vertical_spacing=0.055, horizontal_spacing=0.08,
        subplot_titles=("", "Weekend / weekday volume, last 12 weeks (95 % CI)",
                        ("Estimated liquidations between the price and each move (USD, log)<br><sup>whiskers: "
                         f"the range over {ov.levels.SPREAD_RUNS} assumption sets (split rule × leverage tilt)</sup>"),
                        "Funding rate per interval, last 30 days",
                        f"Open interest, last 30 days ({PRICE_BASE:g} = first value)",
                        TITLES["weekends"]))
    rows = list(brief.rows.iter_rows(named=True))
    texts = [cells(r) for r in rows]
    fig.add_trace(go.Table(
        header={"values": ["Asset", *(name for name, _ in TABLE_COLUMNS)], "fill_color": theme.GRID, "align": "left"},
        cells={"values": [[r[SYMBOL] for r in rows], *([t[key] for t in texts] for _, key in TABLE_COLUMNS)],
               "align": "left", "height": TABLE_ROW_PX}), row=1, col=1)
    for r in rows:
        _ratio_marker(fig, r)
        _clusters(fig, brief.fragility.filter(pl.col(SYMBOL) == r[SYMBOL]), r[SYMBOL])
        _lines(fig, brief.funding.filter(pl.col(SYMBOL) == r[SYMBOL]), "funding_rate", r[SYMBOL], 3, 1, scale=PERCENT)
        _lines(fig, brief.open_interest.filter(pl.col(SYMBOL) == r[SYMBOL]), "open_interest_usd", r[SYMBOL], 3, 2,
               index=True)
        _weekend_bars(fig, brief.weekends.filter(pl.col(SYMBOL) == r[SYMBOL]), r[SYMBOL])
    fig.add_hline(y=1, line={"color": theme.MUTED, "dash": "dot", "width": 1}, row=2, col=1,
                  exclude_empty_subplots=False)  # plotly's emptiness check trips over the table trace
    for row, col, frame, what in ((3, 1, brief.funding, "funding"), (3, 2, brief.open_interest, "open interest")):
        if frame.is_empty():
            fig.add_annotation(text=f"No {what} cached in the 30 days before the as-of time", xref="paper",
                               yref="paper", showarrow=False, font={"color": theme.MUTED}, **_centre(fig, row, col))
    theme.frame(fig, title(brief), f"Cached data only, read up to {_when(brief.used_until)} · estimated levels are a "
                "model (default leverage mix), not a measurement · sources of every figure below", PAGE_HEIGHT)
    fig.update_layout(barmode="group", hovermode="closest")
    fig.update_yaxes(title_text="weekend / weekday", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(type="category", row=2, col=2)  # "−5 %" would otherwise be read as a number
    fig.update_yaxes(type="log", title_text="USD", row=2, col=2)
    fig.update_yaxes(title_text="% per interval", row=3, col=1)
    fig.update_yaxes(tickformat=theme.PERCENT_AXIS, title_text="Friday close → Monday open", row=4, col=1)
    return fig


def _centre(fig: go.Figure, row: int, col: int) -> dict[str, float]:
    """The centre of a subplot in paper coordinates (an empty subplot's axes are not drawn, so
    nothing can refer to them)."""
    axes = fig.get_subplot(row, col)
    return {"x": sum(axes.xaxis.domain) / 2, "y": sum(axes.yaxis.domain) / 2}


def _ratio_marker(fig: go.Figure, r: dict) -> None:
    if r["ratio"] is None:
        return
    fig.add_trace(go.Scatter(
        x=[r[SYMBOL]], y=[r["ratio"]], mode="markers+text", text=[ratio_text(r["ratio"])],
        textposition="middle right", marker={"color": theme.asset_color(r[SYMBOL]), "size": 11},
        error_y={"type": "data", "symmetric": False, "array": [(r["ci_high"] or r["ratio"]) - r["ratio"]],
                 "arrayminus": [r["ratio"] - (r["ci_low"] or r["ratio"])], "color": theme.asset_color(r[SYMBOL])},
        name=r[SYMBOL], legendgroup=r[SYMBOL]), row=2, col=1)


def _clusters(fig: go.Figure, fragile: pl.DataFrame, symbol: str) -> None:
    """Each band's estimate as a bar, with a whisker over its range under other assumptions."""
    shown = ov.weekend_book(fragile).sort("band")
    usd = shown["liquidation_usd"]
    whiskers = None if shown["low_usd"].null_count() else {
        "type": "data", "symmetric": False, "array": (shown["high_usd"] - usd).to_list(),
        "arrayminus": (usd - shown["low_usd"]).to_list(), "color": theme.MUTED, "thickness": 1.2}
    fig.add_trace(go.Bar(
        x=[pct_text(b, signed=True, digits=0) for b in shown["band"]], y=usd.to_list(), error_y=whiskers,
        text=[usd_text(v) for v in usd], textposition="outside", cliponaxis=False,
        marker={"color": theme.asset_color(symbol)}, name=symbol, legendgroup=symbol, showlegend=False,
        hovertemplate=f"{symbol} %{{x}}: %{{y:$,.3s}}<extra></extra>"), row=2, col=2)


def _lines(fig: go.Figure, frame: pl.DataFrame, column: str, symbol: str, row: int, col: int, *,
           scale: float = 1.0, index: bool = False) -> None:
    if frame.is_empty():
        return
    values = frame[column] / frame[column][0] * PRICE_BASE if index else frame[column] * scale
    fig.add_trace(go.Scatter(
        x=frame[TS].dt.replace_time_zone(None).to_list(), y=values.to_list(), mode="lines",
        line={"color": theme.asset_color(symbol), "width": 1.6}, name=symbol, legendgroup=symbol, showlegend=False),
        row=row, col=col)


def _weekend_bars(fig: go.Figure, weekends: pl.DataFrame, symbol: str) -> None:
    fig.add_trace(go.Bar(
        x=[f"Weekend of {day_text(s)}{' (so far)' if so_far else ''}"
           for s, so_far in zip(weekends["start"], weekends["so_far"], strict=True)], y=weekends["move"].to_list(),
        text=[f"{pct_text(move, signed=True)} (low {pct_text(low)})"
              for move, low in zip(weekends["move"], weekends["max_drawdown"], strict=True)],
        textposition="outside", cliponaxis=False, marker={"color": theme.asset_color(symbol)}, name=symbol,
        legendgroup=symbol, showlegend=False), row=4, col=1)


# ---------------------------------------------------------------------------------------------
# Files


def footer(brief: Brief) -> str:
    """Every figure's provenance, labelled: the PNG's and the HTML's footer."""
    return " · ".join(f"{TITLES[key]}: {text}" for key, text in brief.sources.items())


def html_page(brief: Brief, page: go.Figure) -> str:
    """A standalone HTML page (plotly.js inlined, works offline): the summary, then the page figure."""
    summary = "".join(
        f"<h2>{html.escape(s.title)}</h2><ul>{''.join(f'<li>{html.escape(line)}</li>' for line in s.lines)}</ul>"
        f"<p style='color:{theme.MUTED};font-size:small'>{html.escape(s.source)}</p>" for s in sections(brief))
    chart = pio.to_html(export.with_footer(page, footer(brief)), full_html=False, include_plotlyjs=True,
                        config={"displaylogo": False})
    name = html.escape(title(brief))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{name}</title></head>"
            f"<body style='{PAGE_STYLE}'><h1>{name}</h1>{summary}{chart}</body></html>")


def stem(asof: datetime) -> str:
    """The brief's file name without extension."""
    return f"cascade_weekend_brief_{asof:%Y%m%dT%H%M}"


def files(brief: Brief) -> dict[str, bytes]:
    """File name -> bytes: the page as PNG (footer included), the standalone HTML and the Markdown
    summary. Raises export.ExportError when the PNG cannot be rendered."""
    page, name = figure(brief), stem(brief.asof)
    return {f"{name}.png": export.png(export.with_footer(page, footer(brief))),
            f"{name}.html": html_page(brief, page).encode(), f"{name}.md": markdown(brief).encode()}
