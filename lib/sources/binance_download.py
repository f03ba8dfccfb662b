"""Download Binance's public data archive (data.binance.vision): resumable and checksum-verified.

`http_get` is the only network I/O (tests replace it). Files land in the archive's own tree below
`out` (so the importer reads the market from the path). A file already there whose .CHECKSUM matches
is not fetched again; a new one is written to '<name>.part' and renamed only once its SHA-256 matches
the .CHECKSUM the server sent. A 404 means Binance has no file for that period: reported, not fatal.
"""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from lib.sources.base import SourceUnavailable
from lib.sources.binance_archive import (
    ARCHIVE_KINDS,
    CHECKSUM_SUFFIX,
    FUTURES_ONLY,
    KLINES,
    MARKET_DIRS,
    ArchiveError,
    archive_relpath,
    checksum_path,
    verify_checksum,
)

BASE_URL = "https://data.binance.vision/data"
QUOTE = "USDT"
ARCHIVES_SUBDIR = "_archives"  # default download folder, inside the data directory
PART_SUFFIX = ".part"
RETRIES = 4
BACKOFF_S = 1.0  # waits 1, 2, 4 s between tries
TIMEOUT_S = 60.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
NOT_FOUND = 404

# What happened to one file (the words the CLI prints).
FETCHED, KEPT, MISSING, FAILED = "fetched", "kept", "missing", "failed"

Getter = Callable[[str], bytes | None]  # url -> body, or None when the server answers 404


class DownloadError(SourceUnavailable):
    """data.binance.vision could not be reached, or kept failing, after retries."""


def http_get(url: str) -> bytes | None:
    """The body at `url`, or None on 404. Retries network errors, 408, 429 and 5xx with exponential
    backoff; raises DownloadError on any other status or when the tries run out."""
    reason = ""
    for attempt in range(RETRIES):
        if attempt:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == NOT_FOUND:
                return None
            if exc.code not in RETRY_STATUSES:
                raise DownloadError(f"GET {url}: HTTP {exc.code} {exc.reason}") from exc
            reason = f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = str(getattr(exc, "reason", exc))
    raise DownloadError(f"GET {url}: {reason} ({RETRIES} tries)")


# --- which files ------------------------------------------------------------------------------------


def pair_of(symbol: str) -> str:
    """'BTC' or 'btcusdt' -> 'BTCUSDT' (Binance's USDT market of the base asset)."""
    upper = symbol.strip().upper()
    return upper if upper.endswith(QUOTE) else upper + QUOTE


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()


def _days(start: date, end: date) -> Iterator[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def periods(kind: str, start: date, end: date, today: date) -> list[str]:
    """The archive periods covering start..end (both included): monthly files for klines of months
    before the current one, daily files otherwise (metrics, bookDepth, klines of the current month)."""
    if kind != KLINES:
        return [f"{day:%Y-%m-%d}" for day in _days(start, end)]
    this_month = today.replace(day=1)
    months = sorted({day.replace(day=1) for day in _days(start, end)})
    monthly = [f"{month:%Y-%m}" for month in months if month < this_month]
    daily = [f"{day:%Y-%m-%d}" for day in _days(max(start, this_month), end)]
    return monthly + daily


# --- one file --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """One archive file: where it is (or would be) locally, what happened (FETCHED, KEPT, MISSING, FAILED), why."""

    relpath: str
    path: Path
    status: str
    detail: str


def _verified(path: Path) -> bool:
    """True when `path` and its .CHECKSUM are both here and agree."""
    beside = checksum_path(path)
    if not (path.exists() and beside.exists()):
        return False
    try:
        verify_checksum(path, beside.read_text(), path.name)
    except ArchiveError:
        return False
    return True


def _part(path: Path) -> Path:
    """Where `path` is written before it is complete: '<name>.part' beside it."""
    return path.with_name(path.name + PART_SUFFIX)


def fetch_file(relpath: str, out: Path, get: Getter) -> Fetched:
    """Bring one archive file (and its .CHECKSUM) to `out/relpath`, unless it is already there and verified.
    Raises DownloadError when the server cannot be reached."""
    path = out / relpath
    if _verified(path):
        return Fetched(relpath, path, KEPT, "already downloaded and verified")
    url = f"{BASE_URL}/{relpath}"
    checksum = get(url + CHECKSUM_SUFFIX)
    body = None if checksum is None else get(url)
    if checksum is None or body is None:
        return Fetched(relpath, path, MISSING, f"no file for that period on data.binance.vision (HTTP {NOT_FOUND})")
    path.parent.mkdir(parents=True, exist_ok=True)
    _part(path).write_bytes(body)
    try:
        verify_checksum(_part(path), checksum.decode(errors="replace"), path.name)
    except ArchiveError as exc:
        _part(path).unlink()
        return Fetched(relpath, path, FAILED, str(exc))
    os.replace(_part(path), path)
    beside = checksum_path(path)  # written last: a zip without its .CHECKSUM is fetched again
    _part(beside).write_bytes(checksum)
    os.replace(_part(beside), beside)
    return Fetched(relpath, path, FETCHED, f"{len(body):,} bytes, sha256 verified")


def download(
    kind: str,
    symbol: str,
    market: str,
    interval: str | None,
    start: date,
    end: date,
    out: Path,
    today: date | None = None,
    get: Getter | None = None,
) -> list[Fetched]:
    """Fetch the archive files of `kind` for `symbol` from start to end (days included) into `out`.

    Raises ValueError for a combination Binance does not publish (metrics on spot, klines without
    an interval, end before start)."""
    if kind not in ARCHIVE_KINDS or market not in MARKET_DIRS:
        raise ValueError(f"kind must be one of {', '.join(ARCHIVE_KINDS)} and market one of {', '.join(MARKET_DIRS)}")
    if kind in FUTURES_ONLY and market != "um":
        raise ValueError(f"Binance publishes {kind} for USD-M futures only: use --market um")
    if kind == KLINES and not interval:
        raise ValueError("klines need an interval (e.g. --interval 1h)")
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    pair = pair_of(symbol)
    wanted = periods(kind, start, end, today or _utc_today())
    relpaths = [archive_relpath(market, kind, pair, interval, period) for period in wanted]
    fetched: list[Fetched] = []
    for index, relpath in enumerate(relpaths):
        try:
            fetched.append(fetch_file(relpath, out, get or http_get))
        except DownloadError as exc:  # unreachable after retries: the files after it would fail the same way
            untried = (Fetched(rest, out / rest, FAILED, "not tried: see above") for rest in relpaths[index + 1 :])
            return [*fetched, Fetched(relpath, out / relpath, FAILED, str(exc)), *untried]
    return fetched
