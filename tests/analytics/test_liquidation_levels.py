"""Estimated liquidation levels (lib.analytics.liquidation_levels): formulas, consumption, open-interest
rules, the current map, fragility and the scorecard."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lib.analytics import liquidation_levels
from lib.analytics.liquidation_levels import (
    AS_SET,
    LEVERAGE_MIX,
    MMR_TABLE,
    SPLIT_RULES,
    TILTS,
    LevelEstimate,
    capture,
    capture_summary,
    cluster_hits,
    consumption_score,
    estimate_levels,
    estimate_splits,
    fragility,
    hit_rates,
    level_curves,
    level_map,
    liquidation_prices,
    long_share,
    open_interest_flows,
    retilted,
    spread,
    tier_table,
    tiers_from_text,
    tiers_text,
    tilted,
)
from lib.analytics.liquidations import Grid, heatmap_from_totals

START = datetime(2026, 1, 31, tzinfo=UTC)
TEN_X = pl.DataFrame({"leverage": [10.0], "weight": [1.0]})
TEN_X_MMR = pl.DataFrame({"leverage": [10.0], "mmr": [0.005]})


def hour(n: float) -> datetime:
    return START + timedelta(hours=n)


def bars(*rows: tuple[float, float, float], taker_share: float | None = None) -> pl.DataFrame:
    """Hourly bars from (low, high, close); open = close; volume 1, taker-buy volume `taker_share`."""
    n = len(rows)
    return pl.DataFrame(
        {
            "ts": [hour(i) for i in range(n)],
            "open": [float(c) for *_, c in rows],
            "high": [float(hi) for _, hi, _ in rows],
            "low": [float(lo) for lo, _, _ in rows],
            "close": [float(c) for *_, c in rows],
            "volume": [1.0] * n,
            "taker_buy_volume": [taker_share] * n,
        },
        schema_overrides={"taker_buy_volume": pl.Float64},
    )


def flat(n: int, price: float = 100.0) -> list[tuple[float, float, float]]:
    return [(price, price, price)] * n


def oi(*values: float, every: timedelta = timedelta(hours=1)) -> pl.DataFrame:
    return pl.DataFrame({"ts": [START + i * every for i in range(len(values))], "open_interest_usd": list(values)})


def ten_x(given_bars: pl.DataFrame, given_oi: pl.DataFrame | None, **options: object) -> LevelEstimate:
    """One tier, 10× with mmr 0.5 %, $1 buckets: the hand-computed cases."""
    return estimate_levels(given_bars, given_oi, bucket_usd=1.0, leverage_mix=TEN_X, mmr=TEN_X_MMR, **options)


def usd_at(estimate: LevelEstimate, side: str, price: float) -> np.ndarray:
    """Open level USD after each bar in the bucket holding `price`."""
    column = int(np.searchsorted(estimate.density.price, price, side="right")) - 1
    return estimate.density.side(side)[:, column]


# ---------------------------------------------------------------------------------------------
# Formulas, by hand


@pytest.mark.parametrize(
    ("leverage", "mmr", "long_price", "short_price"),
    [(10, 0.005, 90.5, 109.5), (5, 0.01, 81.0, 119.0), (25, 0.005, 96.5, 103.5), (50, 0.004, 98.4, 101.6),
     (100, 0.004, 99.4, 100.6), (2, 0.0, 50.0, 150.0)],
)
def test_liquidation_prices_per_tier(leverage: float, mmr: float, long_price: float, short_price: float) -> None:
    tiers = pl.DataFrame({"leverage": [float(leverage)], "weight": [1.0], "mmr": [mmr]})
    long, short = liquidation_prices(np.array([100.0]), tiers)
    assert (long.item(), short.item()) == pytest.approx((long_price, short_price))


def test_default_tiers_are_the_documented_mix() -> None:
    tiers = tier_table()
    assert tiers["leverage"].to_list() == [5, 10, 25, 50, 100]
    assert tiers["weight"].sum() == pytest.approx(1)
    assert_frame_equal(tiers.select("leverage", "mmr"), MMR_TABLE)
    assert_frame_equal(tiers.select("leverage", "weight"), LEVERAGE_MIX)


@pytest.mark.parametrize(
    ("mix", "mmr", "message"),
    [
        (pl.DataFrame({"leverage": [10.0], "weight": [0.9]}), TEN_X_MMR, "sum to 1"),
        (pl.DataFrame({"leverage": [20.0], "weight": [1.0]}), TEN_X_MMR, "no maintenance-margin rate"),
        (TEN_X, pl.DataFrame({"leverage": [10.0], "mmr": [0.1]}), "mmr < 1/leverage"),
    ],
)
def test_bad_tiers_are_refused(mix: pl.DataFrame, mmr: pl.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tier_table(mix, mmr)


# ---------------------------------------------------------------------------------------------
# The bar loop, by hand: one long opened at 100 with 10× and mmr 0.5 % sits at 90.5


def test_one_long_at_100_sits_at_90_5_until_a_later_low_reaches_it() -> None:
    # OI 0 -> 1000 in bar 1 (entry 100, all long); bar 2 dips to 91 (not reached); bar 3 to 90.5.
    given = bars((100, 100, 100), (100, 100, 100), (91, 100, 95), (90.5, 95, 92), taker_share=1.0)
    estimate = ten_x(given, oi(0, 1000, 1000, 1000))
    assert usd_at(estimate, "long", 90.5).tolist() == [0, 1000, 1000, 0]
    assert estimate.density.long_usd.sum(axis=1).tolist() == [0, 1000, 1000, 0]
    assert estimate.density.short_usd.sum() == 0
    assert estimate.consumed_usd[:, 0].tolist() == [0, 0, 0, 1000]  # the model's estimated liquidation


def test_a_bar_never_consumes_its_own_new_levels() -> None:
    given = bars((100, 100, 100), (80, 120, 100), (95, 105, 100), taker_share=0.5)
    estimate = ten_x(given, oi(0, 1000, 1000))
    assert usd_at(estimate, "long", 90.5).tolist() == [0, 500, 500]
    assert usd_at(estimate, "short", 109.5).tolist() == [0, 500, 500]


def test_a_short_is_consumed_by_a_later_high() -> None:
    given = bars((100, 100, 100), (100, 100, 100), (100, 109.4, 105), (100, 109.5, 105), taker_share=0.0)
    estimate = ten_x(given, oi(0, 1000, 1000, 1000))
    assert usd_at(estimate, "short", 109.5).tolist() == [0, 1000, 1000, 0]
    assert estimate.consumed_usd[:, 1].tolist() == [0, 0, 0, 1000]


def test_an_open_interest_drop_of_half_halves_open_levels() -> None:
    given = bars(*flat(4), taker_share=1.0)
    estimate = ten_x(given, oi(0, 1000, 1000, 500))
    assert usd_at(estimate, "long", 90.5).tolist() == [0, 1000, 1000, 500]
    assert estimate.consumed_usd.sum() == 0  # closed positions are not liquidations


def test_decay_halves_levels_every_half_life() -> None:
    estimate = ten_x(bars(*flat(4), taker_share=1.0), oi(0, 1000, 1000, 1000), half_life=timedelta(hours=1))
    assert usd_at(estimate, "long", 90.5).tolist() == [0, 1000, 500, 250]


@pytest.mark.parametrize(
    ("split", "taker_share", "move", "long_usd"),
    [("taker", 0.25, 0, 250), ("taker", None, 0, 500), ("even", 0.25, 0, 500), ("direction", None, 1, 700),
     ("direction", None, -1, 300), ("direction", None, 0, 500)],
)
def test_split_rules(split: str, taker_share: float | None, move: int, long_usd: float) -> None:
    given = bars(*flat(2), taker_share=taker_share).with_columns(open=pl.col("close") - move)
    estimate = ten_x(given, oi(0, 1000), split=split)
    assert usd_at(estimate, "long", 90.5)[-1] == pytest.approx(long_usd)
    assert usd_at(estimate, "short", 109.5)[-1] == pytest.approx(1000 - long_usd)


def test_no_bars_is_an_error_not_an_empty_estimate() -> None:
    with pytest.raises(ValueError, match="no bars"):
        estimate_levels(bars().clear(), None)


def test_a_bucket_far_too_small_for_the_range_is_refused_not_allocated() -> None:
    given = random_walk(300)
    with pytest.raises(ValueError, match=r"6,714 price buckets of 0.01 USD over 300 bars is too fine for the level "
                                         r"model: choose a bucket of at least 0.02 USD"):
        estimate_levels(given, random_oi(given), bucket_usd=0.01)
    with pytest.raises(ValueError, match="too fine"):  # ~10^12 cells: a ValueError, not numpy's MemoryError
        estimate_levels(given, random_oi(given), bucket_usd=1e-9)


def test_missing_taker_volume_is_split_evenly_and_said() -> None:
    estimate = ten_x(bars(*flat(2)), oi(0, 1000))
    assert "taker-buy volume missing on 2 of 2 bars: split 50/50 there" in estimate.notes
    assert estimate.density.long_usd[-1].sum() == 500
    with pytest.raises(ValueError, match="split"):
        long_share("coin-flip")


# ---------------------------------------------------------------------------------------------
# Open interest: per bar, spread from daily by volume, or a volume proxy


def test_daily_open_interest_is_spread_over_its_bars_by_volume() -> None:
    six_hourly = pl.DataFrame({
        "ts": [START + timedelta(hours=6 * i) for i in range(8)],
        "close": [100.0] * 8,
        "volume": [1.0, 1, 1, 1, 1, 1, 2, 0],
    })
    flows, note = open_interest_flows(six_hourly, oi(1000, 1400, every=timedelta(days=1)))
    assert flows["opened_usd"].to_list() == [0, 0, 0, 0, 100, 100, 200, 0]  # day 1: +400 by volume 1:1:2:0
    assert flows["oi_usd"].to_list()[4:] == [1100, 1200, 1400, 1400]
    assert note == "open interest every 1 d: each period's change spread over its bars by volume"


def test_daily_open_interest_falls_are_spread_as_closures() -> None:
    hourly = pl.DataFrame({"ts": [START + timedelta(hours=12 * i) for i in range(4)], "close": [1.0] * 4,
                           "volume": [1.0, 1, 1, 3]})
    flows, _ = open_interest_flows(hourly, oi(800, 400, every=timedelta(days=1)))
    assert flows["closed_fraction"].to_list()[2:] == pytest.approx([100 / 800, 300 / 700])
    assert flows["opened_usd"].sum() == 0


def test_per_bar_open_interest_and_the_volume_proxy() -> None:
    given = bars(*flat(3)).with_columns(volume=pl.Series([1.0, 2.0, 4.0]))
    flows, note = open_interest_flows(given, oi(10, 30, 20))
    assert flows["opened_usd"].to_list() == [0, 20, 0]
    assert flows["closed_fraction"].to_list() == pytest.approx([0, 0, 1 / 3])
    assert note == "open interest per bar, as of each bar's open"
    proxy, proxy_note = open_interest_flows(given, None, volume_share=0.1)
    assert proxy["opened_usd"].to_list() == pytest.approx([10, 20, 40])  # 10 % × volume × close
    assert proxy_note.startswith("no open interest: 10% of each bar's traded notional")


# ---------------------------------------------------------------------------------------------
# Metamorphic properties and invariants


def random_walk(n: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    wick = np.abs(rng.normal(0, 0.004, (2, n)))
    return pl.DataFrame({
        "ts": [START + timedelta(hours=i) for i in range(n)],
        "open": np.append(100, close[:-1]),
        "high": close * (1 + wick[0]),
        "low": close * (1 - wick[1]),
        "close": close,
        "volume": rng.uniform(1, 10, n),
        "taker_buy_volume": rng.uniform(0, 1, n),
    })


def random_oi(given_bars: pl.DataFrame, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return given_bars.select("ts", open_interest_usd=1e9 * np.exp(np.cumsum(rng.normal(0, 0.02, given_bars.height))))


def test_scaling_prices_by_k_scales_level_prices_by_k() -> None:
    given = random_walk(300)
    prices = pl.col("open", "high", "low", "close")
    base = estimate_levels(given, random_oi(given), bucket_usd=0.5, half_life=timedelta(days=2))
    scaled = estimate_levels(given.with_columns(prices * 4), random_oi(given), bucket_usd=2.0,
                             half_life=timedelta(days=2))
    np.testing.assert_allclose(scaled.density.price, 4 * base.density.price)
    np.testing.assert_allclose(scaled.density.long_usd, base.density.long_usd)
    np.testing.assert_allclose(scaled.density.short_usd, base.density.short_usd)


def test_doubling_open_interest_doubles_density() -> None:
    given = random_walk(300)
    base = estimate_levels(given, random_oi(given), bucket_usd=0.5)
    doubled = estimate_levels(given, random_oi(given).with_columns(pl.col("open_interest_usd") * 2), bucket_usd=0.5)
    np.testing.assert_allclose(doubled.density.long_usd, 2 * base.density.long_usd)
    np.testing.assert_allclose(doubled.consumed_usd, 2 * base.consumed_usd)


def test_the_density_follows_the_recurrence_bar_by_bar_across_blocks() -> None:
    """The block-wise loop against a plain one: for each bar, consume and close the levels left
    before it, then add its own new ones (over three blocks, so the state carries across their seams)."""
    rng = np.random.default_rng(11)
    bars, width, tiers = 2 * liquidation_levels._BLOCK + 300, 9, 3
    sides = tuple(
        liquidation_levels._Side(rng.uniform(0, 1e6, (bars, tiers)), rng.integers(0, width, (bars, tiers)),
                                 rng.integers(0, width + 1, bars), width, below)
        for below in (True, False)
    )
    factor = rng.uniform(0.95, 1.0, bars)
    density, consumed = liquidation_levels._density(sides, factor)
    state, expected = np.zeros((2, width)), np.zeros((bars, 2))
    for t in range(bars):
        for index, side in enumerate(sides):
            survives = side.alive(np.arange(width), side.cut[t]) * factor[t]
            expected[t, index] = (state[index] * (factor[t] - survives)).sum()
            state[index] *= survives
            np.add.at(state[index], side.column[t], side.new[t])
        np.testing.assert_allclose(density[t], state, rtol=1e-6, atol=1e-3)  # stored as float32
    np.testing.assert_allclose(consumed, expected, rtol=1e-9, atol=1e-6)


def test_the_final_map_is_the_last_density_row_by_tier() -> None:
    given = random_walk(500)
    estimate = estimate_levels(given, random_oi(given), half_life=timedelta(days=3))
    np.testing.assert_allclose(estimate.open_long_usd.sum(axis=0), estimate.density.long_usd[-1], atol=1e-3)
    np.testing.assert_allclose(estimate.open_short_usd.sum(axis=0), estimate.density.short_usd[-1], atol=1e-3)
    assert (estimate.density.long_usd >= -1e-6).all()
    centre = estimate.density.centre
    assert estimate.open_long_usd[:, centre > estimate.last_price + estimate.density.bucket_usd].sum() == 0


def test_inputs_are_not_mutated() -> None:
    given = random_walk(50)
    given_oi = random_oi(given)
    before = given.clone(), given_oi.clone(), LEVERAGE_MIX.clone(), MMR_TABLE.clone()
    estimate_levels(given, given_oi)
    for after, was in zip((given, given_oi, LEVERAGE_MIX, MMR_TABLE), before, strict=True):
        assert_frame_equal(after, was)


def test_assumptions_list_every_input_and_export_as_json() -> None:
    estimate = estimate_levels(random_walk(50), None, split="direction", half_life=timedelta(hours=36))
    facts = json.loads(json.dumps(estimate.assumptions))
    assert facts["tiers"][0] == {"leverage": 5.0, "weight": 0.35, "mmr": 0.01}
    assert facts["split"].startswith("direction") and facts["half_life_hours"] == 36
    assert facts["open_interest"].startswith("no open interest")
    assert {"liquidation_price", "entry", "closures", "consumption", "bucket_usd", "kind"} <= facts.keys()
    assert "Estimated, not measured" in estimate.density.method


def test_two_years_of_hourly_bars_give_a_density_row_per_bar() -> None:
    """Its speed is bench/liquidations_bench.py's figure, not a test's."""
    given = random_walk(2 * 365 * 24)
    estimate = estimate_levels(given, random_oi(given), half_life=timedelta(days=7))
    assert estimate.density.long_usd.shape[0] == given.height


# ---------------------------------------------------------------------------------------------
# The current map and fragility: a hand-made estimate, last price 100


def hand_estimate(long_usd: dict[float, float], short_usd: dict[float, float], close: float = 100.0,
                  bars_count: int = 1, buckets: tuple[float, float] = (80.0, 120.0)) -> LevelEstimate:
    """An estimate with one tier whose open levels (bucket lower edge -> USD, $1 buckets from the
    first of `buckets` to the last) stay the same for `bars_count` hourly bars closing at `close`."""
    price = np.arange(buckets[0], buckets[1] + 1)
    long_row = np.array([[long_usd.get(p, 0.0) for p in price]])
    short_row = np.array([[short_usd.get(p, 0.0) for p in price]])
    ts = pl.Series("ts", [hour(i) for i in range(bars_count)])
    grid = Grid(ts, price, 1.0, long_row.repeat(bars_count, axis=0), short_row.repeat(bars_count, axis=0), "hand")
    return LevelEstimate(grid, np.array([10.0]), long_row, short_row, np.zeros((bars_count, 2)),
                         np.full(bars_count, close), (), {})


def test_level_curves_cumulate_outwards_from_the_price() -> None:
    curves = level_curves(hand_estimate({99: 1000, 96: 2000, 90: 3000}, {101: 10, 104: 20}))
    at = {row["price"]: row for row in curves.iter_rows(named=True)}
    assert [at[p]["long_cumulative_usd"] for p in (99, 96, 95, 90, 80)] == [1000, 3000, 3000, 6000, 6000]
    assert at[101]["long_cumulative_usd"] is None
    assert [at[p]["short_cumulative_usd"] for p in (101, 103, 104, 120)] == [10, 10, 30, 30]
    assert at[98]["short_cumulative_usd"] is None


def test_level_map_lists_buckets_by_tier() -> None:
    mapped = level_map(hand_estimate({99: 1000}, {104: 20}))
    assert mapped.rows() == [(99.0, 10.0, 1000.0, 0.0), (104.0, 10.0, 0.0, 20.0)]


def test_fragility_within_bands_and_against_depth() -> None:
    estimate = hand_estimate({99: 1000, 96: 2000, 90: 3000}, {101: 10, 104: 20, 115: 40})
    table = fragility(estimate, bid_depth_usd=500.0)
    expected = pl.DataFrame({
        "side": ["long"] * 3 + ["short"] * 3,
        "band": [-0.02, -0.05, -0.10, 0.02, 0.05, 0.10],
        "price_bound": [98.0, 95.0, 90.0, 102.0, 105.0, 110.0],
        "liquidation_usd": [1000.0, 3000.0, 6000.0, 10.0, 30.0, 30.0],
        "depth_usd": [500.0] * 3 + [None] * 3,
        "depth_multiple": [2.0, 6.0, 12.0, None, None, None],
    })
    assert_frame_equal(table, expected, check_exact=False)


def test_an_estimate_without_history_has_the_same_open_levels_and_its_last_density_row() -> None:
    given = random_walk(500)
    full, last = (estimate_levels(given, random_oi(given), bucket_usd=0.5, half_life=timedelta(days=3),
                                  history=history) for history in (True, False))
    np.testing.assert_array_equal(last.open_long_usd, full.open_long_usd)
    np.testing.assert_array_equal(last.open_short_usd, full.open_short_usd)
    assert last.last_ts == full.last_ts and last.density.ts.len() == 1 and last.consumed_usd.shape == (0, 2)
    np.testing.assert_allclose(last.density.long_usd[0], full.density.long_usd[-1], rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(last.density.short_usd[0], full.density.short_usd[-1], rtol=1e-6, atol=1e-3)
    assert_frame_equal(fragility(last), fragility(full))
    assert_frame_equal(level_curves(last), level_curves(full))


def test_tilts_move_the_weights_toward_low_or_high_leverage() -> None:
    tiers = tier_table()
    weight, leverage = tiers["weight"].to_numpy(), tiers["leverage"].to_numpy()
    as_set, low, high = (tilted(tiers, tilt)["weight"].to_numpy() for tilt in TILTS)
    np.testing.assert_allclose(as_set, weight)
    np.testing.assert_allclose(low, weight / leverage / (weight / leverage).sum())
    np.testing.assert_allclose(high, weight * leverage / (weight * leverage).sum())
    assert (round(low[0], 2), round(high[0], 2)) == (0.63, 0.09)  # 5x: the docstring's figures
    assert tilted(tiers, list(TILTS)[2])["mmr"].to_list() == tiers["mmr"].to_list()


@pytest.mark.parametrize("history", [True, False])
def test_the_split_rules_run_together_as_each_runs_alone(history: bool) -> None:
    given = random_walk(400)
    together = estimate_splits(given, random_oi(given), list(SPLIT_RULES), bucket_usd=0.5, history=history,
                               half_life=timedelta(days=2))
    assert list(together) == list(SPLIT_RULES)
    for split, run in together.items():
        alone = estimate_levels(given, random_oi(given), split=split, bucket_usd=0.5, history=history,
                                half_life=timedelta(days=2))
        np.testing.assert_array_equal(run.open_long_usd, alone.open_long_usd)
        np.testing.assert_array_equal(run.open_short_usd, alone.open_short_usd)
        np.testing.assert_array_equal(run.density.long_usd, alone.density.long_usd)
        np.testing.assert_array_equal(run.consumed_usd, alone.consumed_usd)
        assert run.assumptions == alone.assumptions and run.notes == alone.notes
    assert not np.array_equal(together["taker"].open_long_usd, together["even"].open_long_usd)


@pytest.mark.parametrize("split", list(SPLIT_RULES))
def test_a_retilted_run_is_the_run_under_the_tilted_weights(split: str) -> None:
    given = random_walk(500)
    tiers = tier_table(pl.DataFrame({"leverage": [5.0, 10.0, 25.0, 50.0], "weight": [0.4, 0.3, 0.3, 0.0]}),
                       pl.DataFrame({"leverage": [5.0, 10.0, 25.0, 50.0], "mmr": [0.01, 0.005, 0.005, 0.004]}))
    def run(tilt: str) -> LevelEstimate:
        return estimate_levels(given, random_oi(given), bucket_usd=0.5, half_life=timedelta(days=3), split=split,
                               leverage_mix=tilted(tiers, tilt), mmr=tiers, history=False)

    as_set = run(AS_SET)
    for tilt in TILTS:
        derived, rerun = retilted(as_set, tier_table(tilted(tiers, tilt), tiers)), run(tilt)
        assert derived.open_long_usd.sum() > 0 and not derived.open_long_usd[-1].any()  # 50x: weight 0 stays 0
        np.testing.assert_allclose(derived.open_long_usd, rerun.open_long_usd, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(derived.open_short_usd, rerun.open_short_usd, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(derived.density.long_usd, rerun.density.long_usd, rtol=1e-12, atol=1e-9)
        assert derived.assumptions == rerun.assumptions
        assert derived.density.method == rerun.density.method and derived.notes == rerun.notes
        assert_frame_equal(fragility(derived), fragility(rerun), check_exact=False)
    with pytest.raises(ValueError, match="without history"):
        retilted(estimate_levels(given, None, bucket_usd=0.5), tier_table(tilted(tier_table(), list(TILTS)[1])))


def test_spread_is_the_lowest_and_highest_answer_of_the_runs() -> None:
    """Two runs by hand: longs at 99, 96 / 99, 90 and shorts at 101 / 101, 104 (bucket centres +0.5)."""
    a = hand_estimate({99: 1000, 96: 2000}, {101: 10})
    b = hand_estimate({99: 500, 90: 4000}, {101: 30, 104: 20})
    got = spread([a, b])
    assert got.runs == 2
    assert got.fragility.rows() == [
        ("long", -0.02, 500.0, 1000.0), ("long", -0.05, 500.0, 3000.0), ("long", -0.10, 3000.0, 4500.0),
        ("short", 0.02, 10.0, 30.0), ("short", 0.05, 10.0, 50.0), ("short", 0.10, 10.0, 50.0),
    ]
    at = {row["price"]: row for row in got.curves.iter_rows(named=True)}
    assert (at[96.5]["long_low_usd"], at[96.5]["long_high_usd"]) == (500.0, 3000.0)
    assert (at[90.5]["long_low_usd"], at[90.5]["long_high_usd"]) == (3000.0, 4500.0)
    assert (at[104.5]["short_low_usd"], at[104.5]["short_high_usd"]) == (10.0, 50.0)
    assert at[101.5]["long_low_usd"] is None and at[98.5]["short_high_usd"] is None


def test_spread_reads_a_run_beyond_its_grid_as_all_its_levels() -> None:
    """A run whose buckets stop at 95 has no long level below it: a fall to 85 liquidates its 1,000."""
    narrow = hand_estimate({99: 1000}, {102: 5}, buckets=(95.0, 105.0))
    wide = hand_estimate({99: 1000, 85: 500}, {102: 5, 115: 7})
    at = {row["price"]: row for row in spread([narrow, wide]).curves.iter_rows(named=True)}
    assert (at[85.5]["long_low_usd"], at[85.5]["long_high_usd"]) == (1000.0, 1500.0)
    assert (at[115.5]["short_low_usd"], at[115.5]["short_high_usd"]) == (5.0, 12.0)


# ---------------------------------------------------------------------------------------------
# Scorecard, by hand


def test_cluster_hits_within_each_horizon() -> None:
    # Bar 1 opens a 10× long at 90.5 and a short at 109.5 (500 USD each); bar 2's low reaches 90.
    given = bars((100, 100, 100), (100, 100, 100), (90, 101, 95), *flat(30, 95), taker_share=0.5)
    estimate = ten_x(given, oi(0, *[1000] * 32))  # OI to the last bar, unchanged after bar 1
    hits = cluster_hits(estimate, given, every="1h", horizons={"1h": timedelta(hours=1), "2d": timedelta(days=2)})
    after_bar_1, after_bar_2 = hits.row(1, named=True), hits.row(2, named=True)
    assert (after_bar_1["long_cluster_price"], after_bar_1["long_cluster_usd"]) == (90.5, 500)
    assert (after_bar_1["short_cluster_price"], after_bar_1["short_cluster_usd"]) == (109.5, 500)
    assert after_bar_1["long_hit_1h"] is True and after_bar_1["short_hit_1h"] is False
    assert after_bar_1["long_hit_2d"] is None  # two days run past the data
    assert after_bar_2["long_cluster_price"] is None and after_bar_2["long_hit_1h"] is None  # consumed
    rates = {(r["side"], r["horizon"]): (r["snapshots"], r["hits"]) for r in hit_rates(hits).iter_rows(named=True)}
    assert rates == {("long", "1h"): (1, 1), ("short", "1h"): (31, 0), ("long", "2d"): (0, 0), ("short", "2d"): (0, 0)}


def test_capture_compares_the_model_zone_with_a_band_of_the_same_size() -> None:
    # After bar 0 the model holds longs at 90 only. Bar 1's realised longs: 600 at 90, 400 at 100.
    estimate = hand_estimate({90: 1000}, {}, close=100.0, bars_count=2)
    happened = np.zeros((1, 11))
    happened[0, [0, 10]] = [600, 400]
    realised = Grid(pl.Series("ts", [hour(1)]), np.arange(90.0, 101.0), 1.0, happened, np.zeros((1, 11)), "hand")
    # ±2 % of 100 holds the buckets 98..101 (4 buckets); the model's 4 largest: only 90 is non-empty.
    result = capture(estimate, realised, band=0.02)
    assert result.select("realised_usd", "model_usd", "baseline_usd").row(0) == (1000.0, 600.0, 400.0)
    summary = capture_summary(result)
    assert (summary["model_share"], summary["baseline_share"], summary["lift"]) == pytest.approx((0.6, 0.4, 1.5))
    with pytest.raises(ValueError, match="bucket sizes differ"):
        capture(estimate, Grid(realised.ts, realised.price * 2, 2.0, happened, happened, "x"))


def test_consumption_score_correlates_estimated_and_realised_liquidations() -> None:
    given = random_walk(400)
    estimate = estimate_levels(given, random_oi(given), bucket_usd=0.25)
    realised = pl.DataFrame({"ts": estimate.density.ts, "long_usd": estimate.consumed_usd[:, 0] * 3,
                             "short_usd": estimate.consumed_usd[:, 1]})
    score = consumption_score(estimate, given, realised)
    assert score["side"].to_list() == ["long", "short"]
    assert score["model_pearson"].to_list() == pytest.approx([1.0, 1.0])
    assert score["bars"].to_list() == [399, 399]  # the first bar has no previous close
    daily = realised.group_by(pl.col("ts").dt.truncate("1d")).agg(pl.col("long_usd", "short_usd").sum())
    with pytest.raises(ValueError, match="pass totals per bar"):
        consumption_score(estimate, given, daily)


# ---------------------------------------------------------------------------------------------
# Real data end to end: Coinglass daily OI and liquidations with Binance USD-M hourly bars


def binance_bars(path: Path) -> pl.DataFrame:
    """A Binance kline parquet (open_time epoch ms, OHLCV) as canonical bars."""
    ts = pl.from_epoch("open_time", "ms").dt.replace_time_zone("UTC").alias("ts")
    return pl.read_parquet(path).select(ts, "open", "high", "low", "close", "volume")


def coinglass_daily(path: Path, symbol: str, columns: dict[str, str]) -> pl.DataFrame:
    """A Coinglass daily file (date YYYY-MM-DD, symbol, ...) for one symbol, columns renamed."""
    ts = pl.col("date").str.to_datetime("%Y-%m-%d", time_zone="UTC").alias("ts")
    renamed = (pl.col(source).alias(name) for source, name in columns.items())
    return pl.read_parquet(path).filter(pl.col("symbol") == symbol).select(ts, *renamed)


@pytest.fixture
def btc_2025(shared_data: Path) -> dict[str, pl.DataFrame]:
    window = pl.col("ts").is_between(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 9, 8, 23, tzinfo=UTC))
    hourly = binance_bars(shared_data / "ohlcv" / "binance_usdm_BTCUSDT_1h.parquet").filter(window)
    return {
        "bars": hourly,
        "oi": coinglass_daily(shared_data / "derivatives" / "coinglass_open_interest_agg_1d.parquet", "BTC",
                              {"oi_total_close": "open_interest_usd"}).filter(window),
        "liquidations": coinglass_daily(shared_data / "liquidations" / "coinglass_liquidations_agg_1d.parquet", "BTC",
                                        {"liq_long_usd": "long_usd", "liq_short_usd": "short_usd"}).filter(window),
        "daily_bars": hourly.group_by(pl.col("ts").dt.truncate("1d")).agg(
            pl.col("low").min(), pl.col("high").max(), pl.col("close").sort_by("ts").last()).sort("ts"),
    }


def test_real_daily_oi_and_liquidations_drive_the_model_end_to_end(btc_2025: dict[str, pl.DataFrame]) -> None:
    estimate = estimate_levels(btc_2025["bars"], btc_2025["oi"], bucket_usd=500.0, half_life=timedelta(days=14))
    assert estimate.notes[0] == "open interest every 1 d: each period's change spread over its bars by volume"
    assert estimate.density.long_usd.shape == (btc_2025["bars"].height, estimate.density.price.size)
    # Daily OI changes are billions of USD: the open levels are too, and longs sit below the price.
    assert 1e9 < estimate.open_long_usd.sum() + estimate.open_short_usd.sum() < 1e12
    widening = fragility(estimate).group_by("side").agg(pl.col("liquidation_usd").diff().min())
    assert (widening["liquidation_usd"] >= 0).all() and widening.height == 2

    realised = heatmap_from_totals(btc_2025["liquidations"], btc_2025["daily_bars"], bucket_usd=500.0)
    summary = capture_summary(capture(estimate, realised, band=0.05))
    assert summary["realised_usd"] == pytest.approx(realised.long_usd[1:].sum() + realised.short_usd[1:].sum())
    assert 0 <= summary["model_share"] <= 1 and 0 <= summary["baseline_share"] <= 1
    rates = hit_rates(cluster_hits(estimate, btc_2025["bars"]))
    assert rates["snapshots"].min() > 200 and rates["rate"].is_between(0, 1).all()


def test_real_hourly_scorecard_nov_2025_to_may_2026(shared_data: Path) -> None:
    # No OI in ../shared/data covers this window: the volume proxy (said in the notes) with decay.
    hourly_bars = binance_bars(shared_data / "ohlcv" / "binance_usdm_BTCUSDT_1h.parquet").filter(
        pl.col("ts") >= datetime(2025, 9, 1, tzinfo=UTC))
    ts = pl.from_epoch("timestamp", "ms").dt.replace_time_zone("UTC").alias("ts")
    raw = pl.read_parquet(shared_data / "liquidations" / "coinglass_BTC_liquidations_agg_1h.parquet")
    realised_totals = raw.select(ts, pl.col("longUsd").alias("long_usd"), pl.col("shortUsd").alias("short_usd"))
    estimate = estimate_levels(hourly_bars, None, bucket_usd=250.0, split="even", half_life=timedelta(days=7))
    assert estimate.notes[0].startswith("no open interest")
    score = consumption_score(estimate, hourly_bars, realised_totals)
    assert score["bars"].min() > 4000
    # The cascades: sized better by the model than by "how far price moved" (Pearson), worse ranked.
    long_row = score.row(0, named=True)
    assert long_row["model_pearson"] > long_row["baseline_pearson"] > 0.5


def test_open_interest_that_stops_before_the_bars_gives_way_to_the_volume_proxy() -> None:
    given = bars(*flat(6)).with_columns(volume=pl.lit(2.0))
    early = oi(10, 30).head(2)  # two hourly values, then nothing for the last four bars
    flows, note = open_interest_flows(given, early, volume_share=0.1)
    assert flows["opened_usd"].to_list() == pytest.approx([0.2 * c for c in given["close"]])  # every bar, not only two
    assert note.startswith(f"open interest cached only to {given['ts'][1]:%Y-%m-%d}, the bars run to")
    assert "a proxy" in note
    estimate = estimate_levels(given, early)
    assert estimate.volume_proxy and not estimate_levels(given, oi(*range(10, 70, 10))).volume_proxy


def test_a_tier_table_round_trips_through_its_text_form() -> None:
    assert tiers_text(tier_table()) == "5:0.35:0.01,10:0.3:0.005,25:0.2:0.005,50:0.1:0.004,100:0.05:0.004"
    assert tiers_from_text(tiers_text(tier_table())).equals(tier_table())
    assert tiers_from_text("20:0.5:0.005,10:0.5:0.005")["leverage"].to_list() == [10.0, 20.0]  # sorted as tier_table


@pytest.mark.parametrize("text", [
    "", "10", "10:1", "10:1:0.005:9", "a:b:c", "10:1:nan", "inf:1:0.005", "1e309:1:0.005",  # not a table
    "10:0.5:0.005,10:0.5:0.005",  # a leverage twice
    "10:0.9:0.005",  # weights not summing to 1
    "10:1:0.2",  # mmr >= 1/L: liquidated on entry
    "0.5:1:0.001", "10:1:-0.01",  # leverage < 1, mmr < 0
    ",".join(["10:0.05:0.005"] * 21),  # too many tiers
    "<script>alert(1)</script>", "10:1:0.005;DROP TABLE",
])
def test_a_tier_table_text_that_cannot_be_used_is_refused(text: str) -> None:
    assert tiers_from_text(text) is None
