"""Yahoo Finance bars for BTC, ETH and SOL (tickers BTC-USD, ETH-USD, SOL-USD) through yfinance.

`download` is the only I/O; `normalize` is pure. Daily bars reach back to each coin's first day on
Yahoo (BTC-USD 2014-09-17); intraday bars only as far back as Yahoo serves them (INTRADAY_LOOKBACK).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pandas as pd
import polars as pl
import yfinance as yf
from yfinance.data import YfData
from yfinance.exceptions import YFException, YFRateLimitError, YFTickerMissingError

from lib.schema import BARS, EXCHANGE, SYMBOL, TIMEFRAME, TIMEFRAMES, TS, conform
from lib.sources.base import EmptyResponse, RateLimited, SourceUnavailable

log = logging.getLogger(__name__)

NAME = "yfinance"
QUOTE = "USD"
DAILY = "1d"

# Canonical timeframe -> Yahoo interval.
INTERVALS: dict[str, str] = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", DAILY: "1d"}

# How far back Yahoo's chart API serves intraday bars; older ranges are refused.
INTRADAY_LOOKBACK: dict[str, timedelta] = {
    "1m": timedelta(days=7),
    "5m": timedelta(days=60),
    "15m": timedelta(days=60),
    "30m": timedelta(days=60),
    "1h": timedelta(days=730),
}
# Start this much inside the limit, so a request built now is still inside it when Yahoo checks it.
LOOKBACK_MARGIN = timedelta(minutes=10)

TIMEOUT_SECONDS = 30


def ticker(symbol: str) -> str:
    """Yahoo's ticker for a base asset: 'BTC' -> 'BTC-USD'."""
    return f"{symbol}-{QUOTE}"


def clamp_since(timeframe: str, since: datetime | None, until: datetime | None, now: datetime) -> datetime | None:
    """The first bar time to ask Yahoo for: `since`, moved up to the oldest intraday bar Yahoo serves.

    Daily bars are not limited (None stays None: Yahoo's full history). For intraday timeframes
    None means "as far back as Yahoo serves"; an older explicit `since` is moved up with a logged
    note. Raises EmptyResponse when the whole range lies before that limit.
    """
    lookback = INTRADAY_LOOKBACK.get(timeframe)
    if lookback is None:
        return since
    earliest = now - lookback + LOOKBACK_MARGIN
    if until is not None and until <= earliest:
        raise EmptyResponse(
            f"Yahoo serves {timeframe} bars for the last {lookback.days} days only "
            f"(from {earliest:%Y-%m-%d %H:%M} UTC); the range ends {until:%Y-%m-%d %H:%M}. "
            "Use 1d bars, or an exchange source for older intraday data."
        )
    if since is not None and since < earliest:
        log.warning("Yahoo serves %s bars for the last %d days only: fetching from %s instead of %s",
                    timeframe, lookback.days, f"{earliest:%Y-%m-%d %H:%M}", f"{since:%Y-%m-%d %H:%M}")
    return earliest if since is None or since < earliest else since


def download(symbol: str, timeframe: str, since: datetime | None, until: datetime | None) -> pd.DataFrame:
    """Yahoo's bars for `symbol` as yfinance returns them (the module's only I/O).

    Index: bar open time (tz-aware); columns Open, High, Low, Close, Adj Close, Volume (USD).
    `since` None asks for the full history (period="max"). Raises RateLimited, SourceUnavailable
    or EmptyResponse with a one-line message; never returns an empty frame.
    """
    window = {"start": _epoch(since)} if since is not None else {"period": "max"}
    if until is not None:
        window["end"] = _epoch(until)
    name = ticker(symbol)
    try:
        with _yfinance_raises():
            frame = yf.Ticker(name).history(
                interval=INTERVALS[timeframe], auto_adjust=False, actions=False, prepost=False,
                repair=False, keepna=False, timeout=TIMEOUT_SECONDS, **window,
            )
    except YFRateLimitError as exc:
        _forget_answers()
        raise RateLimited(f"Yahoo Finance is rate limiting requests for {name}; try again in a few minutes") from exc
    except YFTickerMissingError as exc:
        _forget_answers()
        raise EmptyResponse(f"Yahoo Finance has no {timeframe} bars for {name} in that range: {exc.rationale}") from exc
    except (YFException, OSError) as exc:  # OSError: curl_cffi's (and requests') network errors
        _forget_answers()
        raise SourceUnavailable(f"Yahoo Finance failed for {name} {timeframe}: {_one_line(exc)}") from exc
    except ValueError as exc:  # the answer was not JSON: an HTTP error page
        _forget_answers()
        raise SourceUnavailable(f"Yahoo Finance answered {name} {timeframe} with something that is not chart data "
                                f"(an error page?): {_one_line(exc)}") from exc
    if frame.empty:
        raise EmptyResponse(f"Yahoo Finance returned no {timeframe} bars for {name} in that range")
    return frame


def normalize(frame: pd.DataFrame, symbol: str, timeframe: str) -> pl.DataFrame:
    """yfinance's frame -> lib.schema.BARS, exchange "yfinance".

    Yahoo's crypto Volume is in USD: it becomes `quote_volume`, and the base `volume` is
    approximated as quote_volume / close (Yahoo aggregates many venues and prices, so this is a
    day's USD turnover expressed at the closing price, not a traded quantity). Yahoo's intraday
    crypto volume is unreliable (often 0), so `volume_reliable` is True only on daily bars with
    volume > 0. Rows without a price (Yahoo's live row can carry NaN) are dropped.
    """
    prices = {"Open": "open", "High": "high", "Low": "low", "Close": "close"}
    bars = (
        pl.from_pandas(frame.reset_index(names=TS))
        .select(
            TS,
            *(pl.col(col).alias(name) for col, name in prices.items()),
            quote_volume=pl.col("Volume").cast(pl.Float64),
        )
        .drop_nulls(list(prices.values()))
        .with_columns(
            volume=pl.col("quote_volume") / pl.col("close"),
            volume_reliable=pl.lit(timeframe == DAILY) & (pl.col("quote_volume") > 0),
            **{EXCHANGE: pl.lit(NAME), SYMBOL: pl.lit(symbol), TIMEFRAME: pl.lit(timeframe)},
        )
    )
    return conform(bars, BARS)


def closed_within(bars: pl.DataFrame, since: datetime | None, until: datetime | None, now: datetime) -> pl.DataFrame:
    """The rows of one timeframe's `bars` with since <= ts < until (either bound optional) whose bar
    has closed by `now` (ts + timeframe <= now). Yahoo also sends the bar still in progress (today's
    daily bar, with a partial volume); as in the ccxt source it is left out until it has closed."""
    keep = pl.col(TS) + pl.col(TIMEFRAME).replace_strict(TIMEFRAMES, return_dtype=pl.Duration("us")) <= now
    if since is not None:
        keep &= pl.col(TS) >= since
    if until is not None:
        keep &= pl.col(TS) < until
    return bars.filter(keep)


class YahooSource:
    """Yahoo Finance through yfinance: bars only, daily back to each coin's first day, intraday within
    Yahoo's limits. One request per fetch, yielded as one chunk."""

    name = NAME
    datasets = frozenset({BARS.name})
    timeframes = tuple(INTERVALS)

    def market_id(self, symbol: str, dataset: str) -> str:
        """Yahoo's ticker, e.g. 'BTC-USD' (the same for every dataset)."""
        return ticker(symbol)

    def fetch(
        self, dataset: str, symbol: str, timeframe: str, since: datetime | None, until: datetime | None
    ) -> Iterator[pl.DataFrame]:
        """Yield the closed bars with since <= ts < until as one BARS frame (see clamp_since for the
        intraday limits and closed_within for the still-open bar)."""
        if dataset != BARS.name or timeframe not in INTERVALS:
            raise ValueError(f"yfinance offers bars at {', '.join(INTERVALS)}; asked for {dataset} at {timeframe}")
        since, until, now = _utc(since), _utc(until), datetime.now(UTC)
        start = clamp_since(timeframe, since, until, now)
        bars = closed_within(normalize(download(symbol, timeframe, start, until), symbol, timeframe), start, until, now)
        if bars.is_empty():
            raise EmptyResponse(f"Yahoo Finance returned no closed {timeframe} bars for {ticker(symbol)} in the range")
        yield bars


@contextmanager
def _yfinance_raises() -> Iterator[None]:
    """Make yfinance raise its errors: by default it logs them and returns an empty frame. The switch is
    process-wide; it is restored afterwards, and a thread that reads it mid-switch only gets an
    empty frame, which download() reports as EmptyResponse."""
    previous = yf.config.debug.hide_exceptions
    yf.config.debug.hide_exceptions = False
    try:
        yield
    finally:
        yf.config.debug.hide_exceptions = previous


def _forget_answers() -> None:
    """Drop yfinance's in-process cache of answers for past ranges: it keeps error pages too, so a
    retry after a failure would get the same failure without asking Yahoo again."""
    YfData.cache_get.cache_clear()


def _utc(moment: datetime | None) -> datetime | None:
    """A naive datetime is UTC (the pipeline's convention); an aware one is converted."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _epoch(moment: datetime) -> int:
    """Whole seconds since 1970 UTC (yfinance takes ints as UTC epoch seconds)."""
    return int(moment.timestamp())


def _one_line(exc: BaseException) -> str:
    """The exception's type and the first line of its message, for a one-line error."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
