"""Weekend-liquidity figures, built from the frames of `lib.analytics.liquidity` and
`lib.analytics.liquidity_stats`; units are formatted here (USD with K/M/B, percent, basis points).

- `hour_of_week_heatmap`: 7 × 24 cells of one measure, session boundaries marked, BH-significant
  cells dotted;
- `day_of_week_bars`: the mean per weekday with HAC confidence whiskers;
- `weekend_box`: daily values, weekday against weekend, per symbol;
- `weekend_timeseries`: daily values with weekends shaded, and the rolling weekend / weekday ratio;
- `event_comparison_chart`: each measure in two events against the same hours of earlier weeks;
- `share_of_week_by_year`: each day's share of the year's volume, stacked (the post-ETF shift).

Every builder takes `title` and `subtitle` (a `liquidity_stats.verdict` sentence fits there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from lib.analytics.liquidity import (
    BASELINE_WEEKS,
    CASCADES,
    DATE,
    Event,
    HOUR,
    MEAN,
    MEASURE,
    MEASURES,
    MEDIAN,
    ROLLING_RATIO_WINDOW,
    WEEKDAY,
    WEEKEND,
    WEEKEND_SHARE,
    YEAR,
    N,
    with_so_far,
)
from lib.analytics.sessions import SESSION_STARTS, UTC_WEEKEND_FIRST_DAY
from lib.charts import theme
from lib.schema import SYMBOL

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SESSION_LABELS = {"asia": "Asia", "europe": "Europe", "us": "US (NYSE 09:30-16:00 ET)", "late_us": "Late US"}
# Session boundaries drawn on the heatmap, in hours of the heatmap's own time zone.
SESSION_MARKS: dict[str, tuple[tuple[float, str], ...]] = {
    "UTC": tuple((start.hour + start.minute / 60, SESSION_LABELS[name]) for name, start in SESSION_STARTS),
    "America/New_York": ((9.5, "NYSE open 09:30"), (16.0, "NYSE close 16:00")),
}
WEEKDAY_COLOR = "#5B6B7A"
WEEKEND_COLOR = "#0F9BA8"
EVENT_COLORS = (WEEKEND_COLOR, WEEKDAY_COLOR, "#7A5C3E")  # the defaults: the Saturday cascade first
EDGE_PAD = 24  # px between the chart's left edge and a title that does not sit over the plot
EVENT_AXIS_PAD = 1.35  # room on the log axis for the "2.3×" labels
LOG_TICK_MANTISSAS = (1, 2, 5)
HEAT_LOW = "#F7F8FA"  # the empty end of each heatmap's scale; the full end is the asset's colour
SIGNIFICANT_MARKER = {"symbol": "circle", "size": 4, "color": "rgba(31, 41, 51, 0.55)"}
LOG_UNITS = frozenset({"usd", "base", "count", "amihud"})  # heavy right tails: log axes by default
RATIO_TICKS = (0.25, 0.5, 1, 2, 4, 8, 16)
NOON = timedelta(hours=12)  # a day's value sits in the middle of the day, inside its weekend band
MULTIPLES = {"B": 1e9, "M": 1e6, "K": 1e3}  # amounts read "$52M", largest first
WEEKEND_FALL = 0.05  # the weekend moves' subtitle counts weekends that traded this far under Friday's close


@dataclass(frozen=True)
class Display:
    """How values of one unit are shown: multiplied by `scale`, with a prefix, a suffix and a d3
    number format (`digits`), on axes, colour bars and hovers alike."""

    scale: float
    prefix: str
    suffix: str
    digits: str

    def axis(self) -> dict[str, Any]:
        """Ticks and hovers in the unit; zero reads "$0", not "$0M" (a multiple of nothing)."""
        axis = {"tickprefix": self.prefix, "ticksuffix": self.suffix, "hoverformat": self.digits}
        if self.suffix in MULTIPLES:
            axis["labelalias"] = {f"{self.prefix}0{self.suffix}": f"{self.prefix}0"}
        return axis

    def text(self, value: float | None) -> str:
        if value is None or math.isnan(value):
            return "n/a"
        return f"{self.prefix}{value * self.scale:{self.digits}}{self.suffix}"


def display(unit: str, values: Sequence[float | None] = ()) -> Display:
    """The `Display` of a unit of `lib.analytics.liquidity.UNITS`; amounts (usd, base, count) take
    K, M or B from the largest of `values`, so an axis reads "$50M" rather than "50,000,000"."""
    fixed = {
        "share": Display(100, "", "%", ",.2f"),
        "volatility": Display(100, "", "%", ",.2f"),
        "spread": Display(10_000, "", " bp", ",.2f"),
        "amihud": Display(10_000, "", " bp", ",.3f"),
    }
    if unit in fixed:
        return fixed[unit]
    largest = max((abs(v) for v in values if v is not None and not math.isnan(v)), default=0.0)
    divisor, letter = next(((d, s) for s, d in MULTIPLES.items() if largest >= d), (1.0, ""))
    return Display(1 / divisor, "$" if unit == "usd" else "", letter, ",.2f")


def axis_title(measure: str, symbol: str = "") -> str:
    """The unit a measure's axis is read in."""
    unit = MEASURES[measure].unit
    return {
        "usd": "USD",
        "base": f"{symbol} (base units)".strip(),
        "count": "count",
        "share": "percent",
        "volatility": "percent per bar",
        "spread": "basis points of price",
        "amihud": "bp of price per USD 1 M traded",
    }[unit]


# ---------------------------------------------------------------------------------------------
# Figures


def hour_of_week_heatmap(
    cells: pl.DataFrame,
    measure: str,
    *,
    stat: str = MEAN,
    tests: pl.DataFrame | None = None,
    weekend: pl.DataFrame | None = None,
    tz: str = "UTC",
    title: str | None = None,
    subtitle: str | None = None,
) -> go.Figure:
    """Days down, hours across, colour = `stat` ("mean" or "median") of `measure`, from an
    `aggregate(..., by=HOUR_OF_WEEK)` table of one symbol computed in time zone `tz`. `tests`: an
    `hour_of_week_tests` table; cells it finds significant get a dot. `weekend`: a `weekend_share`
    table; a line runs around the cells that are weekend for most of their bars (without it, the
    UTC calendar weekend: Saturday and Sunday). Session boundaries are marked for "UTC" (the
    sessions of `lib.analytics.sessions`) and "America/New_York" (the NYSE day)."""
    symbol = _one_symbol(cells)
    rows = _measure_rows(cells, measure)
    look = display(MEASURES[measure].unit, rows[stat].to_list())
    grid = {(d, h): r for d, h, r in zip(rows[WEEKDAY], rows[HOUR], rows.iter_rows(named=True), strict=True)}
    hits = pl.DataFrame() if tests is None else tests.filter((pl.col(SYMBOL) == symbol) & pl.col("significant"))
    q = (
        {}
        if tests is None
        else {(d, h): v for d, h, v in tests.filter(pl.col(SYMBOL) == symbol).select(WEEKDAY, HOUR, "q").rows()}
    )
    days, hours = range(1, 8), range(24)
    share = (
        {(d, h): float(d >= UTC_WEEKEND_FIRST_DAY) for d in days for h in hours}
        if weekend is None
        else {(d, h): v for d, h, v in weekend.filter(pl.col(SYMBOL) == symbol).select(WEEKDAY, HOUR, WEEKEND_SHARE).rows()}
    )
    z = [[_scaled(grid.get((d, h), {}).get(stat), look) for h in hours] for d in days]
    hover = [[_cell_text(d, h, grid.get((d, h)), q.get((d, h)), share.get((d, h)), measure, look, tz) for h in hours]
             for d in days]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(hours),
            y=list(DAY_NAMES),
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            colorscale=[[0, HEAT_LOW], [1, theme.asset_color(symbol)]],
            colorbar={
                "title": {"text": axis_title(measure, symbol), "side": "right"},
                "thickness": 12,
                "tickprefix": look.prefix,
                "ticksuffix": look.suffix,
            },
            xgap=1,
            ygap=1,
        )
    )
    if hits.height:
        fig.add_trace(
            go.Scatter(
                x=hits[HOUR].to_list(),
                y=[DAY_NAMES[d - 1] for d in hits[WEEKDAY]],
                mode="markers",
                marker=SIGNIFICANT_MARKER,
                name="differs from the rest of the week (Mann-Whitney, Benjamini-Hochberg corrected)",
                hoverinfo="skip",
            )
        )
    _mark_sessions(fig, tz)
    _outline_weekend(fig, {cell for cell, part in share.items() if part >= 0.5})
    fig.update_layout(
        template=theme.TEMPLATE,
        height=460,
        hovermode="closest",
        title=_title(title or f"{symbol} · {MEASURES[measure].label}, by hour of the week ({stat}, {tz})", subtitle),
        xaxis={
            "title": {"text": f"hour ({tz})"},
            "tickmode": "array",
            "tickvals": list(range(0, 24, 2)),
            "ticktext": [f"{h:02d}:00" for h in range(0, 24, 2)],
            "showgrid": False,
            "range": [-0.5, 23.5],
        },
        yaxis={"autorange": "reversed", "showgrid": False},
        showlegend=True,
        legend={"y": -0.16, "yanchor": "top", "x": 0, "xanchor": "left"},
        # a right margin wider than any colour bar: the bar then pushes none, and the hour columns
        # of every asset's heatmap line up when they are stacked
        margin={"t": 110, "b": 90, "r": 120},
    )
    return _framed(fig)


def day_of_week_bars(
    means: pl.DataFrame,
    measure: str,
    *,
    tests: pl.DataFrame | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> go.Figure:
    """Mean daily `measure` per weekday with its HAC confidence interval, from `day_of_week_means`
    (one bar group per symbol; weekend bars hatched). `tests` (`day_of_week_tests`) supplies the
    default subtitle: Kruskal-Wallis and HAC Wald p-values."""
    look = display(MEASURES[measure].unit, [*means["mean"].to_list(), *means["ci_high"].to_list()])
    fig = go.Figure()
    for (symbol,), rows in means.sort(SYMBOL, WEEKDAY).group_by(SYMBOL, maintain_order=True):
        mean, low, high = (_scaled_list(rows[c], look) for c in ("mean", "ci_low", "ci_high"))
        fig.add_trace(
            go.Bar(
                x=[DAY_NAMES[d - 1] for d in rows[WEEKDAY]],
                y=mean,
                name=symbol,
                marker={
                    "color": theme.asset_color(symbol),
                    "pattern": {
                        "shape": ["/" if d >= 6 else "" for d in rows[WEEKDAY]],
                        "fillmode": "overlay",
                        "fgcolor": "white",
                    },
                },
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [h - m for h, m in zip(high, mean, strict=True)],
                    "arrayminus": [m - lo for m, lo in zip(mean, low, strict=True)],
                    "color": theme.INK,
                    "thickness": 1.2,
                    "width": 4,
                },
                customdata=[
                    f"{r['confidence']:.0%} CI {look.text(r['ci_low'])} to {look.text(r['ci_high'])}, {r['n']} days"
                    for r in rows.iter_rows(named=True)
                ],
                hovertemplate=f"{symbol} %{{x}}: {look.prefix}%{{y:{look.digits}}}{look.suffix} (%{{customdata}})"
                "<extra></extra>",
            )
        )
    fig.update_layout(
        template=theme.TEMPLATE,
        height=420,
        barmode="group",
        hovermode="closest",
        title=_title(title or f"{MEASURES[measure].label} by day of the week", subtitle or _tests_text(tests)),
        yaxis={"title": {"text": f"mean of daily values, {axis_title(measure, _first_symbol(means))}"}, **look.axis()},
        xaxis={"categoryorder": "array", "categoryarray": list(DAY_NAMES)},
    )
    return _framed(fig)


def weekend_box(
    days: pl.DataFrame,
    measure: str,
    *,
    log_y: bool | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> go.Figure:
    """Daily values of `measure` (a `daily` frame), weekday against weekend, one pair per symbol;
    the mean is the dashed line inside each box. `log_y` defaults to True for amounts and Amihud."""
    unit = MEASURES[measure].unit
    look = display(unit, days[measure].to_list())
    fig = go.Figure()
    scaled: list[float | None] = []
    for is_weekend, name, color in ((False, "weekday", WEEKDAY_COLOR), (True, "weekend", WEEKEND_COLOR)):
        side = days.filter(pl.col(WEEKEND) == is_weekend).drop_nulls(measure)
        values = _scaled_list(side[measure], look)
        scaled += values
        fig.add_trace(
            go.Box(
                x=side[SYMBOL].to_list(),
                y=values,
                name=name,
                marker={"color": color, "size": 3, "opacity": 0.5},
                line={"width": 1.2},
                boxmean=True,
                boxpoints="outliers",
            )
        )
    fig.update_layout(
        template=theme.TEMPLATE,
        height=440,
        boxmode="group",
        hovermode="closest",
        title=_title(title or f"{MEASURES[measure].label}: daily values, weekday against weekend", subtitle),
        yaxis={
            "title": {"text": axis_title(measure, _first_symbol(days))},
            **_value_axis(scaled, look, unit in LOG_UNITS if log_y is None else log_y),
        },
    )
    return _framed(fig)


def weekend_timeseries(
    days: pl.DataFrame,
    ratios: pl.DataFrame,
    measure: str,
    *,
    weekend: str = "utc",
    window: str = ROLLING_RATIO_WINDOW,
    title: str | None = None,
    subtitle: str | None = None,
) -> go.Figure:
    """Above: the daily `measure` (a `daily` frame) per symbol, weekends shaded (`weekend` "utc" or
    "cme"); below: the rolling weekend / weekday ratio (`rolling_weekend_ratio` over `window`, named
    on the axis), 1 = no difference."""
    look = display(MEASURES[measure].unit, days[measure].to_list())
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.62, 0.38])
    for (symbol,), rows in days.drop_nulls(measure).group_by(SYMBOL, maintain_order=True):
        fig.add_trace(
            go.Scatter(
                x=_noon(rows[DATE]),
                y=_scaled_list(rows[measure], look),
                name=symbol,
                mode="lines",
                line={"color": theme.asset_color(symbol), "width": 1.3},
                hovertemplate=f"{symbol} {look.prefix}%{{y:{look.digits}}}{look.suffix}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    for (symbol,), rows in ratios.drop_nulls("ratio").group_by(SYMBOL, maintain_order=True):
        fig.add_trace(
            go.Scatter(
                x=_noon(rows[DATE]),
                y=rows["ratio"].to_list(),
                name=f"{symbol} weekend / weekday",
                mode="lines",
                line={"color": theme.asset_color(symbol), "width": 1.6},
                showlegend=False,
                hovertemplate=f"{symbol} weekend / weekday %{{y:.2f}}×<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.add_hline(y=1, line={"color": theme.MUTED, "width": 1, "dash": "dot"}, row=2, col=1)
    if days.height and ratios.drop_nulls("ratio").is_empty():
        fig.add_annotation(text=f"The trailing {window} ratio needs a range longer than {window}", showarrow=False,
                           xref="x2 domain", yref="y2 domain", x=0.5, y=0.5, font={"size": 12, "color": theme.MUTED})
    if days.height:
        start = datetime.combine(days[DATE].min(), time())
        end = datetime.combine(days[DATE].max(), time.max)  # 23:59:59.999999, not the next day's weekend
        theme.add_weekend_shading(fig, start, end, definition=weekend)
    fig.update_layout(
        template=theme.TEMPLATE,
        height=560,
        title=_title(title or f"{MEASURES[measure].label}, daily, weekends shaded", subtitle),
        yaxis={"title": {"text": axis_title(measure, _first_symbol(days))}, **look.axis()},
        yaxis2={"title": {"text": f"weekend / weekday, trailing {window}"}, "ticksuffix": "×", "hoverformat": ".2f"},
        xaxis2={"hoverformat": "%a %d %b %Y"},
    )
    return _framed(fig)


def event_comparison_chart(
    table: pl.DataFrame,
    *,
    measures: Sequence[str] | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> go.Figure:
    """Each measure during each event divided by its value in the same hours of the weeks before
    (an `event_comparison` table of one symbol, of `CASCADES`), on a log axis: 2× and 0.5× are
    equally far from 1. The default subtitle gives the baseline and each event's hours."""
    symbol = _one_symbol(table)
    rows = table.filter(pl.col("ratio").is_not_null())
    names = set(rows["event"].to_list())
    windows = ", ".join(f"{e.start:%a %d %b %H:%M} to {e.end:%a %d %b %H:%M}" for e in CASCADES if e.name in names)
    subtitle = subtitle or (f"Each measure in the event's hours ({windows} UTC) against the same hours of the "
                            f"{BASELINE_WEEKS} weeks before: Saturdays against Saturdays, so weekly and daily patterns cancel")
    if measures is not None:
        rows = rows.filter(pl.col(MEASURE).cast(pl.String).is_in(list(measures)))
    order = [m for m in MEASURES if m in set(rows[MEASURE].cast(pl.String).to_list())]
    fig = go.Figure()
    for color, (event,) in zip(EVENT_COLORS, rows.select("event").unique(maintain_order=True).rows(), strict=False):
        part = rows.filter(pl.col("event") == event).with_columns(pl.col(MEASURE).cast(pl.String))
        by_measure = {r[MEASURE]: r for r in part.iter_rows(named=True)}
        shown = [m for m in order if m in by_measure]
        fig.add_trace(
            go.Bar(
                y=[MEASURES[m].label for m in shown],
                x=[by_measure[m]["ratio"] - 1 for m in shown],
                base=1,
                name=event,
                orientation="h",
                marker={"color": color},
                text=[f"{by_measure[m]['ratio']:.2f}×" for m in shown],
                textposition="outside",
                cliponaxis=False,
                customdata=[_event_text(by_measure[m]) for m in shown],
                hovertemplate="%{customdata}<extra>" + event + "</extra>",
            )
        )
    fig.add_vline(x=1, line={"color": theme.INK, "width": 1})
    low, high = min(rows["ratio"].min() or 1.0, 1.0), max(rows["ratio"].max() or 1.0, 1.0)
    ticks = [t for t in RATIO_TICKS if low / 2 <= t <= high * 2]
    fig.update_layout(
        template=theme.TEMPLATE,
        height=max(360, 60 + 46 * len(order)),
        barmode="group",
        hovermode="closest",
        title=_title(
            title or f"{symbol} liquidity in the cascades against the same hours of the weeks before", subtitle
        ),
        xaxis={
            "type": "log",
            "range": [math.log10(low / EVENT_AXIS_PAD), math.log10(high * EVENT_AXIS_PAD)],
            "title": {"text": "event / baseline, log scale (1× = unchanged)"},
            "tickvals": ticks,
            "ticktext": [f"{t:g}×" for t in ticks],
        },
        yaxis={"autorange": "reversed", "showgrid": False},
    )
    framed = _framed(fig)  # long measure names push the plot right: the title starts at the chart's edge instead
    return framed.update_layout(title={"xref": "container", "x": 0, "pad": {"l": EDGE_PAD}})


def weekend_moves_chart(
    moves: pl.DataFrame,
    *,
    mark: Event | None = CASCADES[0],
    title: str | None = None,
    subtitle: str | None = None,
) -> go.Figure:
    """Every weekend's move from Friday's close to Monday's open (a bar per asset) and how far under
    Friday's close it traded meanwhile (the bar's whisker reaches down to that low), from a
    `weekend_moves` table. A weekend still under way at the end of the data (`with_so_far`) is
    drawn hatched, to its last close; one with no Friday close is left out, and
    the subtitle's statistics count complete weekends only. The weekend of `mark` (the Saturday
    31 Jan 2026 cascade by default) is labelled when it is in range."""
    drawn = with_so_far(moves).drop_nulls("move").sort(SYMBOL, "start")
    complete = drawn.filter(~pl.col("so_far"))
    fig = go.Figure()
    for (symbol,), part in complete.group_by(SYMBOL, maintain_order=True):
        fig.add_trace(_weekend_bars(symbol, part, f"{symbol} Fri close → Mon open", {}))
    for (symbol,), part in drawn.filter(pl.col("so_far")).group_by(SYMBOL, maintain_order=True):
        hatched = {"shape": "/", "fillmode": "overlay", "fgcolor": "white"}
        fig.add_trace(_weekend_bars(symbol, part, f"{symbol} weekend so far", hatched))
    marked = (drawn.filter((pl.col("start") <= mark.start) & (pl.col("end").is_null() | (pl.col("end") > mark.start)))
              if mark else drawn.clear())
    if marked.height:
        fig.add_annotation(x=marked["start"][0], y=float(marked["max_drawdown"].min()), yshift=-14, showarrow=False,
                           text=mark.name, font={"size": 11, "color": theme.INK})
    fig.update_layout(
        template=theme.TEMPLATE,
        height=420,
        barmode="group",
        hovermode="closest",
        title=_title(title or "Every weekend: Friday close → Monday open (bars) and the low in between (whiskers)",
                     subtitle or _weekend_moves_text(complete)),
        yaxis={"tickformat": ".0%", "title": {"text": "from Friday's close"}},
        xaxis={"type": "date"},
    )
    return _framed(fig)


def _weekend_bars(symbol: str, part: pl.DataFrame, name: str, pattern: dict[str, str]) -> go.Bar:
    """One asset's weekends as bars (an offset group per asset, so its weekend under way sits in its
    own slot), each with a whisker from the move down to the weekend's low."""
    under = (part["move"] - part["max_drawdown"]).clip(lower_bound=0)
    return go.Bar(
        x=part["start"].to_list(), y=part["move"].to_list(), name=name, offsetgroup=symbol,
        marker={"color": theme.asset_color(symbol), "pattern": pattern},
        error_y={"type": "data", "symmetric": False, "array": [0.0] * part.height, "arrayminus": under.to_list(),
                 "color": theme.INK, "thickness": 1, "width": 2},
        customdata=[_weekend_text(symbol, row) for row in part.iter_rows(named=True)],
        hovertemplate="%{customdata}<extra></extra>",
    )


def _weekend_text(symbol: str, row: dict) -> str:
    to = (f"last close {row['last_close']:,.2f} so far" if row["monday_open"] is None
          else f"Monday open {row['monday_open']:,.2f}")
    return (f"<b>{symbol}</b>, weekend from {row['start']:%a %d %b %Y %H:%M} UTC<br>Friday close "
            f"{row['friday_close']:,.2f} → {to} ({row['move']:+.1%})<br>"
            f"low {row['low']:,.2f} ({row['max_drawdown']:+.1%} from Friday's close)")


def _weekend_moves_text(moves: pl.DataFrame) -> str:
    """Per asset: the median absolute weekend move, the worst one, and how often the weekend traded 5 % under Friday."""
    parts = []
    for (symbol,), part in moves.group_by(SYMBOL, maintain_order=True):
        worst = part.sort("move").row(0, named=True)
        deep = int((part["max_drawdown"] <= -WEEKEND_FALL).sum())
        parts.append(f"{symbol}: median |move| {part['move'].abs().median():.1%}, worst {worst['move']:+.1%} "
                     f"(from {worst['start']:%d %b %Y}), low {-WEEKEND_FALL:.0%} or worse on {deep} of {part.height}")
    return " · ".join(parts)


def share_of_week_by_year(
    shares: pl.DataFrame,
    *,
    title: str | None = None,
    subtitle: str | None = None,
) -> go.Figure:
    """Each weekday's share of the year's volume, stacked to 100 % per year, from
    ``share_of_volume(..., by=(WEEKDAY,), within=(YEAR,))`` of one symbol; Saturday and Sunday in
    the asset's colour, the weekend share written above each bar (Kaiko's headline figure)."""
    symbol = _one_symbol(shares)
    shares = shares.filter(pl.col("share").is_not_null() & pl.col("share").is_not_nan())
    years = sorted(shares[YEAR].unique().to_list())
    grey = ("#DDE2E8", "#CDD4DC", "#BCC5CF", "#ABB6C2", "#9AA7B5")
    fig = go.Figure()
    for day in range(1, 8):
        part = {y: s for y, s in shares.filter(pl.col(WEEKDAY) == day).select(YEAR, "share").rows()}
        fig.add_trace(
            go.Bar(
                x=[str(y) for y in years],
                y=[part.get(y) for y in years],
                name=DAY_NAMES[day - 1],
                marker={
                    "color": grey[day - 1] if day <= 5 else theme.asset_color(symbol),
                    "opacity": 1 if day != 6 else 0.7,
                    "line": {"color": "white", "width": 0.6},
                },
                hovertemplate=f"{DAY_NAMES[day - 1]} %{{x}}: %{{y:.1%}} of the year's volume<extra></extra>",
            )
        )
    weekend = shares.filter(pl.col(WEEKDAY) >= 6).group_by(YEAR).agg(pl.col("share").sum()).sort(YEAR)
    fig.add_trace(
        go.Scatter(
            x=[str(y) for y in weekend[YEAR]],
            y=[1.0] * weekend.height,
            mode="text",
            text=[f"{s:.1%}" for s in weekend["share"]],
            textposition="top center",
            textfont={"color": theme.INK, "size": 12},
            name="weekend share",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.update_layout(
        template=theme.TEMPLATE,
        height=440,
        barmode="stack",
        hovermode="closest",
        title=_title(
            title or f"{symbol} share of each year's volume by day of the week",
            subtitle or "Weekend share above each bar; an even week would give Saturday + Sunday 28.6 %",
        ),
        xaxis={"type": "category"},
        yaxis={"tickformat": ".0%", "range": [0, 1.09], "title": {"text": "share of the year's volume"}},
        legend={"traceorder": "normal"},
    )
    return _framed(fig)


# ---------------------------------------------------------------------------------------------
# Helpers


def _title(text: str, subtitle: str | None) -> dict[str, Any]:
    return {"text": text, "subtitle": {"text": subtitle or ""}}


def _framed(fig: go.Figure) -> go.Figure:
    """The shared title / subtitle / legend framing of lib.charts.theme (nothing overlaps); a
    legend the builder put under the plot stays there."""
    below = fig.layout.legend.to_plotly_json() if (fig.layout.legend.y or 0) < 0 else None
    theme.frame(fig, fig.layout.title.text, fig.layout.title.subtitle.text or "", fig.layout.height)
    return fig.update_layout(legend=below) if below else fig


def _one_symbol(frame: pl.DataFrame) -> str:
    symbols = frame[SYMBOL].unique().to_list() if SYMBOL in frame.columns else []
    if len(symbols) > 1:
        raise ValueError(f"this chart draws one symbol; got {sorted(symbols)}")
    return symbols[0] if symbols else ""


def _first_symbol(frame: pl.DataFrame) -> str:
    return frame[SYMBOL][0] if frame.height and SYMBOL in frame.columns else ""


def _measure_rows(table: pl.DataFrame, measure: str) -> pl.DataFrame:
    return table.filter(pl.col(MEASURE).cast(pl.String) == measure)


def _scaled(value: float | None, look: Display) -> float | None:
    return None if value is None else value * look.scale


def _scaled_list(values: pl.Series, look: Display) -> list[float | None]:
    return (values.cast(pl.Float64) * look.scale).to_list()


def _noon(dates: pl.Series) -> list[datetime]:
    return [datetime.combine(d, time()) + NOON for d in dates]


def _cell_text(day: int, hour: int, row: dict | None, q: float | None, weekend: float | None, measure: str,
               look: Display, tz: str) -> str:
    head = f"<b>{DAY_NAMES[day - 1]} {hour:02d}:00-{(hour + 1) % 24:02d}:00 {tz}</b>"
    if row is None:
        return f"{head}<br>no data"
    test = "" if q is None else f"<br>against the rest of the week: q = {q:.2g} (Benjamini-Hochberg)"
    part = f"<br>weekend for {weekend:.0%} of its bars" if weekend and weekend < 1 else ""  # e.g. "cme" across DST
    return (
        f"{head}<br>{MEASURES[measure].label}: {look.text(row[MEAN])} (mean)"
        f"<br>median {look.text(row[MEDIAN])} · {row[N]:,} bars{test}{part}"
    )


def _outline_weekend(fig: go.Figure, cells: set[tuple[int, int]]) -> None:
    """A line between the weekend `cells` (weekday 1-7, hour) and the others, inside the grid: a
    straight line above Saturday for the UTC calendar weekend, a staircase for a window that opens
    and closes within a day. Rows sit at y = weekday − 1, columns at x = hour."""
    edges = []
    for day, hour in cells:
        y, x = day - 1, hour
        if day > 1 and (day - 1, hour) not in cells:
            edges.append(((x - 0.5, y - 0.5), (x + 0.5, y - 0.5)))
        if day < 7 and (day + 1, hour) not in cells:
            edges.append(((x - 0.5, y + 0.5), (x + 0.5, y + 0.5)))
        if hour > 0 and (day, hour - 1) not in cells:
            edges.append(((x - 0.5, y - 0.5), (x - 0.5, y + 0.5)))
        if hour < 23 and (day, hour + 1) not in cells:
            edges.append(((x + 0.5, y - 0.5), (x + 0.5, y + 0.5)))
    if edges:
        path = " ".join(f"M{x0},{y0} L{x1},{y1}" for (x0, y0), (x1, y1) in sorted(edges))
        line = {"color": theme.INK, "width": 1.2}
        fig.add_shape(type="path", path=path, xref="x", yref="y", line=line)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=line, name="weekend: the cells inside the line"))


def _mark_sessions(fig: go.Figure, tz: str) -> None:
    """Dotted lines where sessions start, labelled above the heatmap (a boundary at hh:30 falls in
    the middle of the hh:00 cell)."""
    marks = SESSION_MARKS.get(tz, ())
    for start, label in marks:
        x = start - 0.5
        if start > 0:
            fig.add_vline(x=x, line={"color": theme.INK, "width": 1, "dash": "dot"})
        fig.add_annotation(
            x=x,
            y=1.0,
            xref="x",
            yref="paper",
            text=label,
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            font={"size": 11, "color": theme.MUTED},
        )


def _tests_text(tests: pl.DataFrame | None) -> str | None:
    if tests is None or not tests.height:
        return None
    return " · ".join(
        f"{r[SYMBOL]}: Kruskal-Wallis p = {r['p_kruskal']:.2g}, HAC Wald p = {r['p_hac_wald']:.2g} ({r['n_days']} days)"
        for r in tests.iter_rows(named=True)
    )


def _event_text(row: dict) -> str:
    look = display(MEASURES[row[MEASURE]].unit, [row["event_value"], row["baseline_value"]])
    return f"{MEASURES[row[MEASURE]].label}: {look.text(row['event_value'])} against {look.text(row['baseline_value'])}"


def _value_axis(values: Sequence[float | None], look: Display, log: bool) -> dict[str, Any]:
    """A value axis: linear from zero, or log with 1-2-5 ticks labelled in the unit (plotly's own
    log ticks would read "2, 3, 4, $100.00M")."""
    if not log:
        return {"rangemode": "tozero", **look.axis()}
    positive = [v for v in values if v is not None and v > 0]
    if not positive:
        return {"type": "log", **look.axis()}
    low, high = min(positive), max(positive)
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    ticks = [m * 10.0**e for e in decades for m in LOG_TICK_MANTISSAS if low / 1.2 <= m * 10.0**e <= high * 1.2]
    return {
        "type": "log",
        "tickvals": ticks,
        "ticktext": [f"{look.prefix}{t:,g}{look.suffix}" for t in ticks],
        "hoverformat": look.digits,
    }
