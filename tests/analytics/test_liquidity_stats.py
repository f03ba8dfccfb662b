"""Weekend statistics: hand examples, known-answer synthetic data, and the real Coinglass depth."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats

from lib.analytics import liquidity as liq
from lib.analytics import liquidity_stats as ls
from lib.schema import DEPTH, conform

MONDAY = date(2024, 1, 1)


def synthetic_days(
    weekend_factor: float, *, weeks: int = 104, rho: float = 0.5, seed: int = 1, symbol: str = "BTC"
) -> pl.DataFrame:
    """A `daily` frame of `weeks` weeks: volume = 100 × exp(AR(1) noise, ρ = `rho`) × `weekend_factor`
    on Saturdays and Sundays, so the true weekend / weekday ratio of means is `weekend_factor`."""
    rng = np.random.default_rng(seed)
    n = weeks * 7
    noise = np.zeros(n)
    shocks = rng.normal(0, 0.3, n)
    for i in range(1, n):
        noise[i] = rho * noise[i - 1] + shocks[i]
    dates = [MONDAY + timedelta(days=i) for i in range(n)]
    weekend = np.array([d.isoweekday() >= 6 for d in dates])
    return pl.DataFrame(
        {
            "symbol": symbol,
            liq.DATE: dates,
            liq.WEEKEND: weekend,
            liq.WEEKDAY: [d.isoweekday() for d in dates],
            liq.WEEK: [d - timedelta(days=d.weekday()) for d in dates],
            liq.VOLUME: 100 * np.exp(noise) * np.where(weekend, weekend_factor, 1.0),
        },
        schema_overrides={liq.WEEKDAY: pl.Int8},
    )


# ---------------------------------------------------------------------------------------------
# Building blocks


def test_benjamini_hochberg_hand_example() -> None:
    # Sorted 0.005, 0.01, 0.03, 0.04, 0.20 (m = 5): m p / rank = 0.025, 0.025, 0.05, 0.05, 0.20, then
    # the running minimum from the largest down leaves them as they are.
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.20])
    assert ls.benjamini_hochberg(p) == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.20])


def test_benjamini_hochberg_takes_the_running_minimum_and_skips_nan() -> None:
    # 0.04 × 3 / 2 = 0.06 > 0.045 × 3 / 3 = 0.045, so the step-up gives 0.045 to both.
    p = np.array([0.04, np.nan, 0.045, 0.001])
    q = ls.benjamini_hochberg(p)
    assert np.isnan(q[1])
    assert q[[0, 2, 3]] == pytest.approx([0.045, 0.045, 0.003])


@pytest.mark.parametrize(
    ("name", "x", "expected"),
    [
        # d = −1.5, −0.5, 0.5, 1.5: ρ₁ = 1.25 / 5 = 0.25, n_eff = 4 × 0.75 / 1.25 = 2.4
        ("trend", [1.0, 2.0, 3.0, 4.0], 2.4),
        ("alternating", [1.0, -1.0, 1.0, -1.0, 1.0, -1.0], 6.0),  # ρ₁ < 0 is not used to claim more
        ("flat", [5.0, 5.0, 5.0], 3.0),
        ("with_nan", [1.0, np.nan, 2.0, 3.0, 4.0], 2.4),
        ("two_values", [1.0, 2.0], 2.0),
    ],
)
def test_effective_sample_size(name: str, x: list[float], expected: float) -> None:
    assert ls.effective_sample_size(np.array(x)) == pytest.approx(expected)


@pytest.mark.parametrize(("n", "lags"), [(100, 4), (730, 6), (10, 2)])
def test_newey_west_lags(n: int, lags: int) -> None:
    assert ls.newey_west_lags(n) == lags


def test_mann_whitney_vs_rest_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 20, 300).astype(float)
    groups = rng.integers(0, 5, 300)
    values[groups == 2] += 4
    labels, p = ls.mann_whitney_vs_rest(values, groups)
    expected = [
        stats.mannwhitneyu(values[groups == g], values[groups != g], method="asymptotic").pvalue for g in labels
    ]
    assert list(labels) == [0, 1, 2, 3, 4]
    assert p == pytest.approx(expected, rel=1e-9)


def test_bootstrap_is_seeded() -> None:
    """Its speed is bench/liquidity_bench.py's figure, not a test's."""
    days = synthetic_days(0.6)
    args = (days[liq.VOLUME].to_numpy(), days[liq.WEEKEND].to_numpy(), days[liq.WEEK].to_physical().to_numpy())
    first = ls.bootstrap_ratio_ci(*args, n_resamples=2000)
    assert first == ls.bootstrap_ratio_ci(*args, n_resamples=2000)
    assert first != ls.bootstrap_ratio_ci(*args, n_resamples=2000, seed=2)


def test_bootstrap_needs_two_blocks() -> None:
    one_week = synthetic_days(0.6, weeks=1)
    args = (
        one_week[liq.VOLUME].to_numpy(),
        one_week[liq.WEEKEND].to_numpy(),
        one_week[liq.WEEK].to_physical().to_numpy(),
    )
    assert all(math.isnan(x) for x in ls.bootstrap_ratio_ci(*args))


# ---------------------------------------------------------------------------------------------
# Known answers


@pytest.mark.parametrize("block", ["week", "day"])
def test_a_weekend_factor_of_0_6_is_found_and_significant(block: str) -> None:
    effect = ls.weekend_effect(synthetic_days(0.6), [liq.VOLUME], block=block).row(0, named=True)
    assert effect["ci_low"] < 0.6 < effect["ci_high"] < 1
    assert effect["ratio"] == pytest.approx(0.6, abs=0.05)
    assert (effect["n_weekday"], effect["n_weekend"]) == (520, 208)
    assert effect["n_eff_weekend"] < effect["n_weekend"]  # ρ = 0.5: far fewer independent days
    assert max(effect["p_mannwhitney"], effect["p_welch"], effect["p_hac"]) < 1e-6
    sentence = ls.verdict(effect)
    assert sentence.startswith("Weekend BTC base volume is ")
    assert sentence.endswith(", 2024-2025, significant at 5 %.")


def test_no_weekend_effect_is_not_significant() -> None:
    effect = ls.weekend_effect(synthetic_days(1.0), [liq.VOLUME]).row(0, named=True)
    assert effect["ci_low"] < 1 < effect["ci_high"]
    assert ls.verdict(effect).endswith("not significant at 5 %.")


def test_week_blocks_keep_a_weeks_shared_level_out_of_the_ratio() -> None:
    # With persistent levels (ρ = 0.9) a weekend and its weekdays share the week's level, which cancels
    # in the ratio when the week is resampled whole; resampling days alone pairs a weekend with the
    # weekdays of other weeks and overstates the uncertainty.
    days = synthetic_days(0.6, rho=0.9)
    width = {
        block: float(np.diff(ls.weekend_effect(days, [liq.VOLUME], block=block).select("ci_low", "ci_high").row(0))[0])
        for block in ("day", "week")
    }
    assert width["week"] < width["day"]


def test_weekend_effect_is_per_symbol_and_leaves_input_alone() -> None:
    days = pl.concat([synthetic_days(0.6, symbol="BTC"), synthetic_days(1.0, seed=2, symbol="ETH")])
    before = days.clone()
    table = ls.weekend_effect(days, [liq.VOLUME])
    assert table["symbol"].to_list() == ["BTC", "ETH"]
    assert table.columns[:5] == ["symbol", "measure", "first_date", "last_date", "confidence"]
    assert days.equals(before)


def test_weekend_effect_with_too_few_days() -> None:
    days = synthetic_days(0.6, weeks=1).filter(pl.col(liq.WEEKDAY) <= 6)  # a single weekend day
    effect = ls.weekend_effect(days, [liq.VOLUME]).row(0, named=True)
    assert math.isnan(effect["ratio"]) and effect["n_weekend"] == 1
    assert ls.verdict(effect) == "Weekend BTC base volume: not enough data to compare with weekdays, 2024."


def test_unknown_block_raises() -> None:
    with pytest.raises(ValueError, match="unknown bootstrap block"):
        ls.weekend_effect(synthetic_days(0.6), [liq.VOLUME], block="month")


# ---------------------------------------------------------------------------------------------
# Day of week and hour of week


def test_day_of_week_means_are_the_day_means_with_hac_intervals() -> None:
    days = synthetic_days(0.6)
    means = ls.day_of_week_means(days, liq.VOLUME)
    expected = days.group_by(liq.WEEKDAY).agg(pl.col(liq.VOLUME).mean(), pl.len()).sort(liq.WEEKDAY)
    assert means[liq.WEEKDAY].to_list() == list(range(1, 8))
    assert means["mean"].to_list() == pytest.approx(expected[liq.VOLUME].to_list())
    assert means["n"].to_list() == expected["len"].to_list()
    assert (means["ci_low"] < means["mean"]).all() and (means["mean"] < means["ci_high"]).all()


def test_day_of_week_tests() -> None:
    days = synthetic_days(0.6)
    row = ls.day_of_week_tests(days, liq.VOLUME).row(0, named=True)
    by_day = [days.filter(pl.col(liq.WEEKDAY) == d)[liq.VOLUME].to_numpy() for d in range(1, 8)]
    assert row["p_kruskal"] == pytest.approx(stats.kruskal(*by_day).pvalue)
    assert row["p_hac_wald"] < 1e-6 and row["n_days"] == 728
    flat = ls.day_of_week_tests(synthetic_days(1.0), liq.VOLUME).row(0, named=True)
    assert flat["p_kruskal"] > 0.05 and flat["p_hac_wald"] > 0.05


def test_hour_of_week_tests_find_the_one_busy_hour() -> None:
    rng = np.random.default_rng(5)
    hours = 24 * 7 * 30
    ts = pl.datetime_range(
        pl.datetime(2024, 1, 1, time_zone="UTC"),
        pl.datetime(2024, 1, 1, time_zone="UTC") + timedelta(hours=hours - 1),
        "1h",
        eager=True,
    )
    frame = liq.with_calendar(pl.DataFrame({"symbol": "BTC", "ts": ts, liq.VOLUME: rng.lognormal(0, 0.2, hours)}))
    frame = frame.with_columns(
        pl.when((pl.col(liq.WEEKDAY) == 3) & (pl.col(liq.HOUR) == 14))
        .then(pl.col(liq.VOLUME) * 2)
        .otherwise(pl.col(liq.VOLUME))
    )
    cells = ls.hour_of_week_tests(frame, liq.VOLUME)
    assert cells.height == 168
    assert cells.filter("significant").select(liq.WEEKDAY, liq.HOUR).rows() == [(3, 14)]
    assert (cells["q"] >= cells["p"]).all()


# ---------------------------------------------------------------------------------------------
# Verdicts


def effect_row(
    ratio: float, low: float, high: float, *, measure: str = liq.QUOTE_VOLUME, first: int = 2024, last: int = 2025
) -> dict:
    return {
        "symbol": "BTC",
        "measure": measure,
        "first_date": date(first, 1, 1),
        "last_date": date(last, 12, 31),
        "confidence": 0.95,
        "ratio": ratio,
        "ci_low": low,
        "ci_high": high,
    }


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            effect_row(0.62, 0.58, 0.67),
            "Weekend BTC quote volume is 38 % lower than on weekdays (95 % CI 33-42 %), 2024-2025, significant at 5 %.",
        ),
        (
            effect_row(1.19, 1.14, 1.23, measure=liq.AMIHUD),
            "Weekend BTC Amihud illiquidity is 19 % higher than on weekdays (95 % CI 14-23 %), 2024-2025, significant at 5 %.",
        ),
        (
            effect_row(0.97, 0.92, 1.03, last=2024),
            "Weekend BTC quote volume is 3 % lower than on weekdays (95 % CI 8 % lower to 3 % higher), 2024, not significant at 5 %.",
        ),
        (
            effect_row(0.9886, 0.9819, 0.9959, measure=liq.TAKER_BUY_SHARE),
            "Weekend BTC taker-buy share is 1.1 % lower than on weekdays (95 % CI 0.4-1.8 %), 2024-2025, significant at 5 %.",
        ),
        (
            effect_row(1.0, 0.9, 1.1),
            "Weekend BTC quote volume is about the same as on weekdays (95 % CI 10 % lower to 10 % higher), 2024-2025, not significant at 5 %.",
        ),
        (
            effect_row(0.5, math.nan, math.nan),
            "Weekend BTC quote volume is 50 % lower than on weekdays (2024-2025); too few weeks for a confidence interval.",
        ),
    ],
)
def test_verdicts(row: dict, expected: str) -> None:
    assert ls.verdict(row) == expected


# ---------------------------------------------------------------------------------------------
# Real data: Coinglass aggregated ±1 % depth (Binance, OKX, Bybit futures), daily


def coinglass_depth(path: Path) -> pl.DataFrame:
    """The Coinglass export → canonical `depth` rows (a local helper: lib/sources is not under test)."""
    raw = pl.read_parquet(path).filter(pl.col("range_pct") == 1.0)
    return conform(
        raw.select(
            pl.lit("coinglass").alias("exchange"),
            "symbol",
            pl.lit("1d").alias("timeframe"),
            pl.col("date").str.to_datetime("%Y-%m-%d").alias("ts"),
            pl.col("bids_usd").alias("bid_usd_1pct"),
            pl.col("asks_usd").alias("ask_usd_1pct"),
        ),
        DEPTH,
    )


def test_real_coinglass_depth_weekend_against_weekday(shared_data: Path) -> None:
    path = shared_data / "derivatives" / "coinglass_orderbook_depth_1pct_agg_1d.parquet"
    days = liq.daily(liq.with_calendar(liq.depth_measures(coinglass_depth(path))), liq.DEPTH_MEASURES)
    table = ls.weekend_effect(days, [liq.DEPTH_USD])

    raw = pd.read_parquet(path)
    raw = raw[raw["range_pct"] == 1.0]
    weekend = pd.to_datetime(raw["date"]).dt.day_of_week >= 5
    depth = raw["bids_usd"] + raw["asks_usd"]
    expected = (
        depth[weekend].groupby(raw["symbol"]).mean() / depth[~weekend].groupby(raw["symbol"]).mean()
    ).sort_index()

    assert table["symbol"].to_list() == ["BTC", "ETH", "SOL"]
    assert table["ratio"].to_list() == pytest.approx(expected.to_list(), rel=1e-12)
    # These once-a-day snapshots show no weekend thinning of ±1 % depth, unlike traded volume.
    assert all(0.8 < r < 1.25 for r in table["ratio"])
    assert all(low < high for low, high in table.select("ci_low", "ci_high").rows())
