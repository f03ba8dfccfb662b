"""Realised liquidations (lib.analytics.liquidations): placement, grids, conservation, totals, bursts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from lib.analytics.liquidations import (
    MAX_BUCKETS,
    PLACEMENTS,
    grid_between,
    grid_cells,
    grid_since,
    grid_summary,
    heatmap_from_events,
    heatmap_from_totals,
    largest_bursts,
    nice_bucket_usd,
    realised_heatmap,
    resample_grid,
    spread_over_range,
    window_totals,
)

START = datetime(2026, 1, 31, tzinfo=UTC)


def hour(n: int) -> datetime:
    return START + timedelta(hours=n)


def bars(*rows: tuple[int, float, float, float]) -> pl.DataFrame:
    """Bars from (hour, low, high, close); open = close."""
    return pl.DataFrame(
        {
            "ts": [hour(h) for h, *_ in rows],
            "open": [c for *_, c in rows],
            "high": [hi for _, _, hi, _ in rows],
            "low": [lo for _, lo, _, _ in rows],
            "close": [c for *_, c in rows],
        }
    )


def totals(*rows: tuple[int, float, float]) -> pl.DataFrame:
    """Per-bar liquidation totals from (hour, long_usd, short_usd)."""
    return pl.DataFrame({"ts": [hour(h) for h, _, _ in rows], "long_usd": [float(lo) for _, lo, _ in rows],
                         "short_usd": [float(s) for *_, s in rows]})


def events(*rows: tuple[datetime, str, float, float, float | None]) -> pl.DataFrame:
    """Liquidation events from (ts, side, price, qty, notional_usd)."""
    return pl.DataFrame(
        {"ts": [r[0] for r in rows], "side": [r[1] for r in rows], "price": [r[2] for r in rows],
         "qty": [r[3] for r in rows], "notional_usd": [r[4] for r in rows]},
        schema={"ts": pl.Datetime("us", "UTC"), "side": pl.String, "price": pl.Float64, "qty": pl.Float64,
                "notional_usd": pl.Float64},
    )


# ---------------------------------------------------------------------------------------------
# Buckets and placement, by hand


@pytest.mark.parametrize(
    ("low", "high", "target", "expected"),
    [(0, 200, 200, 1.0), (60_000, 100_000, 200, 200.0), (0, 1, 200, 0.005), (90, 110, 10, 2.0),
     (60_000, 100_000, 100, 500.0), (100, 100, 200, 0.005)],
)
def test_nice_bucket_usd(low: float, high: float, target: int, expected: float) -> None:
    assert nice_bucket_usd(low, high, target) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("low", "high", "bucket", "cells"),
    [
        (100, 110, 5, {20: 0.5, 21: 0.5}),  # two whole buckets
        (101, 104, 5, {20: 1.0}),  # inside one bucket
        (104, 106, 5, {20: 0.5, 21: 0.5}),  # straddles an edge
        (100, 100, 5, {20: 1.0}),  # a flat bar: all in its bucket
        (102, 113, 5, {20: 3 / 11, 21: 5 / 11, 22: 3 / 11}),
        (105, 110, 5, {21: 1.0}),  # high on an edge: the bucket above gets nothing
    ],
)
def test_spread_over_range(low: float, high: float, bucket: float, cells: dict[int, float]) -> None:
    row, index, weight = spread_over_range(np.array([low], float), np.array([high], float), bucket)
    got = {int(k): w for k, w in zip(index, weight, strict=True) if w > 0}
    assert got == pytest.approx(cells)
    assert set(row) == {0}


def test_range_placement_spreads_each_side_over_the_bar() -> None:
    grid = heatmap_from_totals(totals((0, 1000, 500)), bars((0, 100, 110, 104)), bucket_usd=5)
    np.testing.assert_array_equal(grid.price, [100, 105])
    np.testing.assert_allclose(grid.long_usd, [[500, 500]])
    np.testing.assert_allclose(grid.short_usd, [[250, 250]])
    assert "low-high range" in grid.method


@pytest.mark.parametrize(
    ("placement", "long_cells", "short_cells"),
    [
        ("close", {104.0: 1000}, {104.0: 500}),
        ("wick", {100.0: 1000}, {110.0: 500}),
    ],
)
def test_point_placements(placement: str, long_cells: dict, short_cells: dict) -> None:
    grid = heatmap_from_totals(totals((0, 1000, 500)), bars((0, 100, 110, 104)), bucket_usd=2, placement=placement)
    placed = {side: dict(zip(frame["price"], frame["usd"], strict=True))
              for side, frame in grid_cells(grid).partition_by("side", as_dict=True, include_key=False).items()}
    assert placed == {("long",): long_cells, ("short",): short_cells}
    assert PLACEMENTS[placement] in grid.method


def test_totals_without_a_bar_are_counted_as_unplaced() -> None:
    grid = heatmap_from_totals(totals((0, 100, 0), (1, 40, 60)), bars((0, 100, 101, 100)), bucket_usd=1)
    assert grid.unplaced_usd == 100
    assert len(grid.ts) == 2
    assert grid.side("both")[1].sum() == 0
    assert grid.long_usd.sum() + grid.short_usd.sum() + grid.unplaced_usd == 200


def test_totals_of_several_exchanges_are_summed_per_bar() -> None:
    two_venues = pl.concat([totals((0, 10, 0)), totals((0, 30, 5))])
    grid = heatmap_from_totals(two_venues, bars((0, 100, 100, 100)), bucket_usd=1)
    assert grid.long_usd.tolist() == [[40.0]] and grid.short_usd.tolist() == [[5.0]]


def test_events_land_at_their_price_and_time_slot() -> None:
    # A short liquidation is a forced BUY: the sources set side="short" (the liquidated position);
    # here it must be counted with the shorts, never flipped.
    grid = heatmap_from_events(
        events(
            (hour(0) + timedelta(minutes=15), "long", 101.0, 2.0, None),  # no notional: price × qty
            (hour(2) + timedelta(minutes=30), "short", 99.0, 5.0, 500.0),
        ),
        bucket_usd=5,
    )
    assert grid.ts.to_list() == [hour(0), hour(1), hour(2)]
    np.testing.assert_array_equal(grid.price, [95, 100])
    np.testing.assert_allclose(grid.long_usd, [[0, 202], [0, 0], [0, 0]])
    np.testing.assert_allclose(grid.short_usd, [[0, 0], [0, 0], [500, 0]])
    assert grid.method.startswith("liquidation events")


def test_realised_heatmap_dispatches_on_the_dataset() -> None:
    one_event = events((hour(0), "long", 100.0, 1.0, 100.0))
    assert realised_heatmap(one_event, bucket_usd=1).long_usd.sum() == 100
    with pytest.raises(ValueError, match="matching bars"):
        realised_heatmap(totals((0, 1, 1)), bucket_usd=1)
    with pytest.raises(ValueError, match="placement"):
        heatmap_from_totals(totals((0, 1, 1)), bars((0, 1, 2, 1)), bucket_usd=1, placement="vwap")


def test_mixed_symbols_are_refused() -> None:
    mixed = totals((0, 1, 1), (0, 2, 2)).with_columns(symbol=pl.Series(["BTC", "ETH"]))
    with pytest.raises(ValueError, match="one symbol"):
        heatmap_from_totals(mixed, bars((0, 1, 2, 1)), bucket_usd=1)


def test_a_bucket_far_too_small_is_refused_with_a_usable_size() -> None:
    with pytest.raises(ValueError, match="choose a bucket of at least"):
        heatmap_from_totals(totals((0, 1, 1)), bars((0, 1, 1 + MAX_BUCKETS, 1)), bucket_usd=0.5)


def test_inputs_are_not_mutated() -> None:
    given_totals, given_bars = totals((0, 1000, 500), (1, 10, 20)), bars((0, 100, 110, 104), (1, 90, 95, 91))
    before = given_totals.clone(), given_bars.clone()
    heatmap_from_totals(given_totals, given_bars, bucket_usd=3)
    largest_bursts(given_totals, bars=given_bars)
    assert_frame_equal(given_totals, before[0])
    assert_frame_equal(given_bars, before[1])


# ---------------------------------------------------------------------------------------------
# Conservation: every USD put in comes out in a cell (or as unplaced), whatever the bucket


@st.composite
def bars_and_totals(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = draw(st.integers(1, 12))
    lows = draw(st.lists(st.floats(1, 100_000), min_size=n, max_size=n))
    spans = draw(st.lists(st.floats(0, 5_000), min_size=n, max_size=n))
    usd = st.floats(0, 1e9)
    longs, shorts = (draw(st.lists(usd, min_size=n, max_size=n)) for _ in range(2))
    with_bar = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    rows = [(h, lo, lo + span, lo + span / 2) for h, (lo, span, keep) in enumerate(zip(lows, spans, with_bar,
                                                                                       strict=True)) if keep]
    return bars(*rows) if rows else bars((n + 1, 1, 1, 1)), totals(*zip(range(n), longs, shorts, strict=True))


@settings(max_examples=60, deadline=None)
@given(bars_and_totals(), st.sampled_from(sorted(PLACEMENTS)), st.floats(50, 10_000))
def test_conservation_for_any_bucket(data: tuple[pl.DataFrame, pl.DataFrame], placement: str, bucket: float) -> None:
    given_bars, given_totals = data
    grid = heatmap_from_totals(given_totals, given_bars, bucket_usd=bucket, placement=placement)
    put_in = given_totals["long_usd"].sum() + given_totals["short_usd"].sum()
    out = grid.long_usd.sum() + grid.short_usd.sum() + grid.unplaced_usd
    assert out == pytest.approx(put_in, rel=1e-9, abs=1e-6)
    assert (grid.long_usd >= 0).all() and (grid.short_usd >= 0).all()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 600), st.sampled_from(["long", "short"]), st.floats(1, 1e5), st.floats(0, 50)),
             min_size=1, max_size=30),
    st.floats(50, 5_000),
)
def test_event_conservation_for_any_bucket(rows: list, bucket: float) -> None:
    given_events = events(*((START + timedelta(minutes=m), side, p, q, None) for m, side, p, q in rows))
    grid = heatmap_from_events(given_events, bucket_usd=bucket, timeframe="1h")
    for side in ("long", "short"):
        put_in = sum(p * q for _, s, p, q in rows if s == side)
        assert grid.side(side).sum() == pytest.approx(put_in, rel=1e-9, abs=1e-9)


def test_resampling_keeps_flows_and_takes_the_last_stock() -> None:
    grid = heatmap_from_totals(totals(*((h, h + 1.0, 0.0) for h in range(5))),
                               bars(*((h, 100, 100, 100) for h in range(5))), bucket_usd=1)
    summed, last = resample_grid(grid, 2, "sum"), resample_grid(grid, 2, "last")
    assert summed.ts.to_list() == [hour(0), hour(2), hour(4)]
    assert summed.long_usd[:, 0].tolist() == [3, 7, 5]
    assert last.long_usd[:, 0].tolist() == [2, 4, 5]
    assert resample_grid(grid, 1, "sum") is grid


def test_minute_totals_roll_up_into_hourly_rows_each_placed_by_its_own_bar() -> None:
    minute = timedelta(minutes=1)
    one_minute_bars = pl.DataFrame({"ts": [START, START + minute], "open": [101.0, 100.0], "high": [102.0, 100.0],
                                    "low": [100.0, 100.0], "close": [101.0, 100.0]})
    one_minute_totals = pl.DataFrame({"ts": [START, START + minute], "long_usd": [100.0, 50.0],
                                      "short_usd": [0.0, 0.0]})
    grid = heatmap_from_totals(one_minute_totals, one_minute_bars, bucket_usd=1, every="1h")
    assert grid.ts.to_list() == [START]
    assert dict(zip(grid.price, grid.long_usd[0], strict=True)) == {100.0: 100.0, 101.0: 50.0}


def test_grid_views_by_time_and_price() -> None:
    grid = heatmap_from_totals(totals(*((h, 10.0, 0.0) for h in range(4))),
                               bars(*((h, 100 + h, 100 + h, 100 + h) for h in range(4))), bucket_usd=1)
    later = grid_since(grid, hour(2))
    assert later.ts.to_list() == [hour(2), hour(3)] and later.long_usd.sum() == 20
    assert grid_since(grid, None) is grid
    middle = grid_between(grid, 100.5, 102)
    assert middle.price.tolist() == [100, 101, 102] and middle.long_usd.sum() == 30


def test_grid_summary_cells_add_up_to_the_side_totals() -> None:
    grid = heatmap_from_totals(totals((0, 1000, 500), (1, 10, 20)), bars((0, 100, 110, 104), (1, 90, 95, 91)),
                               bucket_usd=3)
    summary = grid_summary(grid)
    assert summary["cell_total_usd"] == pytest.approx(1530)
    assert summary["long_usd"] == pytest.approx(1010) and summary["short_usd"] == pytest.approx(520)
    assert summary["times"] == 2 and summary["buckets"] == grid.price.size
    assert grid_cells(grid)["usd"].sum() == pytest.approx(1530)


# ---------------------------------------------------------------------------------------------
# Totals per window and the largest bursts


def test_window_totals_per_day_from_hourly_totals_and_events() -> None:
    hourly = totals((0, 10, 5), (1, 20, 0), (25, 0, 7))
    expected = pl.DataFrame({"ts": [START, START + timedelta(days=1)], "long_usd": [30.0, 0.0],
                             "short_usd": [5.0, 7.0], "total_usd": [35.0, 7.0], "long_share": [30 / 35, 0.0]})
    assert_frame_equal(window_totals(hourly, "1d"), expected)
    as_events = events((hour(0), "long", 10.0, 3.0, None), (hour(1), "short", 5.0, 1.0, None))
    assert window_totals(as_events, "1d").select("long_usd", "short_usd").row(0) == (30.0, 5.0)


def test_largest_bursts_rank_the_biggest_windows_with_the_move() -> None:
    hourly = totals((0, 10, 5), (1, 200, 0), (2, 0, 0), (3, 0, 70))
    ohlc = bars((0, 99, 101, 100), (1, 90, 100, 92), (2, 92, 93, 92), (3, 92, 99, 98))
    top = largest_bursts(hourly, n=2, bars=ohlc)
    assert top["rank"].to_list() == [1, 2]
    assert top["ts"].to_list() == [hour(1), hour(3)]
    assert top["total_usd"].to_list() == [200.0, 70.0]
    assert top["move"].to_list() == pytest.approx([0.0, 0.0])  # open = close in these bars
    assert largest_bursts(hourly, n=10)["ts"].to_list() == [hour(1), hour(3), hour(0)]  # empty hours left out


# ---------------------------------------------------------------------------------------------
# Real data: Coinglass hourly BTC liquidations on Binance USD-M hourly bars


def binance_bars(path: Path) -> pl.DataFrame:
    """A Binance kline parquet (open_time epoch ms, OHLCV) as canonical bars."""
    ts = pl.from_epoch("open_time", "ms").dt.replace_time_zone("UTC").alias("ts")
    return pl.read_parquet(path).select(ts, "open", "high", "low", "close", "volume")


def coinglass_hourly(path: Path) -> pl.DataFrame:
    """Coinglass hourly aggregates (timestamp epoch ms, longUsd, shortUsd) as liquidation_totals."""
    ts = pl.from_epoch("timestamp", "ms").dt.replace_time_zone("UTC").alias("ts")
    return pl.read_parquet(path).select(ts, pl.col("longUsd").alias("long_usd"), pl.col("shortUsd").alias("short_usd"))


@pytest.fixture
def btc_hourly(shared_data: Path) -> tuple[pl.DataFrame, pl.DataFrame, float]:
    raw = pl.read_parquet(shared_data / "liquidations" / "coinglass_BTC_liquidations_agg_1h.parquet")
    return (binance_bars(shared_data / "ohlcv" / "binance_usdm_BTCUSDT_1h.parquet"),
            coinglass_hourly(shared_data / "liquidations" / "coinglass_BTC_liquidations_agg_1h.parquet"),
            float(raw["totalUsd"].sum()))


@pytest.mark.parametrize("bucket", [100.0, 250.0, 1000.0])
def test_real_heatmap_total_equals_the_file_total(btc_hourly: tuple, bucket: float) -> None:
    btc_bars, hourly, file_total = btc_hourly
    grid = heatmap_from_totals(hourly, btc_bars, bucket_usd=bucket)
    assert grid.long_usd.sum() + grid.short_usd.sum() + grid.unplaced_usd == pytest.approx(file_total, rel=1e-9)
    after_bars = hourly.filter(pl.col("ts") > btc_bars["ts"].max())  # the bars file ends on 2026-05-17
    not_drawn = after_bars.select(pl.sum_horizontal("long_usd", "short_usd")).sum().item()
    assert grid.unplaced_usd == pytest.approx(not_drawn)


def test_real_biggest_hours_are_the_february_and_january_cascades(btc_hourly: tuple) -> None:
    btc_bars, hourly, _ = btc_hourly
    top = largest_bursts(hourly, n=10, bars=btc_bars)
    days = {ts.date().isoformat() for ts in top["ts"]}
    assert {"2026-02-05", "2026-02-06", "2026-01-31"} <= days
    assert top.row(0, named=True)["ts"] == datetime(2026, 2, 5, 20, tzinfo=UTC)
    feb5 = top.filter(pl.col("ts").dt.date() == datetime(2026, 2, 5).date())
    assert (feb5["long_usd"] > feb5["short_usd"]).all() and (feb5["move"] < 0).all()  # longs flushed on the way down


def test_a_sampled_feed_is_named_in_the_method() -> None:
    from datetime import UTC, datetime

    import polars as pl

    from lib.analytics.liquidations import SAMPLED_NOTE, heatmap_from_events

    events = pl.DataFrame({
        "symbol": "BTC", "ts": [datetime(2026, 1, 31, 18, tzinfo=UTC)] * 2, "side": ["long", "short"],
        "price": [80_000.0, 80_100.0], "qty": [1.0, 2.0], "notional_usd": [80_000.0, 160_200.0],
        "sampled": [True, False],
    })
    grid = heatmap_from_events(events, bucket_usd=100.0)
    assert SAMPLED_NOTE in grid.method
    assert SAMPLED_NOTE not in heatmap_from_events(events.with_columns(sampled=False), bucket_usd=100.0).method
