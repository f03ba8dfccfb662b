"""Drawdown figures: built from the frames of `lib.analytics.drawdowns`, formatted here.

- `drawdown_figure`: price over its running peak, the given episodes marked and shaded (decline red,
  recovery green, still under water grey), and the underwater curve below on one shared time axis;
- `episode_scatter`: every episode as depth against time under water, sized by recovery time;
  each episode's marker (here and on the price) carries its `episode_id` as customdata;
- `underwater_comparison`: the underwater curves of several assets on one axis.

Builders draw what they are given: pass downsampled frames for long 1-minute windows, and the
episodes to show (e.g. `top_episodes`). Times are UTC; the hover says so.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from lib.analytics.drawdowns import (
    ACTIVE,
    DEPTH,
    DRAWDOWN,
    PEAK,
    PEAK_PRICE,
    PEAK_TO_TROUGH_HOURS,
    PEAK_TS,
    RECOVERY_TS,
    TROUGH_PRICE,
    TROUGH_TO_RECOVERY_HOURS,
    TROUGH_TS,
    UNDERWATER_HOURS,
)
from lib.charts import theme
from lib.schema import SYMBOL, TS

WEBGL_POINTS = 20_000  # above this many points a line switches to WebGL (scattergl)
MIN_MARKER_PX, MAX_MARKER_PX = 6, 34  # bubble diameters in the episode scatter
TROUGH_LABELS = "Episode troughs"  # the underwater chart's trace of trough markers labelled "#rank depth"
# What a label ("#12 -13.3 %", under its marker) needs to itself: about 70 px of a ~1,100 px wide
# chart, and 15 px of the ~170 px underwater pane, as shares of the time shown and the deepest trough.
LABEL_ROOM_X, LABEL_ROOM_Y = 0.07, 0.1
DURATION_TICKS_DAYS: tuple[tuple[float, str], ...] = (
    (1 / 24, "1 h"),
    (6 / 24, "6 h"),
    (1, "1 d"),
    (7, "1 w"),
    (30, "1 mo"),
    (91, "3 mo"),
    (365, "1 y"),
    (3 * 365, "3 y"),
)


def drawdown_figure(
    drawdowns: pl.DataFrame,
    episodes: pl.DataFrame | None = None,
    *,
    price: str = "close",
    title: str | None = None,
    subtitle: str | None = None,
    log_price: bool = False,
    weekends: str | None = None,
) -> go.Figure:
    """Price and running peak above, drawdown below, zooming together (one shared x-axis).

    `drawdowns`: a `with_drawdown` frame of one symbol. `episodes`: the episodes to mark and shade,
    ranked by depth (#1 the deepest). `weekends`: None, "utc" or "cme" to shade weekends.
    """
    symbol = _one_symbol(drawdowns)
    x = _epoch_ms(drawdowns[TS])
    line = _line_type(drawdowns.height)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.035, row_heights=[0.64, 0.36])
    fig.add_trace(
        line(
            x=x,
            y=drawdowns[PEAK].to_numpy(),
            name="Running peak",
            line={"color": theme.MUTED, "width": 1, "dash": "dot"},
            hovertemplate=f"%{{y:{theme.PRICE_HOVER}}}",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        line(
            x=x,
            y=drawdowns[price].to_numpy(),
            name=f"{symbol} {price}".strip(),
            line={"color": theme.asset_color(symbol), "width": 1.6},
            hovertemplate=f"%{{y:{theme.PRICE_HOVER}}}",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        line(
            x=x,
            y=drawdowns[DRAWDOWN].to_numpy(),
            name="Drawdown",
            fill="tozeroy",
            fillcolor=theme.UNDERWATER_FILL,
            line={"color": theme.UNDERWATER_LINE, "width": 1},
            hovertemplate=f"%{{y:{theme.PERCENT_HOVER}}}",
        ),
        row=2,
        col=1,
    )
    if episodes is not None and episodes.height:
        ranked = episodes.sort(DEPTH, PEAK_TS).with_row_index("rank", offset=1)
        _shade_phases(fig, ranked, data_end=drawdowns[TS].max())
        _mark_episodes(fig, ranked)
        space_trough_labels(fig, (x[0], x[-1]))
    if weekends and drawdowns.height:
        theme.add_weekend_shading(fig, drawdowns[TS].min(), drawdowns[TS].max(), definition=weekends)
    lowest = drawdowns[DRAWDOWN].min() if drawdowns.height else None
    theme.frame(
        fig,
        title or f"{symbol} drawdowns".strip(),
        subtitle
        or f"{price.capitalize()} against its running peak · shaded: peak → trough (red), "
        "trough → recovery (green), still under water (grey)",
        640,
    )
    # the data's span: autorange widens it to fit the text of a trough near the start (10 days of a year)
    span = [drawdowns[TS].min(), drawdowns[TS].max()] if drawdowns.height > 1 else None
    fig.update_xaxes(type="date", hoverformat=theme.DATE_HOVER, range=span)
    fig.update_yaxes(
        title_text="Price (USD)",
        type="log" if log_price else "linear",
        dtick="D2" if log_price else None,  # log ticks at 1, 2 and 5 of each decade only
        tickformat=",",
        row=1,
        col=1,
    )
    fig.update_yaxes(
        title_text="Drawdown",
        tickformat=theme.PERCENT_AXIS,
        range=[min(lowest or 0.0, -0.01) * 1.08, 0.0],
        row=2,
        col=1,
    )
    return fig


def episode_scatter(
    episodes: pl.DataFrame, *, title: str | None = None, subtitle: str | None = None, log_x: bool = True
) -> go.Figure:
    """Each episode as a bubble: x time under water, y depth, area the recovery time (trough to
    recovery, or trough to the end of the data while still under water: open circles), colour the
    asset. Pass `episodes` (or `top_episodes`) of one or several symbols."""
    frame = episodes.with_columns(
        (pl.col(UNDERWATER_HOURS) / 24).alias("_days"),
        # Recovery time, or for an active episode the time since its trough so far.
        pl.coalesce(TROUGH_TO_RECOVERY_HOURS, pl.col(UNDERWATER_HOURS) - pl.col(PEAK_TO_TROUGH_HOURS)).alias(
            "_recovery"
        ),
        _episode_text().alias("_text"),
    )
    # Recovery times run from minutes to years: the diameter follows their log, or all but the
    # three longest would sit at the minimum size.
    largest = math.log1p(frame["_recovery"].max() or 1.0)
    fig = go.Figure()
    for symbol in sorted(frame[SYMBOL].unique().to_list()):
        part = frame.filter(pl.col(SYMBOL) == symbol)
        color = theme.asset_color(symbol)
        fig.add_trace(
            go.Scatter(
                x=part["_days"].to_numpy(),
                y=part[DEPTH].to_numpy(),
                mode="markers",
                name=symbol,
                marker={
                    "size": MIN_MARKER_PX
                    + (MAX_MARKER_PX - MIN_MARKER_PX) * np.log1p(part["_recovery"].fill_null(0).to_numpy()) / largest,
                    "color": color,
                    "opacity": 0.75,
                    "symbol": np.where(part[ACTIVE].to_numpy(), "circle-open", "circle"),
                    "line": {"color": color, "width": 1.5},
                },
                hovertext=part["_text"].to_numpy(),
                hovertemplate="%{hovertext}<extra></extra>",
                customdata=part.select(episode_id()).to_series().to_numpy(),  # a click on it names the episode
            )
        )
    theme.frame(
        fig,
        title or "Drawdown episodes: depth against time under water",
        subtitle or "Bubble size: recovery time, trough → recovery (log scale) · open circle: still under water",
        520,
    ).update_layout(hovermode="closest", legend={"itemsizing": "constant"})
    fig.update_xaxes(title_text="Time under water (peak → recovery)", **_duration_axis(frame["_days"], log_x))
    fig.update_yaxes(title_text="Depth", tickformat=theme.PERCENT_AXIS)
    return fig


def underwater_comparison(
    drawdowns: pl.DataFrame,
    *,
    together: pl.DataFrame | None = None,
    title: str | None = None,
    subtitle: str | None = None,
    weekends: str | None = None,
) -> go.Figure:
    """The drawdown curves of several symbols on one axis (pass `aligned_drawdowns` so the peaks
    start together). `together`: the `underwater_together` table, quoted in the subtitle."""
    fig = go.Figure()
    symbols = sorted(drawdowns[SYMBOL].unique().to_list())
    line = _line_type(drawdowns.height // max(len(symbols), 1))
    for symbol in symbols:
        part = drawdowns.filter(pl.col(SYMBOL) == symbol)
        fig.add_trace(
            line(
                x=_epoch_ms(part[TS]),
                y=part[DRAWDOWN].to_numpy(),
                name=symbol,
                line={"color": theme.asset_color(symbol), "width": 1.5},
                hovertemplate=f"%{{y:{theme.PERCENT_HOVER}}}",
            )
        )
    if weekends and drawdowns.height:
        theme.add_weekend_shading(fig, drawdowns[TS].min(), drawdowns[TS].max(), definition=weekends)
    lowest = drawdowns[DRAWDOWN].min() if drawdowns.height else None
    theme.frame(fig, title or "Underwater curves", subtitle or _together_text(together, symbols) or "", 460)
    fig.update_xaxes(type="date", hoverformat=theme.DATE_HOVER)
    fig.update_yaxes(
        title_text="Drawdown from running peak",
        tickformat=theme.PERCENT_AXIS,
        range=[min(lowest or 0.0, -0.01) * 1.05, 0.0],
    )
    return fig


# ---------------------------------------------------------------------------------------------


def episode_id() -> pl.Expr:
    """An episode's name in the charts' customdata (what a click on its marker selects): its asset
    and peak time, e.g. "BTC 2025-10-06 18:00"."""
    return pl.format("{} {}", pl.col(SYMBOL), pl.col(PEAK_TS).dt.strftime("%Y-%m-%d %H:%M")).alias("episode_id")


def _one_symbol(frame: pl.DataFrame) -> str:
    symbols = frame[SYMBOL].unique().to_list() if SYMBOL in frame.columns else []
    if len(symbols) > 1:
        raise ValueError(f"drawdown_figure draws one symbol; got {sorted(symbols)}")
    return symbols[0] if symbols else ""


def _epoch_ms(ts: pl.Series) -> np.ndarray:
    """Times as float milliseconds since the epoch: plotly.js reads numbers on a date axis as UTC
    epoch ms, and a float array travels as compact binary (ISO strings cost 10x the bytes)."""
    return ts.dt.epoch("ms").cast(pl.Float64).to_numpy()


def _line_type(points: int) -> type[go.Scatter] | type[go.Scattergl]:
    return go.Scattergl if points > WEBGL_POINTS else go.Scatter


def _percent(value: pl.Expr) -> pl.Expr:
    return pl.format("{}%", (value * 100).round(1))


def _episode_text() -> pl.Expr:
    """One hover line per episode: dates, depth and the three durations."""
    date = theme.DATE_TEXT
    return pl.format(
        "<b>{}</b> {}<br>peak {}<br>trough {}<br>recovery {}<br>peak → trough {} · trough → recovery {}",
        pl.col(SYMBOL),
        _percent(pl.col(DEPTH)),
        pl.col(PEAK_TS).dt.strftime(date),
        pl.col(TROUGH_TS).dt.strftime(date),
        pl.col(RECOVERY_TS).dt.strftime(date).fill_null("not yet"),
        theme.duration_text(pl.col(PEAK_TO_TROUGH_HOURS)),
        theme.duration_text(pl.col(TROUGH_TO_RECOVERY_HOURS)).fill_null(
            pl.format("{} so far", theme.duration_text(pl.col(UNDERWATER_HOURS) - pl.col(PEAK_TO_TROUGH_HOURS)))
        ),
    )


def _shade_phases(fig: go.Figure, ranked: pl.DataFrame, data_end: Any) -> None:
    """One band per phase behind the price panel: decline (peak → trough), then recovery or, while
    still under water, trough → end of data. The underwater panel stays clean: its fill is the signal."""
    shapes = []
    for row in ranked.iter_rows(named=True):
        if row[RECOVERY_TS] is None:
            after = (row[TROUGH_TS], data_end, theme.ACTIVE_FILL)
        else:
            after = (row[TROUGH_TS], row[RECOVERY_TS], theme.RECOVERY_FILL)
        shapes += [{"type": "rect", "xref": "x", "yref": "y domain", "x0": x0.replace(tzinfo=None),
                    "x1": x1.replace(tzinfo=None), "y0": 0, "y1": 1, "fillcolor": fill, "line": {"width": 0},
                    "layer": "below"} for x0, x1, fill in ((row[PEAK_TS], row[TROUGH_TS], theme.DECLINE_FILL), after)]
    theme.add_shapes(fig, shapes)


def _mark_episodes(fig: go.Figure, ranked: pl.DataFrame) -> None:
    """Peaks and troughs on the price, and the rank and depth at each trough of the underwater curve."""
    text = ranked.select(_episode_text())[:, 0].to_numpy()
    ids = ranked.select(episode_id())[:, 0].to_numpy()
    for name, at, price, symbol, color in (
        ("Peaks", PEAK_TS, PEAK_PRICE, "triangle-up", theme.INK),
        ("Troughs", TROUGH_TS, TROUGH_PRICE, "triangle-down", theme.UNDERWATER_LINE),
    ):
        fig.add_trace(
            go.Scatter(
                x=_epoch_ms(ranked[at]),
                y=ranked[price].to_numpy(),
                mode="markers",
                name=name,
                marker={"symbol": symbol, "size": 10, "color": color, "line": {"color": "white", "width": 1}},
                hovertext=text,
                hovertemplate="%{hovertext}<extra></extra>",
                customdata=ids,  # a click on it names the episode
            ),
            row=1,
            col=1,
        )
    labels = ranked.select(pl.format("#{} {}", pl.col("rank"), _percent(pl.col(DEPTH))))[:, 0].to_list()
    fig.add_trace(
        go.Scatter(
            x=_epoch_ms(ranked[TROUGH_TS]),
            y=ranked[DEPTH].to_numpy(),
            mode="markers+text",
            name=TROUGH_LABELS,
            showlegend=False,
            meta=labels,  # every label; `text` shows those with room (see `space_trough_labels`)
            text=labels,
            textfont={"size": 11, "color": theme.INK, "shadow": theme.HALO},
            marker={"size": 6, "color": theme.UNDERWATER_LINE},
            hovertext=text,
            hovertemplate="%{hovertext}<extra></extra>",
            customdata=ids,
        ),
        row=2,
        col=1,
    )


def space_trough_labels(fig: go.Figure, shown: tuple[float, float]) -> go.Figure:
    """Label the troughs inside `shown` (the x range, epoch ms) in rank order, skipping one whose
    label would overlap a label already placed: closer than LABEL_ROOM_X of the range in time and
    LABEL_ROOM_Y of the deepest trough in depth. Unlabelled troughs keep their marker and hover
    text; a label near either edge reads away from it. Returns `fig` (changed in place)."""
    for trace in fig.select_traces(selector={"name": TROUGH_LABELS}):
        x, y = np.asarray(trace.x, dtype=float), np.asarray(trace.y, dtype=float)
        start, end = shown
        room_x, room_y = LABEL_ROOM_X * (end - start), LABEL_ROOM_Y * max(-y.min(), 0.01)
        placed = np.zeros(len(x), dtype=bool)
        for i in range(len(x)):
            crowded = placed & (np.abs(x - x[i]) < room_x) & (np.abs(y - y[i]) < room_y)
            placed[i] = start <= x[i] <= end and not crowded.any()
        trace.text = [label if keep else "" for label, keep in zip(trace.meta, placed)]
        # a label centred on a trough near an edge of the chart would be cut: it reads away from the edge
        trace.textposition = np.select([x < start + room_x / 2, x > end - room_x / 2],
                                       ["bottom right", "bottom left"], "bottom center").tolist()
    return fig


def zoom(fig: go.Figure, start: datetime, end: datetime) -> go.Figure:
    """A copy of `drawdown_figure` `fig` showing `start` to `end`: both y axes fitted to what it
    draws there (plotly's autorange keeps the whole series' span, where a 2 % episode draws flat)
    and the trough labels spaced anew."""
    zoomed = go.Figure(fig).update_xaxes(range=[start, end])
    window = (start.timestamp() * 1000, end.timestamp() * 1000)
    prices, depths = (_drawn_between(zoomed, window, axis) for axis in ("y", "y2"))
    low, high = prices.min(), prices.max()
    pad = (high - low) * 0.05 or high * 0.01
    if zoomed.layout.yaxis.type != "log":
        zoomed.update_yaxes(range=[low - pad, high + pad], row=1, col=1)
    elif low > 0:  # a log axis's range is in powers of ten (a price of 0 leaves it to plotly)
        zoomed.update_yaxes(range=[math.log10(low) - 0.01, math.log10(high) + 0.01], row=1, col=1)
    # ".1~%": a 2 % episode's ticks read -0.5%, -1%, -1.5%, not -0%, -1%, -1%, -2%
    zoomed.update_yaxes(range=[min(depths.min(), -0.005) * 1.15, 0.0], tickformat=".1~%", row=2, col=1)
    return space_trough_labels(zoomed, window)


def _drawn_between(fig: go.Figure, window: tuple[float, float], yaxis: str) -> np.ndarray:
    """Every y value `fig` draws on `yaxis` at an x (epoch ms) inside `window`."""
    start, end = window
    drawn = [np.asarray(trace.y, dtype=float)[(x >= start) & (x <= end)]
             for trace in fig.data if trace.yaxis == yaxis for x in [np.asarray(trace.x, dtype=float)]]
    return np.concatenate(drawn)


def _duration_axis(days: pl.Series, log_x: bool) -> dict[str, Any]:
    """A log axis in days labelled in desk units (1 h, 1 d, 1 w, 1 mo, 1 y), or a linear one."""
    if not log_x:
        return {"ticksuffix": " d"}
    shortest, longest = (days.min() or 1.0), (days.max() or 1.0)
    ticks = [(v, t) for v, t in DURATION_TICKS_DAYS if shortest / 3 <= v <= longest * 3]
    return {"type": "log", "tickvals": [v for v, _ in ticks], "ticktext": [t for _, t in ticks]}


def _together_text(together: pl.DataFrame | None, symbols: list[str]) -> str | None:
    if together is None or len(symbols) < 2:
        return None
    row = together.filter(pl.col("assets").list.len() == len(symbols))
    if row.is_empty() or row["share"][0] is None:
        return None
    names = ", ".join(symbols[:-1]) + f" and {symbols[-1]}"
    deeper_than = row["deeper_than"][0]
    where = f"more than {-deeper_than:.0%} below their peaks" if deeper_than < 0 else "under water"
    return f"{names} {where} together {row['share'][0]:.0%} of the time (common bars)"
