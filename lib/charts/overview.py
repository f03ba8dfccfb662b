"""The overview's figure and table: the story chart of a window, and the per-asset rows as a Markdown
table whose numbers link to their pages. Pure: frames in, a figure or text out.

Text helpers (`pct_text`, `ratio_text`, `funding_text`) are shared with the weekend brief, so a number
reads the same on the page, in the brief and in a chat message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from lib.analytics.liquidations import LONG, SHORT
from lib.charts import theme
from lib.charts.downsample import minmax
from lib.charts.liquidations import usd_range_text, usd_text, usd_ticks
from lib.schema import SYMBOL, TIMEFRAMES, TS

STORY_HEIGHT = 660
PRICE_BASE = 100.0  # closes indexed to 100 at the window's first bar
LEG_LABEL_Y = (0.995, 0.9)  # label tops in the price panel, alternated so neighbouring legs' labels stay apart
EDGE_SHARE = 0.2  # a leg label this close to either end of the window (as a share of it) reads away from it
# Room above the highest close (for the labels) and below the lowest, as shares of the closes' range.
HEADROOM, FOOTROOM = 0.3, 0.03
BAR_FILL = 0.9  # a liquidation bar covers 90 % of its period
DEMO_TITLE = "DEMO DATA (synthetic) · "
DEMO_NOTE = "A generated market: its cascades on Sat 31 Jan and Thu 5 Feb 2026 stand in for the real ones"
MINUS = "\u2212"
NA, NOT_CACHED = "n/a", "not cached"
MISSING = (NA, NOT_CACHED)  # table cells that say so are not links


# ---------------------------------------------------------------------------------------------
# Text


def pct_text(value: float | None, *, signed: bool = False, digits: int = 1) -> str:
    """0.052 -> "5.2 %" ("+5.2 %" when `signed`), -0.3 -> "−30.0 %"; None -> "n/a"."""
    if value is None:
        return NA
    sign = MINUS if value < 0 else "+" if signed and value > 0 else ""
    return f"{sign}{abs(value) * 100:.{digits}f} %"


def ratio_text(ratio: float | None, low: float | None = None, high: float | None = None) -> str:
    """0.43 -> "0.43×", with a CI "0.43× (0.36–0.51)"; None -> "n/a"."""
    if ratio is None:
        return NA
    interval = f" ({low:.2f}–{high:.2f})" if low is not None and high is not None else ""
    return f"{ratio:.2f}×{interval}"


def funding_text(rate: float | None) -> str:
    """A funding rate (fraction per interval) as "+0.0100 %"; None -> "not cached"."""
    return NOT_CACHED if rate is None else f"{'+' if rate >= 0 else MINUS}{abs(rate) * 100:.4f} %"


def day_text(moment: datetime) -> str:
    """"Sat 31 Jan"."""
    return f"{moment:%a} {moment.day} {moment:%b}"


# ---------------------------------------------------------------------------------------------
# The story chart


def story_figure(
    bars: pl.DataFrame,
    liquidations: pl.DataFrame,
    every: str,
    legs: pl.DataFrame,
    *,
    covered: Sequence[str],
    weekend: str = "utc",
    demo: bool = False,
) -> go.Figure:
    """The window in one picture: each asset's close indexed to 100 at its first bar, weekends shaded,
    the largest one-day drawdown legs marked and labelled (`legs`: period_start, symbol, move,
    weekend, liquidated_usd), and realised liquidations per `every` under it (`liquidations`: ts,
    long_usd, short_usd, summed over the `covered` assets). `demo` says so in the title."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.05, row_heights=[0.68, 0.32])
    indexed = bars.sort(SYMBOL, TS).with_columns(
        (pl.col("close") / pl.col("close").first().over(SYMBOL) * PRICE_BASE).alias("index"))
    shown = minmax(indexed, "index")
    symbols = bars[SYMBOL].unique(maintain_order=True).to_list()
    for symbol in symbols:
        part = shown.filter(pl.col(SYMBOL) == symbol)
        fig.add_trace(go.Scatter(
            x=_times(part[TS]), y=part["index"].to_numpy(), customdata=part["close"].to_numpy(), name=symbol,
            mode="lines", line={"color": theme.asset_color(symbol), "width": 1.8},
            hovertemplate=f"{symbol} %{{y:.1f}} (%{{customdata:$,.2f}})<extra></extra>"), row=1, col=1)
    _liquidation_bars(fig, liquidations, TIMEFRAMES[every])
    window = (bars[TS].min(), bars[TS].max() + TIMEFRAMES[every]) if bars.height else None
    _mark_legs(fig, legs, window)
    if window:
        theme.add_weekend_shading(fig, *window, definition=weekend)
        fig.update_xaxes(range=[w.replace(tzinfo=None) for w in window])  # the labels' boxes must not widen it
    start, end = (bars[TS].min(), bars[TS].max()) if bars.height else (None, None)
    span = "" if start is None else f" from {day_text(start)} to {day_text(end)} {end:%Y}"
    title = f"{DEMO_TITLE if demo else ''}{', '.join(symbols)}{span}: price, weekends and liquidations"
    theme.frame(fig, title, _story_subtitle(symbols, covered, every, legs, weekend, demo), STORY_HEIGHT)
    fig.update_layout(barmode="relative", bargap=0, hovermode="x unified")
    fig.update_xaxes(type="date", hoverformat=theme.DATE_HOVER)
    low, high = (indexed["index"].min(), indexed["index"].max()) if bars.height else (PRICE_BASE, PRICE_BASE)
    fig.update_yaxes(title_text=f"Close ({PRICE_BASE:g} = first bar)", row=1, col=1,
                     range=[low - (high - low) * FOOTROOM, high + (high - low) * HEADROOM])
    top = float(liquidations["total_usd"].max() or 0.0) if liquidations.height else 0.0
    values, labels = usd_ticks(top)
    fig.update_yaxes(title_text="Liquidated", tickvals=values, ticktext=labels, range=[0, max(top, 1.0) * 1.05],
                     row=2, col=1)
    return fig


def _times(ts: pl.Series) -> list[datetime]:
    """Naive UTC datetimes: plotly.js reads dates without a zone, and the axis says UTC."""
    return ts.dt.replace_time_zone(None).to_list()


def _liquidation_bars(fig: go.Figure, liquidations: pl.DataFrame, period: timedelta) -> None:
    """Long and short totals stacked per period, each bar centred in its period."""
    x = _times(liquidations[TS] + period / 2) if liquidations.height else []
    for side, color in ((LONG, theme.LONG_COLOR), (SHORT, theme.SHORT_COLOR)):
        label = f"{side.capitalize()}s liquidated"
        fig.add_trace(go.Bar(
            x=x, y=liquidations[f"{side}_usd"].to_list() if liquidations.height else [], name=label,
            width=period.total_seconds() * 1000 * BAR_FILL, marker={"color": color, "line": {"width": 0}},
            hovertemplate=f"{label} %{{y:$,.3s}}<extra></extra>"), row=2, col=1)


def _mark_legs(fig: go.Figure, legs: pl.DataFrame, window: tuple[datetime, datetime] | None) -> None:
    """A red band over each leg's day in the price panel, labelled with the day, each asset's move
    and the day's realised liquidations; a label in the first or last fifth of the `window` reads
    away from that edge, so it stays inside the chart."""
    days = legs.group_by("period_start", maintain_order=True).agg(
        pl.col("weekend").first(), pl.col("liquidated_usd").first(), pl.col(SYMBOL), pl.col("move"))
    for i, day in enumerate(days.iter_rows(named=True)):
        start = day["period_start"].replace(tzinfo=None)
        moves = " · ".join(f"{s} {pct_text(m)}" for s, m in zip(day[SYMBOL], day["move"], strict=True))
        liquidated = "" if day["liquidated_usd"] is None else f" · {usd_text(day['liquidated_usd'])} liquidated"
        fig.add_shape(type="rect", xref="x", yref="y domain", x0=start, x1=start + timedelta(days=1), y0=0, y1=1,
                      fillcolor=theme.DECLINE_FILL, line_width=0, layer="below")
        at = 0.5 if window is None else (day["period_start"] + timedelta(hours=12) - window[0]) / (window[1] - window[0])
        anchor = "left" if at < EDGE_SHARE else "right" if at > 1 - EDGE_SHARE else "center"
        fig.add_annotation(
            x=start + timedelta(hours={"left": 0, "center": 12, "right": 24}[anchor]), xanchor=anchor, xref="x",
            y=LEG_LABEL_Y[i % len(LEG_LABEL_Y)], yref="y domain",
            text=f"<b>{day_text(start)} · {'weekend' if day['weekend'] else 'weekday'}</b>{liquidated}<br>{moves}",
            showarrow=False, yanchor="top", align="center", font={"size": 11, "color": theme.INK},
            bgcolor="rgba(255, 255, 255, 0.85)", bordercolor=theme.UNDERWATER_LINE, borderwidth=1, borderpad=3)


def _story_subtitle(symbols: Sequence[str], covered: Sequence[str], every: str, legs: pl.DataFrame, weekend: str,
                    demo: bool) -> str:
    missing = [s for s in symbols if s not in covered]
    per = "hour" if TIMEFRAMES[every] <= TIMEFRAMES["1h"] else "day"
    bars = (f"bars: realised liquidations per {per} (measured), longs red, shorts green, summed over "
            f"{', '.join(covered)}" + (f"; none cached for {', '.join(missing)}" if missing else "")
            if covered else "no realised liquidations cached for this window")
    legs_text = f"red bands: the {legs['period_start'].n_unique()} largest one-day drawdown legs" if legs.height else ""
    parts = [DEMO_NOTE if demo else "", f"Closes indexed to {PRICE_BASE:g} at the first bar",
             f"grey: weekends ({theme.WEEKEND_LABELS.get(weekend, weekend)})", legs_text, bars]
    return " · ".join(p for p in parts if p)


# ---------------------------------------------------------------------------------------------
# The table

# (header, key of the cell: a link key of `lib.overview.LINKS`, or "funding", which has no page)
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Price", "price"),
    ("24 h", "change_24h"),
    ("7 d", "change_7d"),
    ("From 1-year peak", "current_drawdown"),
    ("From 30-day high", "drawdown_from_30d_high"),
    ("Weekend / weekday volume, 12 w (95 % CI)", "weekend_ratio"),
    ("Liquidated 24 h, long / short", "liquidated_24h"),
    ("Est. longs −5 % / shorts +5 %", "estimated_5pct"),
    ("Funding (latest)", "funding"),
)
PROXY_MARK = "†"
PROXY_NOTE = (f"{PROXY_MARK} no open interest cached up to the estimate's last bar: the level model sizes new positions "
              "from traded volume, so its USD scale is only indicative.")


def cells(row: Mapping[str, object]) -> dict[str, str]:
    """Each table column's text for one row of `lib.overview.asset_rows`."""
    liquidated = (f"{usd_text(row['liquidated_long_usd'])} / {usd_text(row['liquidated_short_usd'])}"
                  if row["liquidated_long_usd"] is not None else NOT_CACHED)
    estimated = (NA if row["estimated_long_usd"] is None else
                 f"{usd_text(row['estimated_long_usd'])} / {usd_text(row['estimated_short_usd'])}"
                 + (PROXY_MARK if row["volume_proxy"] else ""))
    return {
        "price": NA if row["price"] is None else f"${row['price']:,.2f}",
        "change_24h": pct_text(row["change_24h"], signed=True),
        "change_7d": pct_text(row["change_7d"], signed=True),
        "current_drawdown": pct_text(row["current_drawdown"]),
        "drawdown_from_30d_high": pct_text(row["drawdown_from_30d_high"]),
        "weekend_ratio": ratio_text(row["ratio"], row["ci_low"], row["ci_high"]),
        "liquidated_24h": liquidated,
        "estimated_5pct": estimated,
        "funding": funding_text(row["funding_rate"]),
    }


def range_note(ranges: pl.DataFrame, runs: int) -> str:
    """One line of Markdown: each asset's estimated longs within -5 % and shorts within +5 % as their
    lowest to highest over `runs` assumption sets (`lib.overview.level_ranges`); empty where none
    has a range."""
    parts = [f"{row[SYMBOL]} longs {usd_range_text(row['estimated_long_low_usd'], row['estimated_long_high_usd'])}, "
             f"shorts {usd_range_text(row['estimated_short_low_usd'], row['estimated_short_high_usd'])}"
             for row in ranges.iter_rows(named=True) if row["estimated_long_low_usd"] is not None]
    return (escaped(f"Est. −5 % / +5 % over {runs} assumption sets (split rule × leverage tilt): " + " · ".join(parts))
            if parts else "")


# `lib.alerts.RULES` name -> (the page's input for its limit, the input's step, the limit per unit
# of the input); an input left at 0 sets no limit
LIMIT_INPUTS: dict[str, tuple[str, float, float]] = {
    "drop_24h": ("Fell over 24 h, at least (%)", 1.0, 1.0),
    "off_30d_high": ("Below the 30-day high, at least (%)", 1.0, 1.0),
    "liquidated_24h": ("Liquidated over 24 h, at least (USD M)", 10.0, 1e6),
    "longs_vs_depth": ("Est. longs −5 % against 1 % bid depth, at least (×)", 0.5, 1.0),
    "funding": ("Funding of either sign, at least (% per interval)", 0.01, 1.0),
    "weekend_ratio": ("Weekend / weekday volume, at most (×)", 0.05, 1.0),
}


def escaped(text: str) -> str:
    """Streamlit's Markdown reads $...$ as LaTeX: escape the dollar signs of amounts; and keep a
    percent sign on its number's line."""
    return text.replace("$", "\\$").replace(" %", "\u00a0%")


def row_table(rows: pl.DataFrame, links: Mapping[str, Mapping[str, str]]) -> str:
    """A Markdown table, one line per asset of `rows` (`lib.overview.asset_rows`); each number whose
    key is in ``links[symbol]`` links there."""
    header = "| Asset | " + " | ".join(name for name, _ in TABLE_COLUMNS) + " |"
    lines = [header, "|" + " --- |" * (len(TABLE_COLUMNS) + 1)]
    for row in rows.iter_rows(named=True):
        text, hrefs = cells(row), links.get(row[SYMBOL], {})
        shown = [f"[{escaped(text[key])}]({hrefs[key]})" if key in hrefs and text[key] not in MISSING
                 else escaped(text[key])
                 for _, key in TABLE_COLUMNS]
        lines.append(f"| **{row[SYMBOL]}** | " + " | ".join(shown) + " |")
    return "\n".join(lines)
