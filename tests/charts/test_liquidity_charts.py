"""Weekend-liquidity figures: they build from the analytics frames, carry the expected traces and
formats, and serialise. Data: ten weeks of the seeded synthetic demo market (it holds the two 2026
cascades)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go
import polars as pl
import pytest

from lib.analytics import liquidity as liq
from lib.analytics import liquidity_stats as ls
from lib.charts import liquidity as charts
from lib.sources.demo import demo_market


@pytest.fixture(scope="module")
def measured() -> pl.DataFrame:
    market = demo_market(days=70, assets=("BTC", "ETH"))
    return liq.with_calendar(liq.with_measures(market["bars"]))


@pytest.fixture(scope="module")
def days(measured: pl.DataFrame) -> pl.DataFrame:
    return liq.daily(measured)


def btc(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("symbol") == "BTC")


@pytest.mark.parametrize(
    ("unit", "values", "value", "text"),
    [
        ("usd", [5.3e7, 1.2e8], 5.32e7, "$53.20M"),
        ("usd", [2.1e9], 2.1e9, "$2.10B"),
        ("usd", [950.0], 12.5, "$12.50"),
        ("base", [1378.3], 669.27, "0.67K"),
        ("count", [157_000.0], 82_549.5, "82.55K"),
        ("share", [], 0.006976, "0.70%"),
        ("volatility", [], 0.0052, "0.52%"),
        ("spread", [], 0.0012, "12.00 bp"),
        ("amihud", [], 4.1e-5, "0.410 bp"),
        ("usd", [1.0], math.nan, "n/a"),
    ],
)
def test_display_formats_each_unit(unit: str, values: list[float], value: float, text: str) -> None:
    assert charts.display(unit, values).text(value) == text


@pytest.mark.parametrize(
    ("unit", "values", "zero"),
    [("usd", [5.3e7], {"$0M": "$0"}), ("base", [1378.3], {"0K": "0"}), ("usd", [950.0], None), ("share", [], None)],
)
def test_zero_drops_the_multiple_on_axes(unit: str, values: list[float], zero: dict | None) -> None:
    assert charts.display(unit, values).axis().get("labelalias") == zero


def test_every_measure_has_an_axis_title() -> None:
    assert all(charts.axis_title(m, "BTC") for m in liq.MEASURES)


def test_hour_of_week_heatmap(measured: pl.DataFrame) -> None:
    cells = liq.aggregate(btc(measured), liq.HOUR_OF_WEEK, [liq.QUOTE_VOLUME])
    tests = ls.hour_of_week_tests(btc(measured), liq.QUOTE_VOLUME)
    fig = charts.hour_of_week_heatmap(cells, liq.QUOTE_VOLUME, tests=tests, subtitle="a verdict")
    heat, dots, weekend = fig.data
    assert isinstance(heat, go.Heatmap) and isinstance(dots, go.Scatter)
    assert len(heat.z) == 7 and all(len(row) == 24 for row in heat.z)
    assert list(heat.y) == list(charts.DAY_NAMES)
    assert len(dots.x) == tests["significant"].sum()
    assert weekend.name == "weekend: the cells inside the line" and weekend.x == (None,)
    assert heat.colorbar.tickprefix == "$" and heat.colorbar.ticksuffix == "M"
    assert "Sat 14:00-15:00 UTC" in heat.customdata[5][14]
    assert {a.text for a in fig.layout.annotations} == set(charts.SESSION_LABELS.values())
    assert fig.layout.title.subtitle.text == "a verdict"
    fig.to_json()


def test_heatmap_in_new_york_time_marks_the_nyse_day(measured: pl.DataFrame) -> None:
    frame = liq.with_calendar(btc(measured), tz="America/New_York")
    fig = charts.hour_of_week_heatmap(
        liq.aggregate(frame, liq.HOUR_OF_WEEK, [liq.CS_SPREAD]), liq.CS_SPREAD, tz="America/New_York"
    )
    assert [a.text for a in fig.layout.annotations] == ["NYSE open 09:30", "NYSE close 16:00"]
    assert fig.data[0].colorbar.ticksuffix == " bp"


def outline(fig: go.Figure) -> set[tuple[float, float, float, float]]:
    """The segments (x0, y0, x1, y1) of the heatmap's weekend line."""
    path = next(shape.path for shape in fig.layout.shapes if shape.type == "path")
    points = [tuple(float(v) for v in part[1:].split(",")) for part in path.split()]
    return {(*a, *b) for a, b in zip(points[::2], points[1::2], strict=True)}


def test_heatmap_outlines_the_weekend_of_the_definition(measured: pl.DataFrame) -> None:
    cells = liq.aggregate(btc(measured), liq.HOUR_OF_WEEK, [liq.VOLUME])
    above_saturday = {(h - 0.5, 4.5, h + 0.5, 4.5) for h in range(24)}
    assert outline(charts.hour_of_week_heatmap(cells, liq.VOLUME)) == above_saturday  # the UTC calendar weekend
    share = pl.DataFrame({"symbol": "BTC", liq.WEEKDAY: [d for d in range(1, 8) for _ in range(24)],
                          liq.HOUR: list(range(24)) * 7})
    friday_evening = (pl.col(liq.WEEKDAY) == 5) & (pl.col(liq.HOUR) >= 21)
    sunday_night = (pl.col(liq.WEEKDAY) == 7) & (pl.col(liq.HOUR) >= 22)
    share = share.with_columns(
        pl.when(friday_evening & (pl.col(liq.HOUR) == 21)).then(0.65)
        .when(friday_evening | (pl.col(liq.WEEKDAY) == 6)).then(1.0)
        .when(sunday_night & (pl.col(liq.HOUR) == 22)).then(0.35)
        .when(pl.col(liq.WEEKDAY) == 7).then(pl.when(sunday_night).then(0.0).otherwise(1.0))
        .otherwise(0.0).alias(liq.WEEKEND_SHARE)
    )
    fig = charts.hour_of_week_heatmap(cells, liq.VOLUME, weekend=share)
    stairs = outline(fig)
    assert (20.5, 3.5, 20.5, 4.5) in stairs and (21.5, 5.5, 21.5, 6.5) in stairs  # Fri 21:00 in, Sun 22:00 out
    assert {(h - 0.5, 3.5, h + 0.5, 3.5) for h in (21, 22, 23)} <= stairs  # above Friday evening
    assert {(h - 0.5, 4.5, h + 0.5, 4.5) for h in range(21)} <= stairs  # above Saturday until 21:00
    assert {(h - 0.5, 5.5, h + 0.5, 5.5) for h in (22, 23)} <= stairs  # under Saturday's last two hours
    assert len(stairs) == 2 + 3 + 21 + 2
    assert "weekend for 65% of its bars" in fig.data[0].customdata[4][21]


def test_heatmap_draws_one_symbol(measured: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="one symbol"):
        charts.hour_of_week_heatmap(liq.aggregate(measured, liq.HOUR_OF_WEEK, [liq.VOLUME]), liq.VOLUME)


def test_day_of_week_bars(days: pl.DataFrame) -> None:
    means = ls.day_of_week_means(days, liq.QUOTE_VOLUME)
    fig = charts.day_of_week_bars(means, liq.QUOTE_VOLUME, tests=ls.day_of_week_tests(days, liq.QUOTE_VOLUME))
    assert [t.name for t in fig.data] == ["BTC", "ETH"]
    bars = fig.data[0]
    assert list(bars.x) == list(charts.DAY_NAMES)
    assert list(bars.marker.pattern.shape) == [""] * 5 + ["/"] * 2
    assert len(bars.error_y.array) == 7 and min(bars.error_y.array) > 0
    assert "Kruskal-Wallis" in fig.layout.title.subtitle.text
    fig.to_json()


@pytest.mark.parametrize(("measure", "axis_type"), [(liq.QUOTE_VOLUME, "log"), (liq.EDGE_SPREAD, None)])
def test_weekend_box(days: pl.DataFrame, measure: str, axis_type: str | None) -> None:
    fig = charts.weekend_box(days, measure)
    assert [t.name for t in fig.data] == ["weekday", "weekend"]
    assert set(fig.data[1].x) == {"BTC", "ETH"}
    assert fig.layout.yaxis.type == axis_type
    fig.to_json()


def test_weekend_timeseries(days: pl.DataFrame) -> None:
    ratios = liq.rolling_weekend_ratio(days, liq.QUOTE_VOLUME)
    fig = charts.weekend_timeseries(days, ratios, liq.QUOTE_VOLUME)
    assert [t.name for t in fig.data][:4] == ["BTC", "ETH", "BTC weekend / weekday", "ETH weekend / weekday"]
    assert sum(s.name == "weekend" for s in fig.layout.shapes) == 10  # ten weekends in ten weeks
    assert fig.layout.yaxis2.title.text == "weekend / weekday, trailing 28d"
    assert not fig.layout.annotations
    fig.to_json()


def test_weekend_timeseries_of_a_range_shorter_than_its_window_says_why_the_ratio_is_missing(days: pl.DataFrame) -> None:
    short = days.filter(pl.col(liq.DATE) < pl.col(liq.DATE).min() + timedelta(days=20))
    fig = charts.weekend_timeseries(short, liq.rolling_weekend_ratio(short, liq.QUOTE_VOLUME), liq.QUOTE_VOLUME)
    assert [a.text for a in fig.layout.annotations] == ["The trailing 28d ratio needs a range longer than 28d"]


def test_event_comparison_chart(measured: pl.DataFrame) -> None:
    table = liq.event_comparison(btc(measured))
    fig = charts.event_comparison_chart(table, measures=[liq.QUOTE_VOLUME, liq.CS_SPREAD, liq.AMIHUD])
    assert [t.name for t in fig.data] == [liq.SATURDAY_CASCADE.name, liq.WEEKDAY_CASCADE.name]
    saturday = fig.data[0]
    assert list(saturday.y) == [liq.MEASURES[m].label for m in (liq.QUOTE_VOLUME, liq.AMIHUD, liq.CS_SPREAD)]
    assert saturday.base == 1
    ratio = table.filter((pl.col("event") == liq.SATURDAY_CASCADE.name) & (pl.col("measure") == liq.QUOTE_VOLUME))[
        "ratio"
    ].item()
    assert saturday.x[0] == pytest.approx(ratio - 1)
    assert saturday.text[0] == f"{ratio:.2f}×"
    assert fig.layout.xaxis.type == "log"
    subtitle = fig.layout.title.subtitle.text.replace("<br>", " ")
    assert "(Sat 31 Jan 00:00 to Sun 01 Feb 00:00, Thu 05 Feb 00:00 to Sat 07 Feb 00:00 UTC)" in subtitle
    assert "the same hours of the 4 weeks before" in subtitle
    fig.to_json()


def test_share_of_week_by_year(measured: pl.DataFrame) -> None:
    shares = liq.share_of_volume(btc(measured), liq.DAY_OF_WEEK)
    fig = charts.share_of_week_by_year(shares)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert [t.name for t in bars] == list(charts.DAY_NAMES)
    assert list(bars[0].x) == ["2025", "2026"]
    assert sum(t.y[0] for t in bars) == pytest.approx(1.0)
    assert fig.data[-1].mode == "text" and fig.data[-1].text[0].endswith("%")
    fig.to_json()


def test_weekend_moves_chart_bars_ticks_and_the_cascade_label() -> None:
    saturdays = [datetime(2026, 1, day, tzinfo=UTC) for day in (17, 24, 31)]
    moves = pl.DataFrame({
        "symbol": ["BTC"] * 3 + ["ETH"],
        "start": [*saturdays, saturdays[2]],
        "end": [s + timedelta(days=2) for s in saturdays] + [None],
        "friday_close": [100.0, 100.0, 100.0, 10.0],
        "monday_open": [98.0, 103.0, 92.0, None],
        "move": [-0.02, 0.03, -0.08, None],  # ETH's last weekend has no Monday yet: drawn hatched, to its last close
        "low": [97.0, 99.0, 89.0, 9.0],
        "max_drawdown": [-0.03, -0.01, -0.11, -0.1],
        "last_close": [98.5, 102.0, 91.0, 9.4],
    })
    fig = charts.weekend_moves_chart(moves)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert [t.name for t in bars] == ["BTC Fri close → Mon open", "ETH weekend so far"] == [t.name for t in fig.data]
    assert list(bars[0].y) == [-0.02, 0.03, -0.08]
    assert list(bars[1].y) == pytest.approx([-0.06]) and bars[1].marker.pattern.shape == "/"
    assert "Friday close 10.00 → last close 9.40 so far (-6.0%)" in bars[1].customdata[0]
    lows = [y - under for y, under in zip(bars[0].y, bars[0].error_y.arrayminus, strict=True)]
    assert lows == pytest.approx([-0.03, -0.01, -0.11]) and set(bars[0].error_y.array) == {0.0}
    assert "Friday close 100.00 → Monday open 92.00 (-8.0%)" in bars[0].customdata[2]
    assert [a.text for a in fig.layout.annotations if a.text == liq.SATURDAY_CASCADE.name]
    assert "BTC: median |move| 3.0%, worst -8.0% (from 31 Jan 2026), low -5% or worse on 1 of 3" in \
        fig.layout.title.subtitle.text.replace("<br>", " ")
    assert not charts.weekend_moves_chart(moves.filter(pl.col("start") < saturdays[2])).layout.annotations
    assert charts.weekend_moves_chart(moves.clear()).data == ()


def test_weekend_moves_chart_on_demo_bars(measured: pl.DataFrame) -> None:
    fig = charts.weekend_moves_chart(liq.weekend_moves(measured))
    assert {t.name for t in fig.data} == {"BTC Fri close → Mon open", "ETH Fri close → Mon open"}
    fig.to_json()
