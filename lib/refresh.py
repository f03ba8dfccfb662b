"""Bring cached series up to date from a source: resume from the last stored row, store each
chunk as it arrives (an interrupted refresh keeps what it fetched), stop at a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from lib.sources import SOURCES, get_source
from lib.sources.base import GeoBlocked, Source, SourceError, SourceUnavailable
from lib.store import Store, StoreError

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
SeriesJob = tuple[str, str, str, str, datetime | None]  # (source, dataset, symbol, timeframe, since)

REFRESH_LOCK = ".refresh.lock"
NOT_REFRESHED: frozenset[str] = frozenset({"demo"})  # registered, but never what a cached series is refreshed from


class RefreshRunning(StoreError):
    """Another refresh holds the refresh lock of this data directory."""


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
    series = [(source, dataset, symbol, timeframe, since) for source, dataset, timeframe, since in jobs
              for symbol in symbols]  # fmt: skip
    return _refresh_each(store, series, until, seconds, progress)


def _refresh_each(
    store: Store,
    series: list[SeriesJob],
    until: datetime | None,
    seconds: float | None,
    progress: Progress | None,
) -> list[RefreshResult]:
    """Refresh each (source, dataset, symbol, timeframe, since) in turn, within `seconds` in all."""
    deadline = None if seconds is None else time.monotonic() + seconds
    results: list[RefreshResult] = []
    sources: dict[str, Source] = {}
    unreachable: dict[str, str] = {}
    for source_name, dataset, symbol, timeframe, since in series:
        if source_name not in sources:
            sources[source_name] = get_source(source_name)
        source = sources[source_name]
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


def cached_series(entries: list[dict]) -> tuple[list[SeriesJob], list[str]]:
    """Split manifest entries into the series a registered source can bring up to date (resuming
    from their last row) and one note for each that it cannot (imported files, demo data)."""
    jobs: list[SeriesJob] = []
    skipped: list[str] = []
    for entry in entries:
        source = entry.get("source") or "unknown"
        if source in SOURCES and source not in NOT_REFRESHED and source == entry["exchange"]:
            jobs.append((source, entry["dataset"], entry["symbol"], entry["timeframe"], None))
        else:
            series = f"{entry['dataset']} {entry['exchange']} {entry['symbol']} {entry['timeframe']}"
            skipped.append(f"{series}: written by {source}, not a source refresh fetches from")
    return jobs, skipped


def refresh_all(
    store: Store, until: datetime | None = None, seconds: float | None = None, progress: Progress | None = None
) -> tuple[list[RefreshResult], list[str]]:
    """Bring every cached series of a fetchable source up to date (only the missing tail); returns
    the results and a note per series left alone."""
    jobs, skipped = cached_series(store.status())
    return _refresh_each(store, jobs, until, seconds, progress), skipped


@contextmanager
def refresh_lock(store: Store) -> Iterator[None]:
    """Hold <data dir>/.refresh.lock for a whole refresh, so a scheduled run and a manual one never
    overlap; raises RefreshRunning at once when another process holds it. (The store's own lock
    guards each write; this one spans many writes.)"""
    with ExitStack() as held:
        try:
            held.enter_context(store.lock(0, name=REFRESH_LOCK))
        except StoreError as exc:
            if store.read_only:
                raise
            raise RefreshRunning(f"another refresh is running ({exc})") from None
        yield



def write_demo_market(store: Store, seed: int = DEMO_SEED) -> int:
    """Fill `store` (the demo store, never the real cache) with the synthetic market; rows added."""
    from lib.sources.demo import demo_market

    return sum(store.write(name, frame, source="demo (synthetic)") for name, frame in demo_market(seed=seed).items())
