"""The one interface every market-data source implements, and the errors sources raise.

A source downloads (the only I/O) and normalizes (pure) into the canonical schema of lib.schema.
It raises on failure or on an empty answer: a failure returned as data would be cached as data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

import polars as pl


class SourceError(RuntimeError):
    """A fetch failed; the message is one line a user can act on."""


class SourceUnavailable(SourceError):
    """The network or the provider is unreachable (after retries)."""


class RateLimited(SourceError):
    """The provider kept answering 429 / rate-limit errors after retries."""


class GeoBlocked(SourceError):
    """The provider refuses this location (HTTP 451 or 403)."""


class EmptyResponse(SourceError):
    """The provider answered, but with no rows for the request."""


class Source(Protocol):
    """What a source declares and how it fetches.

    `name` is the value of the `exchange` column in every frame it yields. `datasets` and
    `timeframes` declare what it supports; `fetch` yields chunks in the canonical schema of
    `dataset`, oldest first, so a caller can store each chunk as it arrives.
    """

    name: str
    datasets: frozenset[str]
    timeframes: tuple[str, ...]

    def market_id(self, symbol: str, dataset: str) -> str:
        """The provider's own id of the market for `symbol` (e.g. 'BTC-USD', 'BTC/USDT:USDT')."""
        ...

    def fetch(
        self, dataset: str, symbol: str, timeframe: str, since: datetime | None, until: datetime | None
    ) -> Iterator[pl.DataFrame]:
        """Yield chunks of rows with since <= ts < until (None: the provider's first / latest)."""
        ...
