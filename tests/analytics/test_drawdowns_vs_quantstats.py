"""Our drawdowns against quantstats 0.0.86 itself, on real BTC closes.

Same numbers: max drawdown, the episodes and their depths and valleys. Where they differ, and why
ours is right for a market that trades 24/7 (each asserted below):

- quantstats' ``start`` is the first bar under water and ``end`` the last one; ours are the peak
  and the recovery (the bar back at the peak), the dates a desk quotes.
- quantstats formats those as dates ("2021-11-09"), so several hourly episodes share one start,
  and counts ``days = (end - start).days + 1``: whole elapsed days plus one, a 2-hour dip is
  "1 day". Ours are real elapsed hours between bar open times.
- quantstats reports depths in percent; ours are fractions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from lib.analytics import drawdowns as dd

qs = pytest.importorskip("quantstats")

HOURLY_YEAR = 2025
DAYS_IN_2025 = 365


def yahoo_daily(shared_data: Path) -> pl.DataFrame:
    """Yahoo's daily BTC-USD closes (Date,Open,High,Low,Close,...), dates at 00:00 UTC."""
    frame = pl.read_csv(shared_data / "daily" / "yahoo_BTC-USD_1d.csv", try_parse_dates=True)
    return frame.select(pl.lit("BTC").alias("symbol"), pl.col("Date").dt.convert_time_zone("UTC").alias("ts"),
                        pl.col("Close").alias("close"))


def binance_hourly(shared_data: Path, year: int) -> pl.DataFrame:
    frame = pl.read_parquet(shared_data / "ohlcv" / "binance_spot_BTCUSDT_1h_ohlcv.parquet")
    frame = frame.select(pl.lit("BTC").alias("symbol"),
                         pl.from_epoch("open_time", "ms").dt.replace_time_zone("UTC").alias("ts"), "close")
    return frame.filter(pl.col("ts").dt.year() == year)


def quantstats_details(bars: pl.DataFrame) -> pd.DataFrame:
    """quantstats' drawdown table of the same closes, in time order."""
    prices = pd.Series(bars["close"].to_numpy(), index=pd.DatetimeIndex(bars["ts"].to_list()))
    return qs.stats.drawdown_details(qs.stats.to_drawdown_series(prices))


def day(value: datetime | None, shift_days: int = 0) -> str | None:
    return None if value is None else f"{value + timedelta(days=shift_days):%Y-%m-%d}"


def test_same_max_drawdown_as_quantstats_on_yahoo_daily(shared_data: Path) -> None:
    bars = yahoo_daily(shared_data)
    prices = pd.Series(bars["close"].to_numpy(), index=pd.DatetimeIndex(bars["ts"].to_list()))
    metrics = dd.desk_metrics(dd.with_drawdown(bars)).row(0, named=True)
    assert metrics["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(prices), abs=1e-15)
    assert metrics["max_drawdown"] == pytest.approx(-0.8339900882218974, abs=1e-12)  # Dec 2017 -> Dec 2018
    assert (metrics["max_drawdown_peak_ts"], metrics["max_drawdown_trough_ts"], metrics["max_drawdown_recovery_ts"]) == (
        datetime(2017, 12, 16, tzinfo=UTC), datetime(2018, 12, 15, tzinfo=UTC), datetime(2020, 11, 30, tzinfo=UTC),
    )


def test_same_episodes_different_dates_and_durations_on_daily_bars(shared_data: Path) -> None:
    bars = yahoo_daily(shared_data)
    ours = dd.episodes(dd.with_drawdown(bars)).sort(dd.PEAK_TS)
    theirs = quantstats_details(bars)
    assert len(theirs) == ours.height == 66
    assert (theirs["max drawdown"] / 100).tolist() == pytest.approx(ours[dd.DEPTH].to_list(), abs=1e-12)
    assert theirs["valley"].tolist() == [day(t) for t in ours[dd.TROUGH_TS]]
    # Their start is the day after our peak; their end the day before our recovery (or the last bar).
    assert theirs["start"].tolist() == [day(t, 1) for t in ours[dd.PEAK_TS]]
    recovered = ~ours[dd.ACTIVE]
    assert theirs["end"][recovered.to_list()].tolist() == [day(t, -1) for t in ours.filter(recovered)[dd.RECOVERY_TS]]
    # So on daily bars their days leave out the peak day: 846 for the 2021-24 bear market, ours 847 x 24 h.
    assert (theirs["days"][recovered.to_list()] * 24).tolist() == (ours.filter(recovered)[dd.UNDERWATER_HOURS] - 24).to_list()
    bear = ours.filter(pl.col(dd.PEAK_TS) == datetime(2021, 11, 8, tzinfo=UTC)).row(0, named=True)
    assert (bear[dd.UNDERWATER_HOURS], theirs.loc[theirs["start"] == "2021-11-09", "days"].item()) == (847 * 24, 846)


def test_quantstats_collapses_hourly_episodes_onto_dates(shared_data: Path) -> None:
    bars = binance_hourly(shared_data, HOURLY_YEAR)
    ours = dd.episodes(dd.with_drawdown(bars)).sort(dd.PEAK_TS)
    theirs = quantstats_details(bars)
    assert len(theirs) == ours.height == 43
    assert (theirs["max drawdown"] / 100).tolist() == pytest.approx(ours[dd.DEPTH].to_list(), abs=1e-12)
    # Distinct peaks for us; 36 of their 43 rows share a start date with another row.
    assert ours[dd.PEAK_TS].is_unique().all()
    assert int(theirs["start"].duplicated(keep=False).sum()) == 36
    # 1 Jan 2025: a 15-hour and a 4-hour episode, both "1 day" to quantstats.
    first_two = ours.head(2)
    assert first_two[dd.UNDERWATER_HOURS].to_list() == [15.0, 4.0]
    assert theirs["days"].head(2).tolist() == [1, 1]
    assert theirs["start"].head(2).tolist() == ["2025-01-01", "2025-01-01"]
    # Their durations over 2025 add up to more days than the year has; ours fit inside it.
    assert int(theirs["days"].sum()) == 396 > DAYS_IN_2025
    assert ours[dd.UNDERWATER_HOURS].sum() / 24 == 363.625 <= DAYS_IN_2025
