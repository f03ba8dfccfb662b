"""Liquidation figures (lib.charts.liquidations): traces, axes, colour scales, labels, size."""

from __future__ import annotations

import math
import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest

from lib.analytics.liquidation_levels import (
    SPLIT_RULES,
    TILTS,
    LevelEstimate,
    capture,
    capture_summary,
    consumption_score,
    estimate_levels,
    fragility,
    spread,
    spread_over_assumptions,
    tier_table,
    tilted,
)
from lib.analytics.liquidations import Grid, heatmap_from_totals
from lib.charts import liquidations as charts
from lib.charts.liquidations import (
    BELOW,
    colour_top,
    estimated_heatmap_figure,
    liquidation_map_figure,
    realised_between,
    replay_figure,
    realised_heatmap_figure,
    scorecard_figure,
    usd_text,
    usd_ticks,
    with_colour_top,
)

START = datetime(2026, 1, 31, tzinfo=UTC)


def market(hours: int, seed: int = 11) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Hourly bars (a random walk near 80,000), their liquidation totals and open interest."""
    rng = np.random.default_rng(seed)
    close = 80_000 * np.exp(np.cumsum(rng.normal(0, 0.006, hours)))
    ts = [START + timedelta(hours=i) for i in range(hours)]
    bars = pl.DataFrame({
        "ts": ts, "open": np.append(80_000, close[:-1]), "high": close * 1.003, "low": close * 0.997,
        "close": close, "volume": rng.uniform(100, 1000, hours), "taker_buy_volume": rng.uniform(50, 500, hours),
    })
    totals = pl.DataFrame({"ts": ts, "long_usd": rng.exponential(2e6, hours), "short_usd": rng.exponential(1e6, hours)})
    oi = pl.DataFrame({"ts": ts, "open_interest_usd": 8e9 * np.exp(np.cumsum(rng.normal(0, 0.01, hours)))})
    return bars, totals, oi


@pytest.fixture(scope="module")
def week() -> tuple[pl.DataFrame, Grid, LevelEstimate]:
    bars, totals, oi = market(7 * 24)
    return bars, heatmap_from_totals(totals, bars, bucket_usd=100.0), estimate_levels(bars, oi, bucket_usd=100.0)


def heatmap(fig: go.Figure) -> go.Heatmap:
    return next(trace for trace in fig.data if isinstance(trace, go.Heatmap))


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "$0"), (950, "$950"), (12_500, "$12.5K"), (100_000, "$100K"), (1_250_000_000, "$1.25B"),
     (-3_200_000, "-$3.2M"), (2e12, "$2T"), (999.4, "$999"), (0.5, "$0.5")],
)
def test_usd_text(value: float, text: str) -> None:
    assert usd_text(value) == text


def test_usd_ticks_are_round_and_labelled() -> None:
    assert usd_ticks(10e6) == ([0.0, 2.5e6, 5e6, 7.5e6, 10e6], ["$0", "$2.5M", "$5M", "$7.5M", "$10M"])
    assert usd_ticks(0.0) == ([0.0], ["$0"])


def test_realised_heatmap_has_price_on_top_and_bars_below(week: tuple) -> None:
    bars, grid, _ = week
    fig = realised_heatmap_figure(grid, bars)
    kinds = [type(trace).__name__ for trace in fig.data]
    assert kinds == ["Heatmap", "Candlestick", "Scatter", "Scatter"]  # a week of hourly bars: candles
    assert [trace.yaxis for trace in fig.data] == ["y", "y", "y2", "y2"]
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"  # one shared time axis
    long_bars, short_bars = fig.data[2], fig.data[3]
    assert (long_bars.fillcolor, short_bars.fillcolor) == (charts.theme.LONG_COLOR, charts.theme.SHORT_COLOR)
    assert long_bars.stackgroup == short_bars.stackgroup == BELOW  # stacked, as bars would be
    assert np.sum(long_bars.y) + np.sum(short_bars.y) == pytest.approx(grid.long_usd.sum() + grid.short_usd.sum())
    subtitle = fig.layout.title.subtitle.text
    assert "Measured" in subtitle and "low-high range" in subtitle and "$100 price buckets" in subtitle
    assert fig.layout.xaxis.rangeslider.visible is False
    fig.to_json()


def test_colour_is_absolute_usd_and_a_fixed_range_makes_charts_comparable(week: tuple) -> None:
    bars, grid, estimate = week
    half = estimate.density
    half = Grid(half.ts, half.price, half.bucket_usd, half.long_usd / 2, half.short_usd / 2, half.method)
    levels_of = (estimate, dataclasses.replace(estimate, density=half))
    first, second = (heatmap(estimated_heatmap_figure(e, bars, usd_range=20e6)) for e in levels_of)
    assert (first.zmin, first.zmax) == (second.zmin, second.zmax) == (0, 20e6)
    assert first.colorbar.title.text == "USD open per $100 bucket"  # a level, not a flow per cell
    assert all(text.startswith("$") for text in first.colorbar.ticktext)
    np.testing.assert_allclose(np.nanmax(second.z), np.nanmax(first.z) / 2, rtol=1e-6)


def test_realised_colour_is_log_usd_over_three_decades(week: tuple) -> None:
    bars, grid, _ = week
    half = Grid(grid.ts, grid.price, grid.bucket_usd, grid.long_usd / 2, grid.short_usd / 2, grid.method)
    first, second = (heatmap(realised_heatmap_figure(g, bars, usd_range=20e6)) for g in (grid, half))
    assert (first.zmin, first.zmax) == (second.zmin, second.zmax) == pytest.approx((np.log10(20e6) - 3, np.log10(20e6)))
    assert first.colorbar.title.text == "USD per $100 × 1h cell (log)"
    assert list(first.colorbar.ticktext) == ["$100K", "$1M", "$10M"]
    assert list(first.colorbar.tickvals) == pytest.approx([5, 6, 7])
    np.testing.assert_allclose(np.nanmax(first.z) - np.nanmax(second.z), np.log10(2), rtol=1e-5)
    # the hover shows USD, not its log: customdata holds the cells as drawn
    np.testing.assert_allclose(np.nanmax(np.asarray(first.customdata, dtype=float)), grid.side("both").max(), rtol=1e-6)
    assert "%{customdata:$,.0f}" in first.hovertemplate
    own = heatmap(realised_heatmap_figure(grid, bars))
    assert own.zmax == pytest.approx(np.log10(grid.side("both").max()))


def test_a_shared_colour_top_recolours_a_copy_and_says_so(week: tuple) -> None:
    bars, grid, estimate = week
    fig = estimated_heatmap_figure(estimate, bars)
    own = colour_top(fig)
    assert own == pytest.approx(heatmap(fig).zmax) and own == pytest.approx(np.nanmax(np.asarray(heatmap(fig).z)))
    shared = with_colour_top(fig, own * 4, ["BTC", "SOL"])
    assert heatmap(shared).zmax == pytest.approx(own * 4) and heatmap(fig).zmax == pytest.approx(own)  # a copy
    assert heatmap(shared).colorbar.title.text.endswith("(scale shared by BTC, SOL)")
    assert list(heatmap(shared).colorbar.ticktext) == usd_ticks(own * 4)[1]
    assert colour_top(realised_heatmap_figure(grid, bars)) == pytest.approx(grid.side("both").max())  # its USD


def test_relative_colour_says_so(week: tuple) -> None:
    bars, grid, _ = week
    trace = heatmap(realised_heatmap_figure(grid, bars, scale="relative", side="long"))
    assert trace.zmax == 1 and np.nanmax(trace.z) == pytest.approx(1)
    assert trace.colorbar.tickformat == ".0%" and "share" in trace.colorbar.title.text


def test_empty_cells_are_blank_not_zero(week: tuple) -> None:
    bars, grid, _ = week
    z = np.asarray(heatmap(realised_heatmap_figure(grid, bars)).z, dtype=float)
    assert np.isnan(z).any() and np.nanmin(z) > 0


def test_long_windows_draw_a_line_and_merge_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    bars, totals, _ = market(24 * 60)
    grid = heatmap_from_totals(totals, bars, bucket_usd=100.0)
    monkeypatch.setattr(charts, "MAX_HEATMAP_CELLS", 20 * grid.price.size)
    fig = realised_heatmap_figure(grid, bars)
    assert [type(trace).__name__ for trace in fig.data][:2] == ["Heatmap", "Scatter"]
    assert len(heatmap(fig).x) <= 20
    assert np.sum(fig.data[2].y) + np.sum(fig.data[3].y) == pytest.approx(grid.long_usd.sum() + grid.short_usd.sum())
    assert "USD per $100 × 3d cell" in heatmap(fig).colorbar.title.text  # 1,440 hours in 20 columns


def test_a_half_year_of_hourly_cells_is_drawn_in_columns_a_pixel_or_two_wide() -> None:
    bars, totals, _ = market(182 * 24)
    grid = heatmap_from_totals(totals, bars, bucket_usd=250.0)
    fig = realised_heatmap_figure(grid, bars)
    # 4,368 hours in at most 400 columns: 11 hours each, whatever the cell budget would allow
    assert len(heatmap(fig).x) == math.ceil(len(grid.ts) / 11) <= charts.MAX_TIME_COLUMNS
    assert "× 11h cell" in heatmap(fig).colorbar.title.text
    assert np.nansum(heatmap(fig).z) <= grid.long_usd.sum() + grid.short_usd.sum() + 1e-6


def test_a_year_of_hourly_cells_stays_under_two_megabytes() -> None:
    bars, totals, _ = market(365 * 24)
    fig = realised_heatmap_figure(heatmap_from_totals(totals, bars, bucket_usd=250.0), bars)
    assert len(fig.to_json()) < 2_000_000


def test_estimated_heatmap_says_estimated_and_hides_the_warm_up(week: tuple) -> None:
    bars, _, estimate = week
    since = START + timedelta(days=3)
    fig = estimated_heatmap_figure(estimate, bars, since=since)
    trace = heatmap(fig)
    assert trace.x[0] == since.timestamp() * 1000
    assert fig.layout.title.subtitle.text.startswith("Estimated, not measured")
    assert "open interest per bar" in fig.layout.title.subtitle.text
    consumed = [trace for trace in fig.data if isinstance(trace, go.Scatter) and trace.stackgroup == BELOW]
    assert [bar.name for bar in consumed] == ["Longs levels hit", "Shorts levels hit"]
    rows = len(estimate.density.ts) - len(trace.x)
    assert np.sum(consumed[0].y) == pytest.approx(estimate.consumed_usd[rows:, 0].sum())
    fig.to_json()


def test_estimated_heatmap_draws_a_haloed_line_over_long_windows() -> None:
    bars, _, oi = market(24 * 30)
    fig = estimated_heatmap_figure(estimate_levels(bars, oi), bars)
    lines = [trace for trace in fig.data if isinstance(trace, go.Scatter) and trace.stackgroup is None]
    assert [(line.name, line.showlegend) for line in lines] == [(None, False), ("Close", None)]
    view = fig.layout.yaxis.range
    assert view[0] == pytest.approx(bars["low"].min() * 0.9) and view[1] == pytest.approx(bars["high"].max() * 1.1)


def test_liquidation_map_has_a_bar_per_tier_the_curves_and_the_price(week: tuple) -> None:
    _, _, estimate = week
    fig = liquidation_map_figure(estimate)
    tiers = [trace for trace in fig.data if isinstance(trace, go.Bar)]
    assert [bar.name for bar in tiers] == ["5×", "10×", "25×", "50×", "100×"]
    curves = [trace for trace in fig.data if isinstance(trace, go.Scatter)]
    assert [curve.name for curve in curves] == ["Cumulative longs (price falls)", "Cumulative shorts (price rises)"]
    assert {curve.yaxis for curve in curves} == {"y2"} and {bar.yaxis for bar in tiers} == {"y"}
    assert fig.layout.shapes[0].x0 == estimate.last_price
    assert list(fig.layout.xaxis.range) == pytest.approx([estimate.last_price * 0.75, estimate.last_price * 1.25])
    assert fig.layout.barmode == "stack"
    assert "Levels open at" in fig.layout.title.subtitle.text
    fig.to_json()


def test_liquidation_map_shades_each_curve_over_its_range(week: tuple) -> None:
    """Re-run as the page does (split rules x leverage tilts): each curve gets a band, hidden and
    shown with it, and the cumulative axis reaches the band's top."""
    bars, _, oi = market(7 * 24)
    runs = [estimate_levels(bars, oi, bucket_usd=100.0, split=split, leverage_mix=tilted(tier_table(), tilt))
            for split in SPLIT_RULES for tilt in TILTS]
    ranges = spread(runs)
    fig = liquidation_map_figure(runs[0], spread=ranges)
    lines = {t.name: t for t in fig.data if isinstance(t, go.Scatter) and t.name}
    bands = [t for t in fig.data if isinstance(t, go.Scatter) and t.fill == "tonexty"]
    assert sorted(band.legendgroup for band in bands) == sorted(lines)
    assert all(band.showlegend is False and band.yaxis == "y2" for band in bands)
    for line in lines.values():  # each curve lies inside its band
        band = next(b for b in bands if b.legendgroup == line.name)
        low = next(t for t in fig.data if t.legendgroup == line.name and t.fill is None and t.name is None)
        inside = dict(zip(line.x, line.y, strict=True))
        for x, lo, hi in zip(band.x, low.y, band.y, strict=True):
            if x in inside and not math.isnan(inside[x]):
                assert lo * (1 - 1e-6) - 1e-6 <= inside[x] <= hi * (1 + 1e-6) + 1e-6  # the band: float32
    assert fig.layout.yaxis2.range[1] >= max(max(b.y) for b in bands)
    assert "range over 9 assumption sets" in fig.layout.title.subtitle.text


@pytest.mark.parametrize("with_range", [False, True])
def test_the_replay_animates_the_map_of_each_step_on_fixed_axes(with_range: bool) -> None:
    bars, _, oi = market(7 * 24)
    steps = [estimate_levels(bars.head(n), oi.head(n), bucket_usd=100.0, history=False) for n in (48, 96, 168)]
    spreads = [spread_over_assumptions(bars.head(n), oi.head(n), tier_table(), bucket_usd=100.0)
               for n in (48, 96, 168)] if with_range else None
    fig = replay_figure(steps, spreads=spreads)
    static = [liquidation_map_figure(step, spread=s) for step, s in zip(steps, spreads or [None] * 3, strict=True)]
    shaded = [frame.layout.title.subtitle.text for frame in fig.frames] + [fig.layout.title.subtitle.text]
    assert all(("range over 9 assumption sets" in text) == with_range for text in shaded)
    for frame, step, spread_ in zip(fig.frames, steps, spreads or [None] * 3, strict=True):  # what −5 % would take
        longs = fragility(step).filter(pl.col("side") == "long", pl.col("band") == -0.05)["liquidation_usd"].item()
        ranged = "" if spread_ is None else " ({}–{})".format(*(usd_text(v) for v in spread_.fragility.filter(
            pl.col("side") == "long", pl.col("band") == -0.05).select("low_usd", "high_usd").row(0)))
        assert f"longs -5%: {usd_text(longs)}{ranged}, shorts +5%: " in frame.layout.title.subtitle.text.replace("<br>", " ")
    assert [frame.name for frame in fig.frames] == [f"{s.last_ts:%Y-%m-%d %H:%M}" for s in steps]
    assert [step.label for step in fig.layout.sliders[0].steps] == [frame.name for frame in fig.frames]
    assert fig.layout.sliders[0].active == 2  # it opens on the last step, as the static map
    for frame, alone in zip(fig.frames, static, strict=True):
        assert [t.type for t in frame.data] == [t.type for t in fig.data]  # a frame's traces replace the figure's
        for moving, drawn in zip(frame.data, alone.data, strict=True):
            assert list(moving.x) == list(drawn.x) and list(moving.y) == pytest.approx(list(drawn.y), nan_ok=True)
        assert frame.layout.xaxis.range == alone.layout.xaxis.range
        assert frame.layout.shapes[0].x0 == alone.layout.shapes[0].x0
        assert frame.layout.shapes[0].label.text == alone.layout.annotations[0].text  # "last $80,123"
        assert not frame.layout.annotations  # a frame leaves the figure's annotations (an export's footer) alone
    for axis in ("yaxis", "yaxis2"):  # the largest top of any step: consumption shows as shrinking bars
        assert fig.layout[axis].range[1] == max(alone.layout[axis].range[1] for alone in static)
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["Play", "Pause"]
    fig.to_json()


def test_the_replay_marks_what_was_liquidated_since_the_step_before() -> None:
    ts = pl.Series("ts", [START + timedelta(hours=h) for h in range(4)])
    long_usd = np.array([[1.0, 0.0], [0.0, 2.0], [4.0, 0.0], [0.0, 8.0]])
    grid = Grid(ts, np.array([100.0, 110.0]), 10.0, long_usd, long_usd / 2, "test")
    first, second = realised_between(grid, [START + timedelta(hours=1), START + timedelta(hours=3)])
    assert [list(a) for a in first["long"]] == [[105.0, 115.0], [1.0, 2.0]]  # rows 0-1, inclusive of the step
    assert [list(a) for a in second["short"]] == [[105.0, 115.0], [2.0, 4.0]]  # rows 2-3
    bars, _, oi = market(7 * 24)
    steps = [estimate_levels(bars.head(n), oi.head(n), bucket_usd=100.0, history=False) for n in (96, 168)]
    realised = [{"long": (np.array([80_000.0]), np.array([5e9])), "short": (np.array([]), np.array([]))}] * 2
    fig = replay_figure(steps, realised)
    markers = [t for t in fig.data if t.type == "scatter" and t.mode == "markers"]
    assert [t.name for t in markers] == ["Longs liquidated", "Shorts liquidated"]
    assert all(len(frame.data) == len(fig.data) for frame in fig.frames)
    assert fig.layout.yaxis.range[1] == pytest.approx(5e9 * 1.05)  # the axis holds the largest marker
    assert "measured since the step before" in fig.layout.title.subtitle.text


def test_scorecard_shows_the_numbers(week: tuple) -> None:
    bars, grid, estimate = week
    captured = capture(estimate, grid)
    score = consumption_score(estimate, bars, pl.DataFrame({"ts": grid.ts, "long_usd": grid.long_usd.sum(axis=1),
                                                            "short_usd": grid.short_usd.sum(axis=1)}))
    fig = scorecard_figure(captured, capture_summary(captured), consumption=score)
    assert [trace.name for trace in fig.data] == ["All realised", "In the model's zone", "Within ±2% of price"]
    assert fig.data[0].y[-1] == pytest.approx(captured["realised_usd"].sum())
    subtitle = fig.layout.title.subtitle.text
    assert "Model zone caught" in subtitle and "Burst sizes" in subtitle
    empty = captured.clear()
    assert "No realised liquidations" in scorecard_figure(empty, capture_summary(empty)).layout.title.subtitle.text
    fig.to_json()


def test_the_scorecard_says_n_a_where_the_baseline_has_no_share() -> None:
    from lib.charts.liquidations import _capture_text

    text = _capture_text({"model_share": 0.5, "realised_usd": 2e6, "baseline_share": None, "lift": None}, 0.05)
    assert text == "Model zone caught 50% of $2M realised; a ±5% band around the last close, same size, caught n/a"
