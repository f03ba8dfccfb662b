"""Drawdowns: hand-computed series named for their shape, metamorphic properties, real BTC data."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lib.analytics import drawdowns as dd
from lib.analytics import sessions

T0 = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday, 00:00 UTC


def bars(
    closes: list[float], hours: list[float] | None = None, symbol: str = "BTC", start: datetime = T0
) -> pl.DataFrame:
    """Bars of one symbol; `hours` are offsets from `start` (default: one bar an hour)."""
    offsets = hours if hours is not None else list(range(len(closes)))
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(closes),
            "ts": [start + timedelta(hours=h) for h in offsets],
            "close": [float(c) for c in closes],
        },
        schema={"symbol": pl.String, "ts": pl.Datetime("us", "UTC"), "close": pl.Float64},
    )


def at(hours: float, start: datetime = T0) -> datetime:
    return start + timedelta(hours=hours)


# Each shape: closes, bar offsets in hours (None: hourly), drawdown per bar, and its episodes as
# (peak h, trough h, recovery h or None, depth, peak->trough h, trough->recovery h, underwater h).
SHAPES = {
    "flat": ([100, 100, 100, 100], None, [0, 0, 0, 0], []),
    "all_up": ([100, 110, 121, 133.1], None, [0, 0, 0, 0], []),
    "single_row": ([100], None, [0], []),
    "empty": ([], None, [], []),
    "all_down": ([100, 90, 81, 72.9], None, [0, -0.1, -0.19, -0.271], [(0, 3, None, -0.271, 3, None, 3)]),
    "v_shape": ([100, 80, 60, 80, 100, 110], None, [0, -0.2, -0.4, -0.2, 0, 0], [(0, 2, 4, -0.4, 2, 2, 4)]),
    "two_dips": (
        [100, 90, 100, 120, 96, 108, 130],
        None,
        [0, -0.1, 0, 0, -0.2, -0.1, 0],
        [(0, 1, 2, -0.1, 1, 1, 2), (3, 4, 6, -0.2, 1, 2, 3)],
    ),
    "two_equal_peaks": (
        [100, 90, 100, 90, 100],
        None,
        [0, -0.1, 0, -0.1, 0],
        [(0, 1, 2, -0.1, 1, 1, 2), (2, 3, 4, -0.1, 1, 1, 2)],
    ),
    # 33 hourly bars missing between 02:00 and 36:00: durations span the gap in real hours.
    "with_gap": (
        [100, 95, 90, 85, 100, 105],
        [0, 1, 2, 36, 37, 38],
        [0, -0.05, -0.1, -0.15, 0, 0],
        [(0, 36, 37, -0.15, 36, 1, 37)],
    ),
    "never_recovers": (
        [100, 120, 90, 100, 95],
        None,
        [0, 0, -0.25, -1 / 6, -0.25 + 0.05 / 1.2],
        [(1, 2, None, -0.25, 1, None, 3)],
    ),
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_drawdown_series(shape: str) -> None:
    closes, hours, expected, _ = SHAPES[shape]
    result = dd.with_drawdown(bars(closes, hours))
    assert result[dd.DRAWDOWN].to_list() == pytest.approx(expected, abs=1e-12)
    assert (result[dd.DRAWDOWN] <= 0).all()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_episodes(shape: str) -> None:
    closes, hours, _, expected = SHAPES[shape]
    table = dd.episodes(dd.with_drawdown(bars(closes, hours)))
    got = [
        (
            r[dd.PEAK_TS],
            r[dd.TROUGH_TS],
            r[dd.RECOVERY_TS],
            r[dd.DEPTH],
            r[dd.PEAK_TO_TROUGH_HOURS],
            r[dd.TROUGH_TO_RECOVERY_HOURS],
            r[dd.UNDERWATER_HOURS],
            r[dd.ACTIVE],
        )
        for r in table.iter_rows(named=True)
    ]
    want = [
        (at(p), at(t), None if r is None else at(r), pytest.approx(d), p2t, t2r, uw, r is None)
        for p, t, r, d, p2t, t2r, uw in expected
    ]
    assert got == want


def test_episode_prices_and_bars() -> None:
    table = dd.episodes(dd.with_drawdown(bars(*SHAPES["v_shape"][:2])))
    assert table.select(dd.PEAK_PRICE, dd.TROUGH_PRICE, dd.BARS).row(0) == (100.0, pytest.approx(60.0), 4)


def test_intrabar_uses_low_against_running_high() -> None:
    frame = bars([100, 100, 100]).with_columns(
        high=pl.Series([101.0, 110.0, 105.0]), low=pl.Series([99.0, 88.0, 104.5])
    )
    result = dd.with_drawdown(frame, intrabar=True)
    assert result[dd.PEAK].to_list() == [101.0, 110.0, 110.0]
    assert result[dd.DRAWDOWN].to_list() == pytest.approx([99 / 101 - 1, 88 / 110 - 1, 104.5 / 110 - 1])
    # The bar that makes a new high may also hold the worst low: order inside a bar is unknown.
    table = dd.episodes(result)
    assert table[dd.DEPTH].to_list() == pytest.approx([99 / 101 - 1, -0.2])
    assert table[dd.RECOVERY_TS].to_list() == [at(1), None]


def test_drawdown_expression_matches_with_drawdown() -> None:
    frame = pl.concat([bars([100, 80, 120, 90], symbol="BTC"), bars([10, 11, 5, 6], symbol="ETH")])
    by_expression = frame.select(dd.drawdown(pl.col("close")).over("symbol"))["close"]
    assert by_expression.to_list() == pytest.approx(dd.with_drawdown(frame)[dd.DRAWDOWN].to_list())


def test_top_episodes_deepest_first_per_symbol() -> None:
    frame = pl.concat([bars(SHAPES["two_dips"][0], symbol="ETH"), bars(SHAPES["v_shape"][0], symbol="BTC")])
    top = dd.top_episodes(dd.episodes(dd.with_drawdown(frame)), 1)
    assert top.select("symbol", dd.DEPTH).rows() == [("BTC", pytest.approx(-0.4)), ("ETH", pytest.approx(-0.2))]
    tied = dd.top_episodes(dd.episodes(dd.with_drawdown(bars(SHAPES["two_equal_peaks"][0]))), 1)
    assert tied[dd.PEAK_TS].to_list() == [at(0)]  # equal depths: the earlier one


# --- desk metrics ------------------------------------------------------------------------------


def test_desk_metrics_v_shape() -> None:
    metrics = dd.desk_metrics(dd.with_drawdown(bars(SHAPES["v_shape"][0])), confidence=0.95).row(0, named=True)
    expected = {
        "bars": 6,
        "current_drawdown": 0.0,
        "max_drawdown": -0.4,
        "max_drawdown_peak_ts": at(0),
        "max_drawdown_trough_ts": at(2),
        "max_drawdown_recovery_ts": at(4),
        "average_drawdown": -0.4,
        "deep_drawdowns": 1,
        "longest_underwater_hours": 4.0,
        "total_return": 0.1,
        "cagr": None,  # 5 hours: too short to annualise
        "calmar": None,
        "ulcer_index": math.sqrt((0.04 + 0.16 + 0.04) / 6),
        "ulcer_performance_index": None,
        "pain_index": 0.8 / 6,
        "cdar": -0.4,  # worst ceil(5 % of 6) = 1 observation
        "recovery_factor": 0.1 / 0.4,
        "drawdown_from_30d_high": 0.0,
        "drawdown_from_90d_high": 0.0,
    }
    approx = {k: pytest.approx(v) if isinstance(v, float) else v for k, v in expected.items()}
    assert {k: metrics[k] for k in expected} == approx


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [(0.95, -0.4), (0.5, (-0.4 - 0.2 - 0.2) / 3), (0.0, -0.8 / 6), (0.99, -0.4)],
)
def test_cdar_is_the_mean_of_the_worst_observations(confidence: float, expected: float) -> None:
    series = pl.DataFrame({"d": [0.0, -0.2, -0.4, -0.2, 0.0, 0.0]})
    assert series.select(dd.conditional_drawdown_at_risk(pl.col("d"), confidence)).item() == pytest.approx(expected)


@pytest.mark.parametrize(
    ("days", "first", "last", "expected"),
    [
        (365, 100, 121, 0.21),
        (730, 100, 144, 0.2),
        (182.5, 100, 110, 0.21),  # half a year at +10 % compounds to +21 % a year
        (365, 100, 50, -0.5),
        (29, 100, 110, None),  # shorter than MIN_DAYS_TO_ANNUALISE
        (0, 100, 100, None),
    ],
)
def test_cagr_annualises_real_elapsed_time(days: float, first: float, last: float, expected: float | None) -> None:
    frame = bars([first, last], hours=[0, days * 24])
    got = frame.select(dd.cagr(pl.col("close"), pl.col("ts"))).item()
    assert got == (None if expected is None else pytest.approx(expected))


def test_calmar_and_ulcer_performance_on_one_year_with_gaps() -> None:
    # Three daily closes a year apart in total: annualisation follows timestamps, not bar counts.
    frame = bars([100, 50, 121], hours=[0, 100 * 24, 365 * 24])
    metrics = dd.desk_metrics(dd.with_drawdown(frame)).row(0, named=True)
    ulcer = math.sqrt(0.25 / 3)
    assert metrics["cagr"] == pytest.approx(0.21)
    assert metrics["calmar"] == pytest.approx(0.21 / 0.5)
    assert metrics["ulcer_index"] == pytest.approx(ulcer)
    assert metrics["ulcer_performance_index"] == pytest.approx(0.21 / ulcer)
    assert metrics["longest_underwater_hours"] == 365 * 24
    rf = dd.desk_metrics(dd.with_drawdown(frame), risk_free_rate=0.05).row(0, named=True)
    assert rf["ulcer_performance_index"] == pytest.approx(0.16 / ulcer)


def test_trailing_high_windows() -> None:
    frame = bars([200, 190, 120, 180, 150], hours=[d * 24 for d in (0, 10, 40, 70, 95)])
    metrics = dd.desk_metrics(dd.with_drawdown(frame)).row(0, named=True)
    assert metrics["current_drawdown"] == pytest.approx(-0.25)
    assert metrics["drawdown_from_30d_high"] == pytest.approx(150 / 180 - 1)  # window (day 65, day 95]
    assert metrics["drawdown_from_90d_high"] == pytest.approx(150 / 190 - 1)  # window (day 5, day 95]
    edge = bars([200, 190, 120], hours=[d * 24 for d in (0, 10, 40)])  # day 10 is exactly 30 days before day 40
    assert dd.desk_metrics(dd.with_drawdown(edge))["drawdown_from_30d_high"].item() == 0.0
    rolling = frame.select(dd.trailing_drawdown(pl.col("close"), pl.col("ts"), "30d"))["close"]
    # Day 40 looks back over (day 10, day 40]: day 10 itself has left the window.
    assert rolling.to_list() == pytest.approx([0.0, -0.05, 0.0, 0.0, 150 / 180 - 1])


def test_deep_drawdowns_counts_episodes_at_or_below_the_threshold() -> None:
    frame = dd.with_drawdown(bars(SHAPES["two_dips"][0]))
    assert dd.desk_metrics(frame, deeper_than=-0.15)["deep_drawdowns"].item() == 1
    assert dd.desk_metrics(frame, deeper_than=-0.05)["deep_drawdowns"].item() == 2
    assert dd.desk_metrics(frame, deeper_than=-0.5)["deep_drawdowns"].item() == 0


@pytest.mark.parametrize("shape", ["flat", "all_up", "single_row"])
def test_desk_metrics_without_drawdowns(shape: str) -> None:
    metrics = dd.desk_metrics(dd.with_drawdown(bars(SHAPES[shape][0]))).row(0, named=True)
    assert metrics["max_drawdown"] == 0.0
    assert metrics["max_drawdown_peak_ts"] is None
    assert metrics["average_drawdown"] is None
    assert metrics["deep_drawdowns"] == 0
    assert metrics["longest_underwater_hours"] == 0.0
    assert (metrics["calmar"], metrics["recovery_factor"], metrics["ulcer_performance_index"]) == (None, None, None)
    assert (metrics["ulcer_index"], metrics["pain_index"], metrics["cdar"]) == (0.0, 0.0, 0.0)


def test_desk_metrics_never_recovers() -> None:
    metrics = dd.desk_metrics(dd.with_drawdown(bars(SHAPES["never_recovers"][0]))).row(0, named=True)
    assert metrics["current_drawdown"] == pytest.approx(95 / 120 - 1)
    assert metrics["max_drawdown_recovery_ts"] is None
    assert metrics["longest_underwater_hours"] == 3.0


def test_empty_frame_gives_empty_tables() -> None:
    frame = dd.with_drawdown(bars([]))
    assert dd.episodes(frame).height == 0
    assert dd.desk_metrics(frame).height == 0


# --- metamorphic properties --------------------------------------------------------------------

MIXED = [100, 104, 97, 99, 110, 88, 90, 95, 111, 108, 120, 60, 70]


@pytest.mark.parametrize("factor", [1e-6, 0.37, 1.0, 1234.5, 1e9])
def test_scaling_prices_leaves_drawdowns_unchanged(factor: float) -> None:
    base = dd.with_drawdown(bars(MIXED))
    scaled = dd.with_drawdown(bars([c * factor for c in MIXED]))
    assert scaled[dd.DRAWDOWN].to_list() == pytest.approx(base[dd.DRAWDOWN].to_list(), abs=1e-12)
    columns = [dd.PEAK_TS, dd.TROUGH_TS, dd.RECOVERY_TS, dd.DEPTH, dd.UNDERWATER_HOURS]
    assert_frame_equal(dd.episodes(scaled).select(columns), dd.episodes(base).select(columns))
    metrics = ["max_drawdown", "ulcer_index", "pain_index", "cdar", "total_return"]
    assert_frame_equal(dd.desk_metrics(scaled).select(metrics), dd.desk_metrics(base).select(metrics))


def test_over_symbol_equals_each_symbol_alone() -> None:
    alone = {
        "BTC": bars(MIXED, symbol="BTC"),
        "ETH": bars(SHAPES["two_dips"][0], symbol="ETH", start=T0 + timedelta(minutes=30)),
        "SOL": bars(SHAPES["with_gap"][0], SHAPES["with_gap"][1], symbol="SOL"),
    }
    # Interleave the rows: with_drawdown sorts, and windows run per symbol.
    together = pl.concat(alone.values()).sort("ts", "symbol", descending=True)
    for function in (dd.with_drawdown, lambda f: dd.episodes(dd.with_drawdown(f))):
        combined = function(together)
        for symbol, frame in alone.items():
            assert_frame_equal(combined.filter(pl.col("symbol") == symbol), function(frame), check_exact=True)
    metrics = dd.desk_metrics(dd.with_drawdown(together))
    for symbol, frame in alone.items():
        assert_frame_equal(metrics.filter(pl.col("symbol") == symbol), dd.desk_metrics(dd.with_drawdown(frame)))


def test_lazy_and_eager_agree() -> None:
    frame = bars(MIXED)
    eager = dd.with_drawdown(frame)
    lazy = dd.with_drawdown(frame.lazy())
    assert isinstance(lazy, pl.LazyFrame)
    assert_frame_equal(lazy.collect(), eager)
    assert_frame_equal(dd.episodes(lazy).collect(), dd.episodes(eager))
    assert_frame_equal(dd.desk_metrics(lazy).collect(), dd.desk_metrics(eager))


def test_inputs_are_not_mutated() -> None:
    frame = bars(MIXED)
    liquidations = pl.DataFrame({"ts": [at(h) for h in range(13)], "long_usd": [1.0] * 13, "short_usd": [0.0] * 13})
    copies = frame.clone(), liquidations.clone()
    result = dd.with_drawdown(frame)
    table = dd.episodes(result)
    result_copy, table_copy = result.clone(), table.clone()
    dd.desk_metrics(result)
    dd.attribution(result, table, liquidations=liquidations)
    dd.decline_by_period(result, table)
    dd.underwater_together(dd.aligned_drawdowns(frame))
    assert_frame_equal(frame, copies[0])
    assert_frame_equal(liquidations, copies[1])
    assert_frame_equal(result, result_copy)
    assert_frame_equal(table, table_copy)


# --- attribution -------------------------------------------------------------------------------

FRIDAY_22H = datetime(2024, 1, 5, 22, tzinfo=UTC)


def test_attribution_weekend_and_sessions() -> None:
    # Peak Friday 22:00; -10 % Friday 23:00 (weekday, late US); two -10 % bars Saturday 00:00 and
    # 01:00 (weekend, Asia); +5 % Saturday 02:00; trough Saturday 03:00 after -10 %; then recovery.
    closes = [100, 90, 81, 72.9, 76.545, 68.8905, 101]
    frame = dd.with_drawdown(bars(closes, start=FRIDAY_22H))
    table = dd.episodes(frame)
    result = dd.attribution(frame, table).row(0, named=True)
    down, up = math.log(0.9), math.log(1.05)
    total = 4 * down + up
    assert result["decline_log_return"] == pytest.approx(total)
    assert result["decline_log_return"] == pytest.approx(math.log(1 + result["depth"]))
    assert result["weekday_share"] == pytest.approx(down / total)
    assert result["weekend_share"] == pytest.approx((3 * down + up) / total)
    assert result["weekend_time_share"] == pytest.approx(4 / 5)
    assert result["late_us_share"] == pytest.approx(down / total)
    assert result["asia_share"] == pytest.approx((3 * down + up) / total)
    assert (result["europe_share"], result["us_share"]) == (0.0, 0.0)
    assert sum(result[f"{s}_share"] for s in sessions.SESSIONS) == pytest.approx(1.0)
    assert "burst_share" not in result


def test_attribution_cme_weekend_starts_friday_afternoon_chicago() -> None:
    closes = [100, 90, 81, 72.9, 76.545, 68.8905, 101]
    frame = dd.with_drawdown(bars(closes, start=FRIDAY_22H))
    result = dd.attribution(frame, dd.episodes(frame), weekend="cme").row(0, named=True)
    assert result["weekend_share"] == pytest.approx(1.0)  # Friday 23:00 UTC is 17:00 CT, after the close
    with pytest.raises(ValueError, match="unknown weekend definition"):
        dd.attribution(frame, dd.episodes(frame), weekend="moon")


def test_attribution_liquidation_bursts() -> None:
    closes = [100, 90, 81, 72.9, 76.545, 68.8905, 101]
    frame = dd.with_drawdown(bars(closes, start=FRIDAY_22H))
    table = dd.episodes(frame)
    # Hourly liquidations for the first five bars only; 23:00 and 01:00 are bursts at 1M USD.
    liquidations = pl.DataFrame(
        {
            "symbol": ["BTC"] * 5 + ["ETH"],
            "ts": [FRIDAY_22H + timedelta(hours=h) for h in range(5)] + [FRIDAY_22H + timedelta(hours=5)],
            "long_usd": [0.0, 2e6, 1e5, 9e5, 0.0, 5e9],
            "short_usd": [1e5, 0.0, 1e5, 2e5, 1e5, 0.0],
        }
    )
    result = dd.attribution(frame, table, liquidations=liquidations, burst_usd=1e6).row(0, named=True)
    down = math.log(0.9)
    covered = 3 * down + math.log(1.05)  # bars 23:00 .. 02:00; 03:00 has no liquidation data
    assert result["liquidation_coverage"] == pytest.approx(4 / 5)
    assert result["burst_share"] == pytest.approx(2 * down / covered)
    assert result["burst_time_share"] == pytest.approx(2 / 4)


def test_liquidation_burst_rule() -> None:
    hourly = pl.DataFrame(
        {
            "symbol": ["BTC"] * 21,
            "ts": [at(h) for h in range(21)],
            "long_usd": [float(h) for h in range(21)],
            "short_usd": [0.0] * 21,
        }
    )
    by_quantile = dd.liquidation_bursts(hourly)  # 95th percentile of 0..20 is 19
    assert by_quantile.filter("burst")["total_usd"].to_list() == [19.0, 20.0]
    by_usd = dd.liquidation_bursts(hourly, usd=15.0)
    assert by_usd.filter("burst")["total_usd"].to_list() == [15.0, 16.0, 17.0, 18.0, 19.0, 20.0]
    quiet = dd.liquidation_bursts(hourly.with_columns(long_usd=pl.lit(0.0)))
    assert not quiet["burst"].any()  # an all-zero window has no burst
    two_exchanges = pl.concat([hourly, hourly])
    assert dd.liquidation_bursts(two_exchanges)["total_usd"].to_list() == [2.0 * h for h in range(21)]


def test_decline_by_period_splits_the_decline_into_legs() -> None:
    closes = [100, 90, 81, 72.9, 76.545, 68.8905, 101]
    frame = dd.with_drawdown(bars(closes, start=FRIDAY_22H))
    legs = dd.decline_by_period(frame, dd.episodes(frame), every="1d")
    down, up = math.log(0.9), math.log(1.05)
    assert legs.select("period_start", "weekend").rows() == [
        (datetime(2024, 1, 5, tzinfo=UTC), False),
        (datetime(2024, 1, 6, tzinfo=UTC), True),
    ]
    assert legs["log_return"].to_list() == pytest.approx([down, 3 * down + up])
    assert legs["share"].sum() == pytest.approx(1.0)


# --- cross-asset -------------------------------------------------------------------------------


def test_aligned_drawdowns_keep_common_timestamps_and_restart_peaks() -> None:
    btc = bars([100, 50, 60, 70, 80], symbol="BTC")
    eth = bars([20, 10, 5, 10], hours=[1, 2, 3, 4], symbol="ETH")  # starts an hour later
    sol = bars([1, 2, 1, 2, 1], symbol="SOL").filter(pl.col("ts") != at(3))  # misses 03:00
    aligned = dd.aligned_drawdowns(pl.concat([btc, eth, sol]))
    assert aligned.group_by("symbol").agg(pl.col("ts")).sort("symbol")["ts"].to_list() == [[at(1), at(2), at(4)]] * 3
    btc_dd = aligned.filter(pl.col("symbol") == "BTC")[dd.DRAWDOWN].to_list()
    assert btc_dd == pytest.approx([0.0, 0.0, 0.0])  # the 100 before the common window does not count


def test_underwater_together() -> None:
    frame = pl.concat(
        [
            bars([100, 90, 80, 100, 90], symbol="BTC"),  # under: bars 1, 2, 4; below -15 %: bar 2
            bars([100, 110, 90, 80, 120], symbol="ETH"),  # under: bars 2, 3; below -15 %: bars 2, 3
        ]
    )
    shares = dd.underwater_together(dd.aligned_drawdowns(frame))
    assert shares.drop("deeper_than").rows() == [(["BTC"], 0.6), (["ETH"], 0.4), (["BTC", "ETH"], 0.2)]
    deep = dd.underwater_together(dd.aligned_drawdowns(frame), deeper_than=-0.15)
    assert deep.rows() == [(["BTC"], 0.2, -0.15), (["ETH"], 0.4, -0.15), (["BTC", "ETH"], 0.2, -0.15)]
    with pytest.raises(ValueError, match="same timestamps"):
        dd.underwater_together(dd.with_drawdown(pl.concat([frame, bars([1, 2], symbol="SOL")])))


# --- sessions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        (0, 0, "asia"),
        (7, 59, "asia"),
        (8, 0, "europe"),
        (13, 29, "europe"),
        (13, 30, "us"),
        (20, 59, "us"),
        (21, 0, "late_us"),
        (23, 59, "late_us"),
    ],
)
def test_session_boundaries(hour: int, minute: int, expected: str) -> None:
    ts = pl.DataFrame({"ts": [datetime(2024, 1, 3, hour, minute, tzinfo=UTC)]})
    assert ts.select(sessions.session(pl.col("ts"))).item() == expected


@pytest.mark.parametrize(
    ("moment", "utc", "cme"),
    [
        (datetime(2024, 1, 5, 21, 59, tzinfo=UTC), False, False),  # Fri 15:59 CST
        (datetime(2024, 1, 5, 22, 0, tzinfo=UTC), False, True),  # Fri 16:00 CST: CME closes
        (datetime(2024, 1, 6, 0, 0, tzinfo=UTC), True, True),
        (datetime(2024, 1, 7, 22, 59, tzinfo=UTC), True, True),  # Sun 16:59 CST
        (datetime(2024, 1, 7, 23, 0, tzinfo=UTC), True, False),  # Sun 17:00 CST: CME reopens
        (datetime(2024, 1, 8, 0, 0, tzinfo=UTC), False, False),
        (datetime(2024, 7, 5, 21, 0, tzinfo=UTC), False, True),  # Fri 16:00 CDT (summer time)
    ],
)
def test_weekend_definitions(moment: datetime, utc: bool, cme: bool) -> None:
    ts = pl.DataFrame({"ts": [moment]})
    assert ts.select(sessions.is_weekend(pl.col("ts"), "utc")).item() is utc
    assert ts.select(sessions.is_weekend(pl.col("ts"), "cme")).item() is cme


def test_weekend_windows() -> None:
    windows = sessions.weekend_windows(datetime(2026, 1, 31, 12), datetime(2026, 2, 9))
    assert windows == [
        (datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC)),
        (datetime(2026, 2, 7, tzinfo=UTC), datetime(2026, 2, 9, tzinfo=UTC)),
    ]
    cme = sessions.weekend_windows(datetime(2026, 1, 26), datetime(2026, 2, 1), "cme")
    assert cme == [(datetime(2026, 1, 30, 22, tzinfo=UTC), datetime(2026, 2, 1, 23, tzinfo=UTC))]


# --- real data ---------------------------------------------------------------------------------


def binance_bars(path: Path, symbol: str) -> pl.DataFrame:
    return pl.read_parquet(path).select(
        pl.lit(symbol).alias("symbol"),
        pl.from_epoch("open_time", "ms").dt.replace_time_zone("UTC").alias("ts"),
        "open",
        "high",
        "low",
        "close",
    )


def numpy_drawdown(closes: np.ndarray) -> np.ndarray:
    """An independent implementation: close over its running maximum (quantstats' formula)."""
    return closes / np.maximum.accumulate(closes) - 1


def test_btc_daily_max_drawdown_and_ulcer_against_numpy(shared_data: Path) -> None:
    btc = binance_bars(shared_data / "ohlcv" / "binance_spot_BTCUSDT_1d.parquet", "BTC")
    closes = btc["close"].to_numpy()
    reference = numpy_drawdown(closes)
    frame = dd.with_drawdown(btc)
    metrics = dd.desk_metrics(frame).row(0, named=True)
    np.testing.assert_allclose(frame[dd.DRAWDOWN].to_numpy(), reference, rtol=0, atol=1e-15)
    assert metrics["max_drawdown"] == pytest.approx(reference.min(), abs=1e-15)
    assert metrics["max_drawdown"] == pytest.approx(-0.8118477145881702, abs=1e-12)  # 2018-01-06 -> 2018-12-15
    assert (metrics["max_drawdown_peak_ts"], metrics["max_drawdown_trough_ts"]) == (
        datetime(2018, 1, 6, tzinfo=UTC),
        datetime(2018, 12, 15, tzinfo=UTC),
    )
    assert metrics["ulcer_index"] == pytest.approx(np.sqrt(np.mean(reference**2)), rel=1e-12)
    # quantstats' ulcer_index divides the sum of squares by N - 1 instead of Martin's N.
    quantstats_ulcer = np.sqrt(np.sum(reference**2) / (len(reference) - 1))
    assert metrics["ulcer_index"] * math.sqrt(len(reference) / (len(reference) - 1)) == pytest.approx(quantstats_ulcer)
    second = dd.top_episodes(dd.episodes(frame), 2).row(1, named=True)
    assert (second[dd.PEAK_TS], second[dd.TROUGH_TS]) == (
        datetime(2021, 11, 8, tzinfo=UTC),
        datetime(2022, 11, 21, tzinfo=UTC),
    )
    assert second[dd.DEPTH] == pytest.approx(15781.29 / 67525.83 - 1)  # the -77 % of the 2022 bear market


def test_real_hours_not_business_days_or_dates(shared_data: Path) -> None:
    """Where pyfolio and quantstats differ from us, on the 2021-2022 BTC bear market.

    pyfolio's gen_drawdown_table counts business days (pd.date_range(freq="B")), dropping the
    weekends crypto trades through; quantstats' drawdown_details counts (end - start).days + 1
    calendar days and formats dates as strings, so intraday episodes collapse onto one date.
    We count real hours between bar open times.
    """
    btc = binance_bars(shared_data / "ohlcv" / "binance_spot_BTCUSDT_1d.parquet", "BTC")
    episode = dd.top_episodes(dd.episodes(dd.with_drawdown(btc)), 2).row(1, named=True)
    peak, recovery = episode[dd.PEAK_TS], episode[dd.RECOVERY_TS]
    real_days = episode[dd.UNDERWATER_HOURS] / 24
    assert real_days == (recovery - peak).days == 847
    pyfolio_duration = len(pd.date_range(peak.replace(tzinfo=None), recovery.replace(tzinfo=None), freq="B"))
    assert pyfolio_duration == 606  # 241 days (28 %) short: every weekend of a 24/7 market dropped
    assert (recovery - peak).days + 1 == 848  # quantstats adds one day
    hourly = binance_bars(shared_data / "ohlcv" / "binance_spot_BTCUSDT_1h_ohlcv.parquet", "BTC")
    table = dd.episodes(dd.with_drawdown(hourly))
    # 144 of the 164 hourly episodes share their peak date with another episode: distinct rows for
    # us, rows with the same start date for quantstats; 98 peak and recover within one day.
    shared_dates = table.group_by(pl.col(dd.PEAK_TS).dt.date()).len().filter(pl.col("len") > 1)
    assert (table.height, shared_dates["len"].sum()) == (164, 144)
    assert table.filter(pl.col(dd.PEAK_TS).dt.date() == pl.col(dd.RECOVERY_TS).dt.date()).height == 98
    assert table[dd.PEAK_TS].is_unique().all()


def test_oct_2025_to_feb_2026_episode_on_hourly_data(shared_data: Path) -> None:
    hourly = binance_bars(shared_data / "ohlcv" / "binance_spot_BTCUSDT_1h_ohlcv.parquet", "BTC")
    frame = dd.with_drawdown(hourly)
    table = dd.episodes(frame)
    episode = table.filter(pl.col(dd.PEAK_TS).dt.year() == 2025, pl.col(dd.DEPTH) < -0.4).row(0, named=True)
    window = hourly.filter(pl.col("ts") >= episode[dd.PEAK_TS])
    closes, times = window["close"].to_numpy(), window["ts"].to_list()
    reference = numpy_drawdown(closes)
    assert episode[dd.PEAK_TS] == datetime(2025, 10, 6, 18, tzinfo=UTC) == times[0]
    assert closes[0] == hourly["close"].filter(hourly["ts"] <= times[0]).max()  # the all-time high
    assert episode[dd.TROUGH_TS] == times[int(reference.argmin())]
    assert episode[dd.TROUGH_TS].year == 2026 and episode[dd.TROUGH_TS].month == 2
    assert episode[dd.DEPTH] == pytest.approx(reference.min())
    # The Saturday 31 Jan and the Thursday 5 Feb legs are among the three worst days of the decline.
    legs = dd.decline_by_period(frame, table.filter(pl.col(dd.EPISODE) == episode[dd.EPISODE]), every="1d")
    worst = legs.sort("log_return").head(3)
    assert {datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 5, tzinfo=UTC)} <= set(worst["period_start"])
    assert worst.filter(pl.col("period_start") == datetime(2026, 1, 31, tzinfo=UTC))["weekend"].item() is True
