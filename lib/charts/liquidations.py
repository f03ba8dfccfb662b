"""Liquidation figures, built from `lib.analytics.liquidations` and `lib.analytics.liquidation_levels`.

- `realised_heatmap_figure`: measured liquidation USD by time × price, price on top, long and short
  liquidation bars underneath on the same time axis; the placement rule in the subtitle;
- `estimated_heatmap_figure`: the estimated open levels by time × price (like CoinGlass model 1),
  price on top, the levels each bar traded through underneath; the assumptions in the subtitle;
- `liquidation_map_figure`: the levels open now, price × leverage tier, with the cumulative long and
  short curves and the current price; `replay_figure`: the same map at each step of a window,
  animated, with a play button and a step slider;
- `scorecard_figure`: realised liquidations caught by the model's zone and by a naive band.

Colour is ABSOLUTE USD by default, up to `usd_range` (pass the same range for BTC, ETH and SOL
to compare them) or to the chart's own maximum; ``scale="relative"`` shows shares of the chart's
maximum instead, as CoinGlass and Kingfisher do, and says so on the colour bar. The realised
heatmap's absolute scale is logarithmic (`LOG_DECADES` below the top, ticks in USD): measured
liquidations are heavy-tailed (on a year of real hourly BTC the median cell is 1/20 of the largest),
so a linear scale left almost every cell white. The estimated levels pile up into broad clusters,
and a linear scale is what picks out the largest of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from lib.analytics.liquidation_levels import (
    BASELINE_BAND,
    LevelEstimate,
    Spread,
    fragility,
    level_curves,
    level_map,
)
from lib.analytics.liquidations import (
    LONG,
    SHORT,
    Grid,
    Side,
    grid_between,
    grid_since,
    nice_bucket_usd,
    resample_grid,
)
from lib.charts import theme
from lib.schema import TS

Scale = Literal["absolute", "relative"]
ColourScale = Literal["absolute", "log", "relative"]

# Light for little, dark violet for a lot, amber for the largest clusters: empty cells stay white
# and the scale never reuses the long (red) and short (green) colours.
HEATMAP_COLORSCALE: list[list[Any]] = [
    [0.0, "#F3F0FA"],
    [0.15, "#C9B8E8"],
    [0.4, "#8A63C8"],
    [0.7, "#4B2A8C"],
    [0.88, "#D9822B"],
    [1.0, "#F5C542"],
]
TIER_SCALE: list[list[Any]] = [[0.0, "#C7D2FE"], [1.0, "#0B1240"]]  # leverage tiers, light (low) to dark (high)
# Hollow up candles and a see-through down body, so the cells under the price stay visible.
CANDLE_UP, CANDLE_DOWN = "rgba(255, 255, 255, 0)", "rgba(31, 41, 51, 0.45)"
PRICE_LINE = "rgba(31, 41, 51, 0.75)"
MODEL_COLOR = "#6D3FC0"

BELOW = "below"  # the stackgroup of the longs and shorts steps under the price
MAX_HEATMAP_CELLS = 90_000  # cells sent (float32, base64: ~0.5 MB); more draw slowly (~1 s each for 180k); time columns merged beyond
# Time columns drawn: about 2 px each on a ~800 px wide plot. Narrower cells are lost when the
# browser scales the heatmap image down to the plot (a 6-month view of 4 h cells: 1,095 columns).
MAX_TIME_COLUMNS = 400
MAX_CANDLES = 400  # above this many bars the price is a line: candles turn to noise
MAP_WINDOW = 0.25  # the liquidation map shows the last price ± 25 %
REALISED_VIEW_MARGIN = 0.01  # the realised heatmap shows the price's range ± 1 % (where the cells are)
ESTIMATED_VIEW_MARGIN = 0.10  # the estimated heatmap shows the price's range ± 10 %: the levels in reach
COLORBAR_TICKS = 5
LOG_DECADES = 3  # the log colour scale: three decades up to the largest cell; smaller cells take its lightest colour
USD_UNITS: tuple[tuple[float, str], ...] = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))
HEATMAP_HEIGHT, MAP_HEIGHT, SCORECARD_HEIGHT = 720, 600, 460


def usd_text(value: float) -> str:
    """USD for people: "$1.25B", "$980M", "$12.5K", "$950", "-$3.2M"; three significant digits."""
    sign = "-" if value < 0 else ""
    size = abs(value)
    scale, unit = next(((limit, unit) for limit, unit in USD_UNITS if size >= limit), (1.0, ""))
    number = size / scale
    decimals = 0 if number >= 100 else 1 if number >= 10 else 2
    text = f"{number:.{decimals}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return f"{sign}${text}{unit}"


def usd_range_text(low: float, high: float) -> str:
    """A range of USD for people: "$9.6M–$52.2M"."""
    return f"{usd_text(low)}–{usd_text(high)}"


def usd_ticks(top: float, count: int = COLORBAR_TICKS) -> tuple[list[float], list[str]]:
    """Round tick values from 0 up to `top` and their `usd_text` labels."""
    if top <= 0:
        return [0.0], ["$0"]
    step = nice_bucket_usd(0.0, top, count - 1)
    values = [i * step for i in range(int(top // step) + 1)]
    return values, [usd_text(v) for v in values]


# ---------------------------------------------------------------------------------------------
# Heatmaps


def realised_heatmap_figure(
    grid: Grid,
    bars: pl.DataFrame,
    *,
    side: Side = "both",
    scale: Scale = "absolute",
    usd_range: float | None = None,
    title: str = "Realised liquidations",
) -> go.Figure:
    """Measured liquidations: the `grid` (from `realised_heatmap`) as a heatmap of `side`, the price
    of `bars` over it, and long / short liquidation bars per grid row under it. The subtitle gives
    the placement rule, the bucket size and the totals."""
    shown = resample_grid(grid, _rows_per_column(grid), "sum")
    totals = f"longs {usd_text(grid.long_usd.sum())}, shorts {usd_text(grid.short_usd.sum())}"
    unplaced = f" · {usd_text(grid.unplaced_usd)} without a price bar not drawn" if grid.unplaced_usd else ""
    subtitle = f"Measured · {grid.method} · {usd_text(grid.bucket_usd)} price buckets · {totals}{unplaced}"
    return _heatmap_figure(
        shown,
        bars,
        side=side,
        scale="log" if scale == "absolute" else scale,
        usd_range=usd_range,
        bars_below=(shown.long_usd.sum(axis=1), shown.short_usd.sum(axis=1)),
        below_title="Liquidated",
        title=title,
        subtitle=subtitle,
        unit=f"USD per {_cell_text(shown)} cell",
        view_margin=REALISED_VIEW_MARGIN,
    )


def estimated_heatmap_figure(
    estimate: LevelEstimate,
    bars: pl.DataFrame,
    *,
    side: Side = "both",
    scale: Scale = "absolute",
    usd_range: float | None = None,
    since: datetime | None = None,
    title: str = "Estimated liquidation levels",
) -> go.Figure:
    """Estimated open levels after each bar (`estimate_levels`) as a heatmap of `side`, with the price
    over it and, under it, the level USD each bar traded through (the model's own liquidations).
    Rows before `since` (the model's warm-up) are not drawn. The subtitle lists the main
    assumptions and says these are estimates."""
    window = grid_since(estimate.density, since)
    rows_per_column = _rows_per_column(window)
    shown = resample_grid(window, rows_per_column, "last")
    consumed = _merge_rows(estimate.consumed_usd[len(estimate.density.ts) - len(window.ts):], rows_per_column)
    return _heatmap_figure(
        shown,
        bars,
        side=side,
        scale=scale,
        usd_range=usd_range,
        bars_below=(consumed[:, 0], consumed[:, 1]),
        below_title="Levels hit",
        title=title,
        subtitle=estimate.density.method,
        unit=f"USD open per {usd_text(shown.bucket_usd)} bucket",  # a level after the column's last bar, not a flow
        view_margin=ESTIMATED_VIEW_MARGIN,
        halo=True,
    )


def _heatmap_figure(
    grid: Grid,
    bars: pl.DataFrame,
    *,
    side: Side,
    scale: ColourScale,
    usd_range: float | None,
    bars_below: tuple[np.ndarray, np.ndarray],
    below_title: str,
    title: str,
    subtitle: str,
    unit: str,
    view_margin: float,
    halo: bool = False,
) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.03, row_heights=[0.74, 0.26])
    x = _epoch_ms(grid.ts)
    inside = bars.sort(TS).filter(pl.col(TS).is_between(grid.ts.min(), grid.ts.max())) if len(x) else bars.clear()
    view = _price_view(grid, inside, view_margin)
    shown = grid_between(grid, *view) if view else grid
    matrix = shown.side(side)
    top = float(matrix.max()) if matrix.size else 0.0
    colour, value = _colour(matrix, scale, usd_range or top, unit)
    fig.add_trace(
        go.Heatmap(
            x=x,
            y=shown.centre,
            **colour,
            colorscale=HEATMAP_COLORSCALE,
            name=f"{_side_text(side)} USD",
            hovertemplate=f"%{{x|{theme.DATE_HOVER}}}<br>price %{{y:$,.0f}}<br>{value}<extra></extra>",
            hoverongaps=False,
        ),
        row=1,
        col=1,
    )
    for trace in _price_traces(inside, halo):
        fig.add_trace(trace, row=1, col=1)
    for name, values, color in zip(("Longs", "Shorts"), bars_below, (theme.LONG_COLOR, theme.SHORT_COLOR), strict=True):
        # stacked steps, not go.Bar: one SVG path instead of one per bar (a year: 2,000 fewer, 0.1 s a draw)
        fig.add_trace(
            go.Scatter(x=x, y=values, name=f"{name} {below_title.lower()}", mode="lines", stackgroup=BELOW,
                       line={"shape": "hvh", "width": 0, "color": color}, fillcolor=color,
                       hovertemplate="%{y:$,.0f}<extra>" + name + "</extra>"),
            row=2,
            col=1,
        )
    values, text = usd_ticks(float((bars_below[0] + bars_below[1]).max()) if len(x) else 0.0, 3)
    theme.frame(fig, title, subtitle, HEATMAP_HEIGHT)
    fig.update_layout(hovermode="closest", legend_traceorder="normal")
    fig.update_xaxes(type="date", hoverformat=theme.DATE_HOVER, rangeslider_visible=False)
    fig.update_xaxes(showgrid=False, row=1, col=1)
    fig.update_yaxes(title_text="Price (USD)", tickprefix="$", tickformat=",.0f", showgrid=False,
                     range=list(view) if view else None, row=1, col=1)
    fig.update_yaxes(title_text=below_title, tickvals=values, ticktext=text, row=2, col=1)
    return fig


def colour_top(fig: go.Figure) -> float:
    """USD of the largest cell the heatmap of `fig` (a figure of this module) draws; 0 if none."""
    cells = next(trace for trace in fig.data if isinstance(trace, go.Heatmap))
    values = np.asarray(cells.customdata if cells.customdata is not None else cells.z, dtype=float)
    return float(np.nanmax(values)) if np.isfinite(values).any() else 0.0


def with_colour_top(fig: go.Figure, top: float, shared_by: Sequence[str]) -> go.Figure:
    """A copy of `fig` (a linear absolute-USD heatmap of this module) coloured from 0 to `top`, the
    largest cell of the charts of `shared_by`, and saying so on its colour bar: the same colour is
    then the same USD on each of them."""
    cells = next(trace for trace in fig.data if isinstance(trace, go.Heatmap))
    title = f"{cells.colorbar.title.text} (scale shared by {', '.join(shared_by)})"
    return go.Figure(fig).update_traces(**_linear_range(top), colorbar_title_text=title, selector={"type": "heatmap"})


def _price_view(grid: Grid, bars: pl.DataFrame, margin: float) -> tuple[float, float] | None:
    """The price span drawn: the bars' low to high, widened by `margin` × price on each side (the
    whole grid when there are no bars)."""
    if bars.is_empty():
        return (float(grid.price[0]), float(grid.price[-1] + grid.bucket_usd)) if grid.price.size else None
    return float(bars["low"].min()) * (1 - margin), float(bars["high"].max()) * (1 + margin)


def _rows_per_column(grid: Grid) -> int:
    """Grid rows merged into one time column so that at most `MAX_HEATMAP_CELLS` cells and
    `MAX_TIME_COLUMNS` columns are drawn."""
    columns = max(min(MAX_HEATMAP_CELLS // max(grid.price.size, 1), MAX_TIME_COLUMNS), 1)
    return max(math.ceil(len(grid.ts) / columns), 1)


def _merge_rows(values: np.ndarray, rows_per_cell: int) -> np.ndarray:
    """Sums of every `rows_per_cell` consecutive rows (as `resample_grid` merges a flow)."""
    return np.add.reduceat(values, np.arange(0, len(values), rows_per_cell), axis=0) if len(values) else values


def _colour(matrix: np.ndarray, scale: ColourScale, top: float, unit: str) -> tuple[dict[str, Any], str]:
    """The heatmap's colour arguments (z as time × price with empty cells blank, zmin, zmax, colour
    bar, customdata) and the hover's text of a cell: absolute USD, its log10 (ticks in USD; the hover
    reads the USD from customdata), or shares of the maximum."""
    z = np.where(matrix > 0, matrix, np.nan).astype(np.float32).T
    bar: dict[str, Any] = {"thickness": 12, "len": 0.72, "y": 1.0, "yanchor": "top", "outlinewidth": 0}
    if scale == "relative":
        peak = float(np.nanmax(z)) if np.isfinite(z).any() else 1.0
        bar.update(title={"text": "share of the chart's largest cell", "side": "right"}, tickformat=".0%")
        return {"z": z / peak, "zmin": 0.0, "zmax": 1.0, "colorbar": bar}, "%{z:.1%} of max"
    if scale == "log":
        hi = math.log10(max(top, 1.0))
        ticks = [10.0**k for k in range(math.ceil(hi - LOG_DECADES), math.floor(hi) + 1)]
        bar.update(title={"text": f"{unit} (log)", "side": "right"},
                   tickvals=[math.log10(t) for t in ticks], ticktext=[usd_text(t) for t in ticks])
        log = {"z": np.log10(z), "zmin": hi - LOG_DECADES, "zmax": hi, "colorbar": bar, "customdata": z}
        return log, "%{customdata:$,.0f}"
    linear = _linear_range(top)
    bar.update(title={"text": unit, "side": "right"}, **linear.pop("colorbar"))
    return {"z": z, **linear, "colorbar": bar}, "%{z:$,.0f}"


def _linear_range(top: float) -> dict[str, Any]:
    """A linear absolute colour range from $0 to `top`, with round USD ticks."""
    values, text = usd_ticks(top)
    return {"zmin": 0.0, "zmax": max(top, 1e-9), "colorbar": {"tickvals": values, "ticktext": text}}


def _cell_text(grid: Grid) -> str:
    step = grid.ts.diff().drop_nulls().min() if len(grid.ts) > 1 else None
    width = usd_text(grid.bucket_usd)
    return f"{width} × {_duration_text(step)}" if step else f"{width} bucket"


def _price_traces(bars: pl.DataFrame, halo: bool) -> list[go.BaseTraceType]:
    """Candles over few bars, else a close line; `halo` draws a white band under the line so it
    reads over dark cells."""
    x = _epoch_ms(bars[TS])
    if bars.height <= MAX_CANDLES:
        return [go.Candlestick(
            x=x, open=bars["open"].to_numpy(), high=bars["high"].to_numpy(), low=bars["low"].to_numpy(),
            close=bars["close"].to_numpy(), name="Price",
            increasing={"line": {"color": PRICE_LINE, "width": 1}, "fillcolor": CANDLE_UP},
            decreasing={"line": {"color": PRICE_LINE, "width": 1}, "fillcolor": CANDLE_DOWN},
        )]
    close = bars["close"].to_numpy()
    under = [go.Scatter(x=x, y=close, mode="lines", line={"color": "white", "width": 3.5}, showlegend=False,
                        hoverinfo="skip")] if halo else []
    return [*under, go.Scatter(x=x, y=close, name="Close", mode="lines", line={"color": PRICE_LINE, "width": 1.2},
                               hovertemplate="close %{y:$,.0f}<extra></extra>")]


# ---------------------------------------------------------------------------------------------
# The liquidation map


@dataclass(frozen=True)
class _MapData:
    """What the map draws of one estimate: the window around the last price, each tier's bars and
    each side's cumulative curve (x: bucket centres), and the tops of both."""

    price: float
    low: float
    high: float
    tiers: list[tuple[float, np.ndarray, np.ndarray]]  # leverage, x, long + short USD
    curves: dict[str, tuple[np.ndarray, np.ndarray]]  # side -> x, cumulative USD
    bars_top: float
    curve_top: float
    when: datetime
    method: str

    def subtitle(self, note: str = "") -> str:
        """When the levels stood, a `note` on what else is drawn, and how they were estimated."""
        return f"Levels open at {self.when.strftime(theme.DATE_TEXT)} UTC{note} · {self.method}"


def _map_data(estimate: LevelEstimate, window: float) -> _MapData:
    price = estimate.last_price
    low, high = price * (1 - window), price * (1 + window)
    half = estimate.density.bucket_usd / 2
    mapped = level_map(estimate).filter((pl.col("price") + half).is_between(low, high))
    curves = level_curves(estimate).filter((pl.col("price") + half).is_between(low, high))
    tiers = [(leverage, (tier["price"] + half).to_numpy(), (tier["long_usd"] + tier["short_usd"]).to_numpy())
             for leverage in estimate.leverage for tier in [mapped.filter(pl.col("leverage") == leverage)]]
    stacked = mapped.group_by("price").agg((pl.col("long_usd") + pl.col("short_usd")).sum().alias("usd"))
    curve_top = float(np.nanmax(curves.select(pl.col("long_cumulative_usd", "short_cumulative_usd")).to_numpy(),
                                initial=0.0)) if curves.height else 0.0
    return _MapData(price, low, high, tiers,
                    {side: _curve(curves, side, half) for side in (LONG, SHORT)},
                    float(stacked["usd"].max()) if stacked.height else 0.0, curve_top, estimate.last_ts,
                    estimate.density.method)


def _curve(curves: pl.DataFrame, side: Side, half: float) -> tuple[np.ndarray, np.ndarray]:
    """`side`'s cumulative curve of `level_curves` (bucket centres, USD) on its own side of the price
    only: it is null on the other, and those points would cost a replay's 60 frames 0.2 MB for nothing."""
    drawn = curves.drop_nulls(f"{side}_cumulative_usd")
    return (drawn["price"] + half).to_numpy(), drawn[f"{side}_cumulative_usd"].to_numpy()


def liquidation_map_figure(
    estimate: LevelEstimate, *, window: float = MAP_WINDOW, title: str = "Liquidation map", spread: Spread | None = None
) -> go.Figure:
    """Estimated levels open after the last bar, by price (within ± `window` of the last price):
    stacked bars per leverage tier, the cumulative long curve (what a fall to each price would
    liquidate) and short curve (a rise), with the range of each under other assumptions where
    `spread` is given, and the current price."""
    return _map_figure(_map_data(estimate, window), title, spread)


def _map_figure(drawn: _MapData, title: str, spread: Spread | None) -> go.Figure:
    """`liquidation_map_figure` of an estimate's map data (`_map_data`)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    colors = sample_colorscale(TIER_SCALE, np.linspace(0, 1, len(drawn.tiers)).tolist())
    for color, (leverage, x, y) in zip(colors, drawn.tiers, strict=True):
        fig.add_trace(
            go.Bar(x=x, y=y, name=f"{leverage:g}×", marker={"color": color, "line": {"width": 0}},
                   hovertemplate=f"{leverage:g}× · %{{x:$,.0f}}: %{{y:$,.0f}}<extra></extra>"),
            secondary_y=False,
        )
    ranges = None if spread is None else _ranges(spread, drawn)
    for side, color, label in ((LONG, theme.LONG_COLOR, "Cumulative longs (price falls)"),
                               (SHORT, theme.SHORT_COLOR, "Cumulative shorts (price rises)")):
        if ranges is not None:
            _range_traces(fig, ranges, side, label)
        x, y = drawn.curves[side]
        fig.add_trace(
            go.Scatter(x=x, y=y, name=label, legendgroup=label, mode="lines", line={"color": color, "width": 2},
                       connectgaps=False, hovertemplate="%{x:$,.0f}: %{y:$,.0f}<extra>" + label + "</extra>"),
            secondary_y=True,
        )
    fig.add_vline(x=drawn.price, line={"color": theme.INK, "width": 1.2, "dash": "dash"})
    fig.add_annotation(x=drawn.price, y=1.0, yref="paper", text=f"last ${drawn.price:,.0f}", showarrow=False,
                       yanchor="top", xanchor="left", xshift=4, font={"size": 11, "color": theme.INK}, bgcolor="white")
    theme.frame(fig, title, drawn.subtitle(_shaded(spread)), MAP_HEIGHT)
    fig.update_layout(barmode="stack", bargap=0.05, hovermode="closest", legend_traceorder="normal")
    fig.update_xaxes(title_text="Price (USD)", tickprefix="$", tickformat=",.0f", range=[drawn.low, drawn.high])
    _map_axes(fig, drawn.bars_top, _curve_top(drawn, ranges))
    return fig


def _ranges(spread: Spread, drawn: _MapData) -> pl.DataFrame:
    """The curves' ranges of `spread` inside the map's window."""
    return spread.curves.filter(pl.col("price").is_between(drawn.low, drawn.high))


def _shaded(spread: Spread | None) -> str:
    return "" if spread is None else f" · shaded: each curve's range over {spread.runs} assumption sets"


def _curve_top(drawn: _MapData, ranges: pl.DataFrame | None) -> float:
    """The top of the cumulative axis: the curves' and, where drawn, their ranges'."""
    if ranges is None or not ranges.height:
        return drawn.curve_top
    return max(drawn.curve_top, float(np.nanmax(ranges.select("long_high_usd", "short_high_usd").to_numpy(),
                                                initial=0.0)))


def _map_axes(fig: go.Figure, bars_top: float, curve_top: float) -> None:
    """The map's two USD axes from 0 to a little above their tops, with round ticks."""
    for secondary, top, text in ((False, bars_top, "Levels per bucket"), (True, curve_top, "Cumulative")):
        values, labels = usd_ticks(top)
        fig.update_yaxes(title_text=text, tickvals=values, ticktext=labels, range=[0, max(top, 1e-9) * 1.05],
                         showgrid=not secondary, secondary_y=secondary)


REPLAY_FRAME_MS = 400  # a step of the animation
REALISED_MARKERS = ((LONG, "Longs liquidated", "triangle-down"), (SHORT, "Shorts liquidated", "triangle-up"))
REALISED_NOTE = " · ▼ ▲ liquidations measured since the step before"


def realised_between(grid: Grid, steps: Sequence[datetime]) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per step of `steps` (sorted bar times): each side's realised USD per price bucket (centre,
    USD; non-zero buckets only) over the grid's rows after the step before it, up to this one."""
    bounds = np.searchsorted(grid.ts.to_numpy(), pl.Series(steps, dtype=grid.ts.dtype).to_numpy(), side="right")
    out = []
    for start, stop in zip(np.concatenate([[0], bounds[:-1]]), bounds, strict=True):
        summed = {side: grid.side(side)[start:stop].sum(axis=0) for side in (LONG, SHORT)}
        out.append({side: (grid.centre[usd > 0], usd[usd > 0]) for side, usd in summed.items()})
    return out


def _realised_traces(realised: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    return [{"type": "scatter", "x": realised[side][0], "y": realised[side][1]} for side, _, _ in REALISED_MARKERS]


def replay_figure(steps: Sequence[LevelEstimate], realised: Sequence[dict] | None = None, *,
                  spreads: Sequence[Spread] | None = None, window: float = MAP_WINDOW,
                  title: str = "Liquidation map, replayed") -> go.Figure:
    """`liquidation_map_figure` at each of `steps` (level estimates after successive bars) as one
    animation, a frame per step, with a play button and a slider over the steps; it opens on the
    last step. With `realised` (`realised_between` the steps), each frame also marks the
    liquidations measured since the step before, where they happened; with `spreads` (one per
    step), it shades each curve's range over assumptions at that step. Both y axes keep the largest
    top of any step, so levels being consumed show as bars and curves that shrink."""
    note = _shaded(spreads[-1] if spreads else None) + ("" if realised is None else REALISED_NOTE)
    drawn = [_map_data(step, window) for step in steps]
    subtitles = [theme.wrap(d.subtitle(_near_text(step, spread) + note))
                 for d, step, spread in zip(drawn, steps, spreads or [None] * len(steps), strict=True)]
    ranges = [None] * len(drawn) if not spreads else [_ranges(s, d) for s, d in zip(spreads, drawn, strict=True)]
    fig = _map_figure(drawn[-1], title, spreads[-1] if spreads else None)
    bars_top = max(d.bars_top for d in drawn)
    fig.update_layout(title_subtitle_text="<br>".join(subtitles[-1]),  # with room for the frames' longest
                      margin_t=theme.top_margin(max(map(len, subtitles))) + (0 if realised is None else 20))  # legend row 2
    if realised is not None:
        for (side, name, symbol), (x, y) in zip(REALISED_MARKERS, (realised[-1][s] for s, _, _ in REALISED_MARKERS),
                                                strict=True):
            color = theme.LONG_COLOR if side == LONG else theme.SHORT_COLOR
            fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="markers", marker={"symbol": symbol, "size": 9,
                                     "color": color, "line": {"width": 1, "color": "white"}},
                                     hovertemplate="%{x:$,.0f}: %{y:$,.0f} liquidated<extra></extra>"))
        bars_top = max([bars_top, *(float(y.max()) for r in realised for _, y in r.values() if y.size)])
    _map_axes(fig, bars_top, max(_curve_top(d, r) for d, r in zip(drawn, ranges, strict=True)))
    # the price's label rides on its line: a frame's annotations would replace every annotation
    # of the figure, an export's footer among them
    label = fig.layout.annotations[0]
    fig.layout.annotations = []
    line = fig.layout.shapes[0].to_plotly_json() | {"label": {
        "textposition": "end", "textangle": 0, "xanchor": "left", "yanchor": "top", "padding": 4,
        "font": {"size": label.font.size, "color": label.font.color}}}
    names = [f"{step.last_ts:%Y-%m-%d %H:%M}" for step in steps]
    fig.frames = [{  # dicts, not go.Frame: the figure validates its frames anyway (twice was 0.5 s of a replay)
        "name": name,
        "data": [{"type": "bar", "x": x, "y": y} for _, x, y in d.tiers]  # a frame's traces merge into the figure's
        + [{"type": "scatter", "x": x, "y": y} for side in (LONG, SHORT)
           for x, y in [*([] if r is None else _range_edges(r, side)), d.curves[side]]]
        + ([] if realised is None else _realised_traces(realised[i])),
        "layout": {"xaxis": {"range": [d.low, d.high]},
                   "title": {"subtitle": {"text": "<br>".join(lines)}}, "shapes": [_price_line(line, d.price)]},
    } for i, (d, r, lines, name) in enumerate(zip(drawn, ranges, subtitles, names, strict=True))]
    fig.layout.shapes = [_price_line(line, drawn[-1].price)]
    return _play_controls(fig, names)


REPLAY_BAND = 0.05  # each frame's subtitle gives what a move of this size would liquidate


def _near_text(estimate: LevelEstimate, spread: Spread | None) -> str:
    """" · longs −5 %: $101M ($43M–$163M), shorts +5 %: $13.5M (…)": what a `REPLAY_BAND` move
    would liquidate after the estimate's last bar, with its range over `spread`'s assumption sets."""
    bands = fragility(estimate, bands=(REPLAY_BAND,))
    if spread is not None:
        bands = spread.beside(bands)
    parts = []
    for row in bands.iter_rows(named=True):
        ranged = f" ({usd_range_text(row['low_usd'], row['high_usd'])})" if row.get("low_usd") is not None else ""
        word = "longs" if row["side"] == LONG else "shorts"
        parts.append(f"{word} {row['band']:+.0%}: {usd_text(row['liquidation_usd'])}{ranged}")
    return " · " + ", ".join(parts)


def _play_controls(fig: go.Figure, names: list[str]) -> go.Figure:
    """Play and Pause buttons and a slider over the frames `names`, on the last, under the plot."""
    animate = {"frame": {"duration": REPLAY_FRAME_MS, "redraw": True}, "transition": {"duration": 0}}
    return fig.update_layout(
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0, "xanchor": "left", "y": -0.12,
                      "yanchor": "top", "showactive": False, "buttons": [
                          {"label": "Play", "method": "animate", "args": [None, animate | {"fromcurrent": True}]},
                          {"label": "Pause", "method": "animate",
                           "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}]}]}],
        sliders=[{"active": len(names) - 1, "x": 0.14, "len": 0.86, "y": -0.08, "yanchor": "top",
                  "currentvalue": {"prefix": "Levels open at ", "suffix": " UTC", "xanchor": "right"},
                  "steps": [{"label": name, "method": "animate",
                             "args": [[name], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}]}
                            for name in names]}],
        margin_b=(fig.layout.margin.b or theme.MARGIN_B) + theme.CONTROLS_PX,
        height=(fig.layout.height or MAP_HEIGHT) + theme.CONTROLS_PX,
    )


def _price_line(line: dict, price: float) -> dict:
    """The map's dashed line at `price`, labelled with it."""
    return line | {"x0": price, "x1": price, "label": line["label"] | {"text": f"last ${price:,.0f}"}}


def _range_traces(fig: go.Figure, ranges: pl.DataFrame, side: Side, curve: str) -> None:
    """`side`'s cumulative curve as a band from its lowest to its highest value over the assumption
    sets of `ranges` (`levels.spread`), on the map's cumulative axis, in the legend group of the
    `curve` it surrounds (hidden and shown with it)."""
    fill = theme.LONG_RANGE_FILL if side == LONG else theme.SHORT_RANGE_FILL
    for (x, y), word, filled in zip(_range_edges(ranges, side), ("lowest", "highest"), (None, "tonexty"), strict=True):
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines", fill=filled, fillcolor=fill, line={"width": 0, "color": fill}, legendgroup=curve,
            showlegend=False, hovertemplate=f"%{{x:$,.0f}}: {word} %{{y:$,.0f}}<extra>{curve}, range</extra>",
        ), secondary_y=True)


def _range_edges(ranges: pl.DataFrame, side: Side) -> list[tuple[np.ndarray, np.ndarray]]:
    """`side`'s lowest and highest cumulative curve of `ranges`: (bucket centres, USD) each, as
    float32 (7 digits, for a shaded band; half the bytes of a replay's 60 frames of them)."""
    edges = ranges.drop_nulls(f"{side}_low_usd").select(pl.all().cast(pl.Float32))
    return [(edges["price"].to_numpy(), edges[f"{side}_{edge}_usd"].to_numpy()) for edge in ("low", "high")]


# ---------------------------------------------------------------------------------------------
# The scorecard


def scorecard_figure(
    captured: pl.DataFrame,
    summary: dict[str, float | None],
    *,
    band: float = BASELINE_BAND,
    consumption: pl.DataFrame | None = None,
    title: str = "Were the estimated levels where liquidations happened?",
) -> go.Figure:
    """Cumulative realised liquidation USD (`capture`), the part inside the model's zone and the
    part inside the naive ±`band` band of the same size; the shares (`capture_summary`) and, when
    given, the per-bar correlations (`consumption_score`) in the subtitle."""
    x = _epoch_ms(captured[TS])
    fig = go.Figure()
    lines = (("realised_usd", "All realised", theme.INK, "solid"),
             ("model_usd", "In the model's zone", MODEL_COLOR, "solid"),
             ("baseline_usd", f"Within ±{band:.0%} of price", theme.MUTED, "dash"))
    for column, name, color, dash in lines:
        fig.add_trace(go.Scatter(x=x, y=captured[column].cum_sum().to_numpy(), name=name, mode="lines",
                                 line={"color": color, "width": 2, "dash": dash},
                                 hovertemplate="%{y:$,.0f}<extra>" + name + "</extra>"))
    values, labels = usd_ticks(float(captured["realised_usd"].sum()) if captured.height else 0.0)
    parts = [_capture_text(summary, band)] + ([] if consumption is None else [_consumption_text(consumption)])
    subtitle = " · ".join(parts)
    theme.frame(fig, title, subtitle, SCORECARD_HEIGHT)
    fig.update_xaxes(type="date", hoverformat=theme.DATE_HOVER)
    fig.update_yaxes(title_text="Cumulative USD", tickvals=values, ticktext=labels)
    return fig


def _capture_text(summary: dict[str, float | None], band: float) -> str:
    if summary.get("model_share") is None:
        return "No realised liquidations to score in this window"
    baseline, lift = summary.get("baseline_share"), summary.get("lift")
    return (f"Model zone caught {summary['model_share']:.0%} of {usd_text(summary['realised_usd'] or 0)} realised; "
            f"a ±{band:.0%} band around the last close, same size, caught "
            + ("n/a" if baseline is None else f"{baseline:.0%}") + ("" if lift is None else f" (lift {lift:.2f})"))


def _consumption_text(score: pl.DataFrame) -> str:
    pairs = "; ".join(f"{row['side']}s {row['model_pearson']:.2f} vs {row['baseline_pearson']:.2f}"
                      for row in score.iter_rows(named=True) if row["model_pearson"] is not None)
    return f"Burst sizes, correlation per bar (model vs price-move baseline): {pairs}"


# ---------------------------------------------------------------------------------------------
# Shared


def _epoch_ms(ts: pl.Series) -> np.ndarray:
    """Times as float epoch milliseconds: plotly.js reads them as UTC on a date axis, compactly."""
    return ts.dt.epoch("ms").cast(pl.Float64).to_numpy()


def _side_text(side: Side) -> str:
    return {"both": "Long + short", LONG: "Long", SHORT: "Short"}[side]


def _duration_text(step: timedelta) -> str:
    hours = step.total_seconds() / 3600
    if hours >= 24 and hours % 24 == 0:
        return f"{hours / 24:g}d"
    return f"{hours:g}h" if hours >= 1 else f"{hours * 60:g}min"
