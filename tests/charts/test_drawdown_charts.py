"""Drawdown figures and the shared theme: they build from small frames, with the traces, shapes and
axes a desk expects, serialise to JSON, and leave their inputs alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lib.analytics import drawdowns as dd
from lib.charts import drawdowns as charts
from lib.charts import theme

FRIDAY = datetime(2024, 1, 5, tzinfo=UTC)


def bars(closes: list[float], symbol: str = "BTC", start: datetime = FRIDAY, step_hours: float = 6) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(closes),
            "ts": [start + timedelta(hours=step_hours * i) for i in range(len(closes))],
            "close": [float(c) for c in closes],
        },
        schema={"symbol": pl.String, "ts": pl.Datetime("us", "UTC"), "close": pl.Float64},
    )


# Two recovered episodes (-20 %, -10 %) and one still under water (-25 %), over four days.
CLOSES = [100, 90, 80, 95, 101, 95, 90.9, 102, 110, 100, 82.5, 90, 95, 96, 97, 98]


@pytest.fixture
def btc() -> pl.DataFrame:
    return dd.with_drawdown(bars(CLOSES))


@pytest.fixture
def three_assets() -> pl.DataFrame:
    return pl.concat([bars(CLOSES, "BTC"), bars([c * 0.05 for c in reversed(CLOSES)], "ETH"), bars([10] * 16, "SOL")])


def shape_fills(fig: go.Figure) -> list[str]:
    return [shape.fillcolor for shape in fig.layout.shapes]


def test_drawdown_figure_panels_share_one_x_axis(btc: pl.DataFrame) -> None:
    fig = charts.drawdown_figure(btc, dd.episodes(btc))
    assert fig.layout.xaxis.matches == "x2"  # zooming either panel zooms both
    assert fig.layout.xaxis.showticklabels is False
    assert fig.layout.yaxis2.tickformat == theme.PERCENT_AXIS
    assert fig.layout.yaxis2.range == (pytest.approx(-0.25 * 1.08), 0.0)
    assert fig.layout.xaxis2.hoverformat == theme.DATE_HOVER


def test_drawdown_figure_spans_the_data_not_a_trough_label_near_its_start(btc: pl.DataFrame) -> None:
    """Plotly's autorange widens the axis to fit the text of a trough near the first bar: a blank
    strip before the data (10 days on a year of real ETH)."""
    fig = charts.drawdown_figure(btc, dd.episodes(btc))
    assert fig.layout.xaxis.range == fig.layout.xaxis2.range == (btc["ts"][0], btc["ts"][-1])
    assert fig.layout.xaxis.autorange is None


def test_drawdown_figure_traces(btc: pl.DataFrame) -> None:
    fig = charts.drawdown_figure(btc, dd.episodes(btc))
    names = [(trace.name, trace.xaxis, trace.yaxis) for trace in fig.data]
    assert names == [
        ("Running peak", "x", "y"),
        ("BTC close", "x", "y"),
        ("Drawdown", "x2", "y2"),
        ("Peaks", "x", "y"),
        ("Troughs", "x", "y"),
        ("Episode troughs", "x2", "y2"),
    ]
    underwater = fig.data[2]
    assert underwater.fill == "tozeroy"
    assert list(underwater.y) == pytest.approx(btc[dd.DRAWDOWN].to_list())
    assert fig.data[1].line.color == theme.ASSET_COLORS["BTC"]
    # Ranked by depth: #1 is the active -25 % episode, #2 the -20 %, #3 the -10 %.
    assert list(fig.data[5].text) == ["#1 -25.0%", "#2 -20.0%", "#3 -10.0%"]
    assert list(fig.data[4].y) == pytest.approx([82.5, 80.0, 90.9])


def trough_labels(x: list[float], y: list[float]) -> go.Figure:
    labels = [f"#{rank}" for rank in range(1, len(x) + 1)]
    return go.Figure(go.Scatter(x=x, y=y, name=charts.TROUGH_LABELS, meta=labels, text=labels))


def test_a_crowded_trough_label_gives_way_to_the_deeper_ones_and_returns_when_zoomed() -> None:
    # Rooms on (0, 1000): 70 ms in time (7 %), 0.05 in depth (10 % of the deepest, -0.5).
    fig = trough_labels([0, 50, 1000, 30], [-0.5, -0.48, -0.1, -0.2])
    charts.space_trough_labels(fig, (0, 1000))
    # #2 sits 50 ms and 0.02 from #1; #4 is as near in time but 0.3 higher.
    assert list(fig.data[0].text) == ["#1", "", "#3", "#4"]
    charts.space_trough_labels(fig, (0, 100))  # zoomed in: 7 ms of room, #3 off screen
    assert list(fig.data[0].text) == ["#1", "#2", "", "#4"]
    # 3.5 ms from an edge a label would be cut: #1, on the left edge, reads to the right
    assert list(fig.data[0].textposition) == ["bottom right", "bottom center", "bottom left", "bottom center"]


def test_a_zoom_fits_both_axes_to_the_rows_shown_and_leaves_the_figure_alone(btc: pl.DataFrame) -> None:
    fig = charts.drawdown_figure(btc, dd.episodes(btc))
    shown = btc.head(4)  # closes 100, 90, 80, 95 under a peak of 100: the -20 % episode
    zoomed = charts.zoom(fig, shown["ts"][0], shown["ts"][-1])
    assert zoomed.layout.xaxis.range == (shown["ts"][0], shown["ts"][-1])
    assert zoomed.layout.yaxis.range == (pytest.approx(79), pytest.approx(101))  # 5 % of 80-100 as margin
    assert zoomed.layout.yaxis2.range == (pytest.approx(-0.23), 0.0)
    assert list(zoomed.data[5].text) == ["", "#2 -20.0%", ""]  # the other two troughs are off screen
    assert fig.layout.yaxis.range is None and list(fig.data[5].text) == ["#1 -25.0%", "#2 -20.0%", "#3 -10.0%"]


def test_a_zoom_on_a_log_axis_ranges_in_powers_of_ten_and_a_zero_price_does_not_raise() -> None:
    series = dd.with_drawdown(bars([100, 10, 1000, 0, 50]))
    fig = charts.drawdown_figure(series, dd.episodes(series), log_price=True)
    first = series.head(3)  # 100 -> 10 -> 1000
    zoomed = charts.zoom(fig, first["ts"][0], first["ts"][-1])
    assert zoomed.layout.yaxis.range == (pytest.approx(0.99), pytest.approx(3.01))
    assert charts.zoom(fig, series["ts"][0], series["ts"][-1]).layout.yaxis.range is None


def test_an_unlabelled_trough_keeps_its_marker_hover_and_click(btc: pl.DataFrame) -> None:
    fig = charts.drawdown_figure(btc, dd.episodes(btc))
    charts.space_trough_labels(fig, (0, 1))  # a range that holds no trough: no label at all
    troughs = fig.data[5]
    assert list(troughs.text) == ["", "", ""] and len(troughs.x) == 3
    assert list(troughs.customdata) == list(fig.data[4].customdata)  # a click names the episode
    assert list(troughs.hovertext) == list(fig.data[4].hovertext)


def test_drawdown_figure_shades_decline_and_recovery_phases(btc: pl.DataFrame) -> None:
    fig = charts.drawdown_figure(btc, dd.episodes(btc))
    # Three episodes, two phases each; the active one ends grey at the last bar.
    assert shape_fills(fig) == [
        theme.DECLINE_FILL,
        theme.ACTIVE_FILL,
        theme.DECLINE_FILL,
        theme.RECOVERY_FILL,
        theme.DECLINE_FILL,
        theme.RECOVERY_FILL,
    ]
    active = fig.layout.shapes[1]
    assert (active.x0, active.x1) == (datetime(2024, 1, 7, 12), datetime(2024, 1, 8, 18))
    assert {shape.yref for shape in fig.layout.shapes} == {"y domain"}  # the price panel only


def test_drawdown_figure_hover_has_dates_and_durations(btc: pl.DataFrame) -> None:
    fig = charts.drawdown_figure(btc, dd.top_episodes(dd.episodes(btc), 1))
    hover = fig.data[3].hovertext[0]
    assert fig.data[3].customdata[0] == "BTC 2024-01-07 00:00"  # the episode id a click selects
    assert "<b>BTC</b> -25.0%" in hover
    assert "peak Sun 07 Jan 2024 00:00" in hover
    assert "trough Sun 07 Jan 2024 12:00" in hover
    assert "recovery not yet" in hover
    assert "peak → trough 12 h" in hover
    assert "trough → recovery 1 d 6 h so far" in hover


def test_drawdown_figure_without_episodes_and_weekend_shading(btc: pl.DataFrame) -> None:
    fig = charts.drawdown_figure(btc, weekends="utc", log_price=True)
    assert [trace.name for trace in fig.data] == ["Running peak", "BTC close", "Drawdown", "Weekend (UTC Sat-Sun)"]
    assert shape_fills(fig) == [theme.WEEKEND_FILL]
    weekend = fig.layout.shapes[0]
    assert (weekend.x0, weekend.x1, weekend.yref) == (datetime(2024, 1, 6), datetime(2024, 1, 8), "paper")
    assert fig.layout.yaxis.type == "log"


def test_drawdown_figure_refuses_several_symbols(three_assets: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="one symbol"):
        charts.drawdown_figure(dd.with_drawdown(three_assets))


def test_drawdown_figure_uses_webgl_for_long_series() -> None:
    long = dd.with_drawdown(bars([100 + (i % 7) for i in range(charts.WEBGL_POINTS + 1)], step_hours=1))
    fig = charts.drawdown_figure(long)
    assert [trace.type for trace in fig.data] == ["scattergl"] * 3


def test_episode_scatter(three_assets: pl.DataFrame) -> None:
    table = dd.episodes(dd.with_drawdown(three_assets))
    fig = charts.episode_scatter(table)
    assert [trace.name for trace in fig.data] == ["BTC", "ETH"]  # SOL is flat: no episode
    btc = fig.data[0]
    assert list(btc.y) == pytest.approx([-0.2, -0.1, -0.25])
    assert list(btc.x) == pytest.approx([1.0, 0.75, 1.75])  # days under water, the last one so far
    assert list(btc.marker.symbol) == ["circle", "circle", "circle-open"]
    assert btc.marker.color == theme.ASSET_COLORS["BTC"]
    sizes = list(btc.marker.size)
    assert min(sizes) >= charts.MIN_MARKER_PX and max(sizes) <= charts.MAX_MARKER_PX
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.yaxis.tickformat == theme.PERCENT_AXIS
    assert "1 d" in fig.layout.xaxis.ticktext


def test_underwater_comparison(three_assets: pl.DataFrame) -> None:
    aligned = dd.aligned_drawdowns(three_assets)
    together = dd.underwater_together(aligned)
    fig = charts.underwater_comparison(aligned, together=together, weekends="utc")
    assert [trace.name for trace in fig.data] == ["BTC", "ETH", "SOL", "Weekend (UTC Sat-Sun)"]
    assert [trace.line.color for trace in fig.data[:3]] == [theme.ASSET_COLORS[s] for s in ("BTC", "ETH", "SOL")]
    assert fig.layout.title.subtitle.text == "BTC, ETH and SOL under water together 0% of the time (common bars)"
    deep = charts.underwater_comparison(aligned, together=dd.underwater_together(aligned, deeper_than=-0.2))
    assert deep.layout.title.subtitle.text.startswith("BTC, ETH and SOL more than 20% below their peaks together")


@pytest.mark.parametrize(
    "build",
    [
        lambda f: charts.drawdown_figure(dd.with_drawdown(f.filter(pl.col("symbol") == "BTC")), weekends="cme"),
        lambda f: charts.episode_scatter(dd.episodes(dd.with_drawdown(f))),
        lambda f: charts.underwater_comparison(dd.aligned_drawdowns(f)),
    ],
    ids=["drawdown_figure", "episode_scatter", "underwater_comparison"],
)
def test_figures_serialise_and_leave_inputs_alone(build, three_assets: pl.DataFrame) -> None:
    before = three_assets.clone()
    fig = build(three_assets)
    assert json.loads(fig.to_json())["layout"]["template"]["layout"]["font"]["family"] == theme.FONT
    assert_frame_equal(three_assets, before)


@pytest.mark.parametrize("build", [charts.drawdown_figure, charts.underwater_comparison])
def test_empty_frames_build(build) -> None:
    fig = build(dd.with_drawdown(bars([])))
    fig.to_json()
    assert charts.episode_scatter(dd.episodes(dd.with_drawdown(bars([])))).data == ()


# --- theme -------------------------------------------------------------------------------------


def test_chart_config_exports_png_at_twice_the_size() -> None:
    config = theme.chart_config("btc-drawdowns")
    assert config["toImageButtonOptions"] == {
        "format": "png",
        "filename": "btc-drawdowns",
        "width": 1600,
        "height": 900,
        "scale": 2,
    }
    assert config["displaylogo"] is False


def test_asset_colors_are_distinct_and_stable() -> None:
    assert len({theme.asset_color(s) for s in ("BTC", "ETH", "SOL")}) == 3
    assert theme.asset_color("DOGE") == theme.asset_color("DOGE") in theme.OTHER_COLORS
    assert theme.LONG_COLOR != theme.SHORT_COLOR


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        (None, None),
        (0.0, "0 min"),
        (0.25, "15 min"),
        (1.0, "1 h"),
        (5.5, "5 h 30 min"),
        (23.4, "23 h 24 min"),
        (24.0, "1 d"),
        (76.2, "3 d 4 h"),
        (8232.0, "343 d"),
    ],
)
def test_duration_text(hours: float | None, text: str | None) -> None:
    frame = pl.DataFrame({"h": [hours]}, schema={"h": pl.Float64})
    assert frame.select(theme.duration_text(pl.col("h"))).item() == text


def test_weekend_shading_clips_to_the_window_and_caps_the_count() -> None:
    start, end = datetime(2024, 1, 6, 12, tzinfo=UTC), datetime(2024, 1, 14, 6, tzinfo=UTC)
    fig = theme.add_weekend_shading(go.Figure(), start, end)
    spans = [(s.x0, s.x1) for s in fig.layout.shapes]
    assert spans == [
        (datetime(2024, 1, 6, 12), datetime(2024, 1, 8)),
        (datetime(2024, 1, 13), datetime(2024, 1, 14, 6)),
    ]
    years = theme.add_weekend_shading(go.Figure(), datetime(2020, 1, 1), datetime(2024, 1, 1))
    assert years.layout.shapes == () and years.data == ()  # 209 weekends would blur into grey
