"""Bring cached series up to date from a source: resume from the last stored row, store each
chunk as it arrives (an interrupted refresh keeps what it fetched), stop at a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from lib.sources import get_source
from lib.sources.base import GeoBlocked, Source, SourceError, SourceUnavailable
from lib.store import Store

# What `refresh --default-set` (and so `make run`) fetches on a machine with network:
# (source, dataset, timeframe, first day when nothing is cached yet).
DEFAULT_SET: tuple[tuple[str, str, str, datetime | None], ...] = (
    ("yfinance", "bars", "1d", None),
    ("binance", "bars", "1h", datetime(2023, 1, 1, tzinfo=timezone.utc)),
    ("binanceusdm", "funding", "8h", datetime(2023, 1, 1, tzinfo=timezone.utc)),
    ("binanceusdm", "open_interest", "1h", None),
)

DEMO_SEED = 7

Progress = Callable[[str, int], None]  # (what is being fetched, rows stored so far)


@dataclass(frozen=True)
class RefreshResult:
    """What one series' refresh did: rows added, and the one-line error if it failed."""

    source: str
    dataset: str
    symbol: str
    timeframe: str
    rows_added: int
    error: str | None = None
    unreachable: bool = False  # the source could not be reached at all (network, geo-block)

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.source} {self.symbol} {self.timeframe}"


def refresh_series(
    store: Store,
    source: Source,
    dataset: str,
    symbol: str,
    timeframe: str,
    since: datetime | None = None,
    until: datetime | None = None,
    deadline: float | None = None,
    progress: Progress | None = None,
) -> RefreshResult:
    """Fetch one series from where the store ends (or `since`) and merge each chunk as it comes.

    The last stored row is fetched again: it may have been a bar that was still open.
    `deadline` is a time.monotonic() value after which no further chunk is requested.
    """
    resume = store.last_ts(dataset, source.name, symbol, timeframe)
    start = max(resume, since) if resume and since else resume or since
    added = 0
    label = f"{dataset} {source.name} {symbol} {timeframe}"
    try:
        for chunk in source.fetch(dataset, symbol, timeframe, start, until):
            added += store.write(dataset, chunk, source=source.name, market_id=source.market_id(symbol, dataset))
            if progress:
                progress(label, added)
            if deadline is not None and time.monotonic() > deadline:
                return RefreshResult(source.name, dataset, symbol, timeframe, added, "stopped at the time limit")
    except SourceError as exc:
        unreachable = isinstance(exc, (SourceUnavailable, GeoBlocked)) and added == 0
        return RefreshResult(source.name, dataset, symbol, timeframe, added, str(exc), unreachable)
    return RefreshResult(source.name, dataset, symbol, timeframe, added)


def refresh_many(
    store: Store,
    jobs: list[tuple[str, str, str, datetime | None]],
    symbols: tuple[str, ...],
    until: datetime | None = None,
    seconds: float | None = None,
    progress: Progress | None = None,
) -> list[RefreshResult]:
    """Run (source, dataset, timeframe, since) jobs for every symbol, within `seconds` in all.

    A source that cannot be reached at all is not asked again for its other symbols.
    """
    deadline = None if seconds is None else time.monotonic() + seconds
    results: list[RefreshResult] = []
    unreachable: dict[str, str] = {}
    for source_name, dataset, timeframe, since in jobs:
        source = get_source(source_name)
        for symbol in symbols:
            if deadline is not None and time.monotonic() > deadline:
                results.append(RefreshResult(source_name, dataset, symbol, timeframe, 0, "not started: time limit"))
            elif source_name in unreachable:
                results.append(RefreshResult(source_name, dataset, symbol, timeframe, 0, unreachable[source_name]))
            elif dataset not in source.datasets:
                results.append(RefreshResult(source_name, dataset, symbol, timeframe, 0, f"{source_name} has no {dataset}"))
            else:
                result = refresh_series(store, source, dataset, symbol, timeframe, since, until, deadline, progress)
                if result.unreachable:
                    unreachable[source_name] = result.error
                results.append(result)
    return results



def write_demo_market(store: Store, seed: int = DEMO_SEED) -> int:
    """Fill `store` (the demo store, never the real cache) with the synthetic market; rows added."""
    from lib.sources.demo import demo_market

    return sum(store.write(name, frame, source="demo (synthetic)") for name, frame in demo_market(seed=seed).items())
