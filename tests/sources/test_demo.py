"""lib.sources.demo: the synthetic market is deterministic, canonical and shaped like a real one."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lib.gaps import find_gaps
from lib.schema import DATASETS, SYMBOL, TS, conform
from lib.sources import get_source
from lib.sources.base import EmptyResponse, SourceError
from lib.sources.demo import (
    DEMO_DATASETS,
    WEEKEND_LIQUIDITY_FACTOR,
    WEEKEND_SPREAD_FACTOR,
    DemoSource,
    demo_cascades,
    demo_market,
)

SATURDAY_CASCADE = datetime(2026, 1, 31, 18, tzinfo=UTC)
WEEKDAY_CASCADE = datetime(2026, 2, 5, 14, tzinfo=UTC)
WEEKEND_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def market() -> dict[str, pl.DataFrame]:
    return demo_market()


def is_weekend() -> pl.Expr:
    return pl.col(TS).dt.weekday() >= 6  # ISO weekday: Saturday 6, Sunday 7


def weekend_over_weekday(frame: pl.DataFrame, column: str) -> dict[str, float]:
    """symbol -> median of `column` on weekends / median on weekdays."""
    medians = frame.group_by(SYMBOL, is_weekend().alias("weekend")).agg(pl.col(column).median())
    ratios = medians.pivot(on="weekend", index=SYMBOL, values=column).select(SYMBOL, pl.col("true") / pl.col("false"))
    return dict(ratios.iter_rows())


def test_same_seed_same_market(market):
    again = demo_market(seed=7)
    for name, frame in market.items():
        assert_frame_equal(again[name], frame)


def test_another_seed_another_market(market):
    assert not demo_market(seed=8)["bars"]["close"].equals(market["bars"]["close"])


def test_every_dataset_is_there_and_canonical(market):
    assert set(market) == DEMO_DATASETS == DemoSource.datasets
    for name, frame in market.items():
        assert_frame_equal(conform(frame, DATASETS[name]), frame)
        assert frame["exchange"].unique().to_list() == ["demo"]
        assert sorted(frame[SYMBOL].unique()) == ["BTC", "ETH", "SOL"]


@pytest.mark.parametrize(
    ("name", "rows", "timeframe", "last"),
    [
        ("bars", 3 * 730 * 24, "1h", datetime(2026, 2, 27, 23, tzinfo=UTC)),
        ("open_interest", 3 * 730 * 24, "1h", datetime(2026, 2, 27, 23, tzinfo=UTC)),
        ("liquidation_totals", 3 * 730 * 24, "1h", datetime(2026, 2, 27, 23, tzinfo=UTC)),
        ("depth", 3 * 730 * 24, "1h", datetime(2026, 2, 27, 23, tzinfo=UTC)),
        ("funding", 3 * 730 * 3, "8h", datetime(2026, 2, 27, 16, tzinfo=UTC)),
    ],
)
def test_regular_datasets_cover_two_years_without_gaps(market, name, rows, timeframe, last):
    frame = market[name]
    assert (frame.height, frame[TS].min(), frame[TS].max()) == (rows, datetime(2024, 2, 29, tzinfo=UTC), last)  # 730 days: 2024 is a leap year
    assert frame["timeframe"].unique().to_list() == [timeframe]
    for symbol in ("BTC", "ETH", "SOL"):
        assert find_gaps(frame.filter(pl.col(SYMBOL) == symbol), timeframe).is_empty()


def test_ohlc_is_consistent(market):
    bars = market["bars"]
    assert bars.filter(
        (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.col("low") <= 0)
    ).is_empty()
    assert bars.select((pl.col("open") == pl.col("close").shift(1).over(SYMBOL)).drop_nulls().all()).item()


@pytest.mark.parametrize(("symbol", "low", "high"), [("BTC", 40_000, 110_000), ("ETH", 1_500, 4_500), ("SOL", 80, 250)])
def test_prices_stay_in_a_plausible_range(market, symbol, low, high):
    bars = market["bars"].filter(pl.col(SYMBOL) == symbol)
    assert low <= bars["low"].min() and bars["high"].max() <= high


def test_returns_are_fat_tailed_and_correlated(market):
    returns = (
        market["bars"]
        .select(SYMBOL, TS, r=pl.col("close").log().diff().over(SYMBOL))
        .pivot(on=SYMBOL, index=TS, values="r")
        .drop_nulls()
    )
    assert returns.select(pl.all().exclude(TS).kurtosis()).min_horizontal().item() > 3  # excess kurtosis
    assert returns.select(pl.corr("BTC", "ETH")).item() > 0.6


def test_weekend_volume_and_depth_are_lower_and_spreads_wider(market):
    for ratio in weekend_over_weekday(market["bars"], "quote_volume").values():
        assert ratio == pytest.approx(WEEKEND_LIQUIDITY_FACTOR, abs=WEEKEND_TOLERANCE)
    for ratio in weekend_over_weekday(market["depth"], "bid_usd_1pct").values():
        assert ratio == pytest.approx(WEEKEND_LIQUIDITY_FACTOR, abs=WEEKEND_TOLERANCE)
    for ratio in weekend_over_weekday(market["depth"], "spread_bps").values():
        assert ratio == pytest.approx(WEEKEND_SPREAD_FACTOR, abs=3 * WEEKEND_TOLERANCE)


def test_depth_grows_with_the_band(market):
    depth = market["depth"]
    for side in ("bid", "ask"):
        assert depth.select(
            ((pl.col(f"{side}_usd_0p5pct") < pl.col(f"{side}_usd_1pct")) & (pl.col(f"{side}_usd_1pct") < pl.col(f"{side}_usd_2pct"))).all()
        ).item()


def test_liquidation_totals_are_the_sum_of_the_events(market):
    from_events = (
        market["liquidations"]
        .group_by(SYMBOL, pl.col(TS).dt.truncate("1h"))
        .agg(
            long_usd=pl.col("notional_usd").filter(pl.col("side") == "long").sum(),
            short_usd=pl.col("notional_usd").filter(pl.col("side") == "short").sum(),
        )
    )
    totals = market["liquidation_totals"].filter((pl.col("long_usd") + pl.col("short_usd")) > 0)
    assert_frame_equal(totals.select(from_events.columns), from_events, check_row_order=False, rel_tol=1e-9)


def test_liquidation_events(market):
    events = market["liquidations"]
    assert set(events["side"].unique()) == {"long", "short"}
    assert events["sampled"].unique().to_list() == [False]
    assert events.select((pl.col("notional_usd") - pl.col("price") * pl.col("qty")).abs().max()).item() < 1e-6


def test_the_cascades_fall_on_a_saturday_and_a_weekday_after():
    assert [c.start for c in demo_cascades()] == [SATURDAY_CASCADE, WEEKDAY_CASCADE]
    assert [c.start.weekday() for c in demo_cascades()] == [5, 3]


@pytest.mark.parametrize("symbol", ["BTC", "ETH", "SOL"])
def test_the_largest_liquidation_hour_is_the_saturday_cascade(market, symbol):
    totals = market["liquidation_totals"].filter(pl.col(SYMBOL) == symbol)
    worst = totals.sort(pl.col("long_usd") + pl.col("short_usd")).row(-1, named=True)
    assert worst[TS].date() == SATURDAY_CASCADE.date()
    assert worst["long_usd"] > 100 * worst["short_usd"]


def test_open_interest_drops_in_the_cascade_and_builds_in_rallies(market):
    oi = market["open_interest"].filter(pl.col(SYMBOL) == "BTC")
    before, after = (oi.filter(pl.col(TS) == t)["open_interest_usd"].item() for t in (SATURDAY_CASCADE, WEEKDAY_CASCADE))
    assert after < 0.8 * before
    rally = market["bars"].filter(pl.col(SYMBOL) == "BTC").select(TS, r=pl.col("close").log().diff(24 * 7))
    joined = oi.join(rally, on=TS).select(pl.corr("r", pl.col("open_interest").log().diff(24 * 7)))
    assert joined.item() > 0.3


def test_funding_is_positive_in_rallies(market):
    bars = market["bars"].select(SYMBOL, TS, r=pl.col("close").log().diff(72).over(SYMBOL))
    joined = market["funding"].join(bars, on=[SYMBOL, TS]).drop_nulls()
    assert joined.select(pl.corr("r", "funding_rate")).item() > 0.5
    assert joined.filter(pl.col("r") > 0.1)["funding_rate"].min() > 0


def test_a_subset_of_assets_and_unknown_assets():
    assert demo_market(days=10, assets=("SOL",))["bars"][SYMBOL].unique().to_list() == ["SOL"]
    with pytest.raises(ValueError, match="no demo parameters for DOGE"):
        demo_market(assets=("DOGE",))


@pytest.fixture(scope="module")
def source() -> DemoSource:
    return DemoSource(days=30)


def test_registry_builds_the_demo_source():
    source = get_source("demo", days=10)
    assert isinstance(source, DemoSource)
    assert (source.name, source.timeframes) == ("demo", ("1h",))


@pytest.mark.parametrize(
    ("dataset", "since", "until", "rows"),
    [
        ("bars", datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC), 24),
        ("depth", datetime(2026, 2, 27, 20, tzinfo=UTC), None, 4),
        ("funding", None, datetime(2026, 1, 30, 16, tzinfo=UTC), 5),
        ("open_interest", None, None, 30 * 24),
    ],
)
def test_fetch_yields_the_slice(source, dataset, since, until, rows):
    (chunk,) = source.fetch(dataset, "ETH", "1h", since, until)
    assert chunk.height == rows
    assert chunk[SYMBOL].unique().to_list() == ["ETH"]
    assert since is None or chunk[TS].min() >= since
    assert until is None or chunk[TS].max() < until


@pytest.mark.parametrize(
    ("dataset", "timeframe", "since", "error", "message"),
    [
        ("trades", "1h", None, SourceError, "demo has no 'trades'"),
        ("bars", "1d", None, SourceError, "demo bars are 1h only, not '1d'"),
        ("bars", "1h", datetime(2027, 1, 1, tzinfo=UTC), EmptyResponse, "demo bars has no BTC rows"),
    ],
)
def test_fetch_raises(source, dataset, timeframe, since, error, message):
    with pytest.raises(error, match=message):
        next(source.fetch(dataset, "BTC", timeframe, since, None))
