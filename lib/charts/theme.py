"""The one look of every Cascade chart: a plotly template, the colours, and the export config.

Dark text on white, thin grey grids, one colour per asset, red for liquidated longs and green for
liquidated shorts, light grey bands for weekends. Builders pass ``template=TEMPLATE``; nothing is
registered globally (nothing happens at import). Formats for axes and hovers live here too, so
that a percent or a duration reads the same on every page.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
import polars as pl

from lib.analytics.sessions import weekend_windows

FONT = "Inter, 'Helvetica Neue', Helvetica, Arial, sans-serif"
INK = "#1F2933"  # text and the strongest lines
MUTED = "#6B7280"  # secondary text, running peak
GRID = "#ECEEF1"
AXIS = "#C5CBD3"
HALO = "0 0 2px white, 0 0 2px white, 0 0 3px white"  # a text shadow that keeps labels readable over lines

ASSET_COLORS: dict[str, str] = {"BTC": "#F7931A", "ETH": "#3B6FE0", "SOL": "#A04ED9"}
OTHER_COLORS: tuple[str, ...] = ("#0F9BA8", "#7A5C3E", "#D6457A", "#5B6B7A")

LONG_COLOR = "#D64545"  # liquidated longs: forced sells into a falling market
SHORT_COLOR = "#1F9D6B"  # liquidated shorts: forced buys into a rising market
LONG_RANGE_FILL = "rgba(214, 69, 69, 0.16)"  # a long curve's range under other assumptions
SHORT_RANGE_FILL = "rgba(31, 157, 107, 0.16)"

WEEKEND_FILL = "rgba(100, 116, 139, 0.10)"
WEEKEND_SWATCH = "rgba(100, 116, 139, 0.25)"  # the legend's square: a 10 % fill is invisible that small
WEEKEND_LABELS = {"utc": "UTC Sat-Sun", "cme": "CME closed"}
DECLINE_FILL = "rgba(214, 69, 69, 0.12)"  # peak -> trough
RECOVERY_FILL = "rgba(31, 157, 107, 0.10)"  # trough -> recovery
ACTIVE_FILL = "rgba(100, 116, 139, 0.12)"  # trough -> end of data, not recovered yet
UNDERWATER_LINE = "#C0392B"
UNDERWATER_FILL = "rgba(192, 57, 43, 0.16)"

PERCENT_AXIS = ".0%"
PERCENT_HOVER = ".1%"
PRICE_HOVER = ",.2f"
DATE_HOVER = "%a %d %b %Y %H:%M UTC"  # the weekday matters on a weekend-liquidity desk
DATE_TEXT = "%a %d %b %Y %H:%M"

MAX_WEEKEND_WINDOWS = 160  # about three years; beyond that the bands blur into grey

EXPORT_WIDTH, EXPORT_HEIGHT, EXPORT_SCALE = 1600, 900, 2
MARGIN_T, MARGIN_B = 72, 48  # the template's top margin (the title and one row of legend) and bottom margin
CONTROLS_PX = 100  # what an animated figure adds under its plot for its play buttons and step slider


def _axis() -> dict[str, Any]:
    return {
        "showgrid": True,
        "gridcolor": GRID,
        "zeroline": False,
        "showline": True,
        "linecolor": AXIS,
        "ticks": "outside",
        "tickcolor": AXIS,
        "ticklen": 4,
        "automargin": True,
        "title": {"font": {"size": 12, "color": MUTED}},
    }


TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": FONT, "size": 12, "color": INK},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": [*ASSET_COLORS.values(), *OTHER_COLORS],
        "title": {"x": 0, "xanchor": "left", "xref": "paper", "font": {"size": 16, "color": INK}},
        "xaxis": _axis(),
        "yaxis": _axis(),
        "legend": {
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.0,
            "xanchor": "right",
            "x": 1,
            "bgcolor": "rgba(255,255,255,0)",
            "font": {"size": 11},
        },
        "hovermode": "x unified",
        "hoverlabel": {"bgcolor": "white", "bordercolor": AXIS, "font": {"family": FONT, "size": 12, "color": INK}},
        "margin": {"l": 64, "r": 24, "t": MARGIN_T, "b": MARGIN_B},
    }
)


def asset_color(symbol: str) -> str:
    """The asset's colour; other symbols get a stable colour from a short fallback palette."""
    if symbol in ASSET_COLORS:
        return ASSET_COLORS[symbol]
    return OTHER_COLORS[sum(symbol.encode()) % len(OTHER_COLORS)]


def chart_config(filename: str, *, width: int = EXPORT_WIDTH, height: int = EXPORT_HEIGHT) -> dict[str, Any]:
    """The `config` for ``st.plotly_chart``: the camera button saves `filename`.png at 2x scale."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {
            "format": "png",
            "filename": filename,
            "width": width,
            "height": height,
            "scale": EXPORT_SCALE,
        },
    }


def add_weekend_shading(
    fig: go.Figure,
    start: datetime,
    end: datetime,
    *,
    definition: str = "utc",
    max_windows: int = MAX_WEEKEND_WINDOWS,
) -> go.Figure:
    """Shade each weekend between `start` and `end` ("utc" or "cme", see `lib.analytics.sessions`)
    across the full height of `fig` (all rows), behind the data, with a legend entry. Adds nothing
    when there would be more than `max_windows` bands. Returns `fig` (changed in place, as
    plotly's own add_* methods do)."""
    windows = weekend_windows(start, end, definition)
    if not windows or len(windows) > max_windows:
        return fig
    # A legend entry, so a PNG pasted into a note still says what the grey bands are.
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=f"Weekend ({WEEKEND_LABELS.get(definition, definition)})",
            marker={"symbol": "square", "size": 12, "color": WEEKEND_SWATCH},
            hoverinfo="skip",
        )
    )
    band = {"type": "rect", "xref": "x", "yref": "paper", "y0": 0, "y1": 1, "fillcolor": WEEKEND_FILL,
            "line": {"width": 0}, "layer": "below", "name": "weekend"}
    add_shapes(fig, [band | {"x0": max(x0, _aware(start)).replace(tzinfo=None), "x1": min(x1, _aware(end)).replace(tzinfo=None)}
                     for x0, x1 in windows])
    return fig


def add_shapes(fig: go.Figure, shapes: list[dict[str, Any]]) -> go.Figure:
    """Append `shapes` (layout.shape dicts) to `fig` in one assignment. `fig.add_shape` in a loop
    re-validates every shape already there on each call: quadratic, 5 s for a year of weekends."""
    fig.layout.shapes = (*fig.layout.shapes, *shapes)
    return fig


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def duration_text(hours: pl.Expr) -> pl.Expr:
    """Real hours as a desk reads them: "3 d 4 h" (or "343 d") from a day on, "5 h 30 min" (or
    "5 h") from an hour on, "45 min" below; null stays null."""
    minutes = (hours * 60).round(0).cast(pl.Int64)
    whole_hours = (hours.round(0)).cast(pl.Int64)
    days_part = pl.when(whole_hours % 24 == 0).then(pl.format("{} d", whole_hours // 24))
    days_part = days_part.otherwise(pl.format("{} d {} h", whole_hours // 24, whole_hours % 24))
    hours_part = pl.when(minutes % 60 == 0).then(pl.format("{} h", minutes // 60))
    hours_part = hours_part.otherwise(pl.format("{} h {} min", minutes // 60, minutes % 60))
    return (
        pl.when(hours.is_null())
        .then(pl.lit(None, pl.String))
        .when(whole_hours >= 24)
        .then(days_part)
        .when(minutes >= 60)
        .then(hours_part)
        .otherwise(pl.format("{} min", minutes))
    )


SUBTITLE_CHARS = 150  # subtitle lines wrap before this many characters


def wrap(text: str, width: int = SUBTITLE_CHARS) -> list[str]:
    """Lines of at most `width` characters: parts split at " · " share a line while they fit,
    and a part longer than a line wraps at spaces."""
    lines: list[str] = []
    for part in text.split(" · "):
        for i, piece in enumerate(textwrap.wrap(part, width) or [""]):
            if i == 0 and lines and len(lines[-1]) + 3 + len(piece) <= width:
                lines[-1] += " · " + piece
            else:
                lines.append(piece)
    return lines


def frame(fig: go.Figure, title: str, subtitle: str, height: int) -> go.Figure:
    """Theme and height; the title at the top, the subtitle wrapped under it, the legend under
    that and above the plot, so none of them overlap at any width."""
    lines = wrap(subtitle) if subtitle else []
    return fig.update_layout(
        template=TEMPLATE,
        height=height,
        title={"text": title, "y": 1.0, "yref": "container", "yanchor": "top", "pad": {"t": 14},
               "subtitle": {"text": "<br>".join(lines), "font": {"size": 12, "color": MUTED}}},
        legend={"y": 1.0, "yanchor": "bottom", "x": 0, "xanchor": "left"},
        margin={"t": top_margin(len(lines))},
    )


def top_margin(lines: int) -> int:
    """Pixels above the plot for the title, `lines` of subtitle and one row of legend."""
    return MARGIN_T + 17 * lines
