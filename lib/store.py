"""The Parquet cache under the data directory: the only code that reads or writes it.

Layout (hive style, one file per partition):
    <root>/dataset=bars/exchange=binance/symbol=BTC/timeframe=1h/year=2024/data.parquet
    <root>/manifest.json     what is cached, from where, when fetched, and its gaps
    <root>/quarantine/...    files that could not be read, moved aside with their path kept
    <root>/.lock             held while writing, so two writers never interleave
    <root>/collectors/<name>.json   each live collector's heartbeat (lib.collect)

The root is a local directory or an object-storage URL (s3://bucket/prefix); lib.objectstore
holds the difference. Writes are atomic (local: temporary file, fsync, rename; object storage:
one PUT): a crash leaves the previous file intact. Merges dedupe on the dataset key and keep the
newest row, so a short or failed fetch never drops stored rows; the one row a merge may drop is an
off-grid bar that an on-grid cut of the same hours replaces (`_without_shadowed_off_grid_bars`). Reads return a polars LazyFrame
(a cloud scan on object storage) so filters push down to the files.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from lib.gaps import find_gaps
from lib.objectstore import LOCK, Files, StoreError, files_at
from lib.schema import BARS, DATASETS, EXCHANGE, PARTITIONS, SYMBOL, TIMEFRAME, TIMEFRAMES, TS, Dataset, conform, empty

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
QUARANTINE = "quarantine"
COLLECTORS = "collectors"
COLLECTOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a heartbeat file's stem
PART_FILE = "data.parquet"
COMPRESSION = "zstd"
LOCK_TIMEOUT_S = 600.0
READ_ATTEMPTS = 3  # see Store.read
READ_RETRY_WAIT_S = 0.2
GAPS_KEPT = 200  # the longest gaps listed per entry; gap_count always counts all of them
SPANS_KEPT = 64  # the latest writes' spans kept per entry (see `_with_span`)

HIVE_SCHEMA: dict[str, pl.DataType] = {"dataset": pl.String(), **PARTITIONS, "year": pl.Int32()}


@dataclass(frozen=True)
class SeriesKey:
    """One cached series: a dataset for one exchange, symbol and timeframe."""

    dataset: str
    exchange: str
    symbol: str
    timeframe: str

    @property
    def id(self) -> str:
        return f"{self.dataset}/{self.exchange}/{self.symbol}/{self.timeframe}"


def _utc_iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _with_span(previous: dict, source: str, span: tuple[datetime, datetime] | None) -> list[dict]:
    """The entry's write spans, oldest first: which source last wrote which time span. A write
    replaces the stored rows it covers (`Store.write`), so for any time the latest span over it
    names its rows' source (`lib.provenance.sources_between`). A source writing again right after
    itself (a refresh) extends its span; an entry from before spans existed starts with its one source."""
    spans = previous.get("spans")
    if spans is None:
        known = previous.get("source", "unknown") != "unknown" and previous.get("first_ts")
        spans = [{key: previous[key] for key in ("source", "first_ts", "last_ts")}] if known else []
    if span is None or source == "unknown":
        return spans
    first, last = _utc_iso(span[0]), _utc_iso(span[1])
    if spans and spans[-1]["source"] == source:
        first, last = min(first, spans[-1]["first_ts"]), max(last, spans[-1]["last_ts"])
        spans = spans[:-1]
    return [*spans, {"source": source, "first_ts": first, "last_ts": last}][-SPANS_KEPT:]


def _without_shadowed_off_grid_bars(bars: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """`bars` (one series, sorted by ts) less the off-grid bars that another cut of the same
    hours covers.

    Binance's archive keeps 43 hourly bars of February 2018 at :28:14 past the hour (after an
    outage); its API now serves the same hours re-cut on the hour. Kept side by side, both would
    be counted. A run of off-grid bars (each `timeframe` after the last) with on-grid bars between
    its first and last is such a double: the on-grid cut wins. A run with no on-grid bar inside it
    is the only record of its hours and stays.
    """
    step = TIMEFRAMES.get(timeframe)
    if step is None or step > TIMEFRAMES["1d"]:  # weeks and months are not multiples from the epoch
        return bars
    is_on_grid = pl.col(TS) == pl.col(TS).dt.truncate(step)
    on_grid = bars.filter(is_on_grid)[TS]
    runs = (
        bars.filter(~is_on_grid)
        .select(TS, run=(pl.col(TS).diff() != step).fill_null(True).cum_sum())
        .group_by("run")
        .agg(first=pl.col(TS).min(), last=pl.col(TS).max())
    )
    shadowed = [
        pl.col(TS).is_between(first, last)
        for first, last in runs.select("first", "last").iter_rows()
        if on_grid.search_sorted(first, side="right") < on_grid.search_sorted(last, side="left")
    ]
    return bars.filter(~(pl.any_horizontal(shadowed) & ~is_on_grid)) if shadowed else bars


def _now_iso() -> str:
    return _utc_iso(datetime.now(timezone.utc)) or ""


def _read_json(files: Files, rel: str) -> Any:
    return json.loads(files.read_bytes(rel))


def _put_json(files: Files, rel: str, value: object) -> None:
    payload = json.dumps(value, indent=1, sort_keys=True).encode()
    files.put(rel, lambda handle: handle.write(payload))


class Store:
    """Partitioned Parquet cache rooted at `root`, a directory or an s3:// URL (created on first write)."""

    def __init__(self, root: Path | str, read_only: bool = False) -> None:
        self.files = files_at(root)
        self.root = self.files.root  # a Path, or the URL
        self.read_only = read_only

    # --- paths (relative to the root, '/'-separated, on disk and in object storage alike) ------

    @staticmethod
    def _partition_file(dataset: Dataset, exchange: str, symbol: str, timeframe: str, year: int) -> str:
        series = f"{EXCHANGE}={exchange}/{SYMBOL}={symbol}/{TIMEFRAME}={timeframe}"
        return f"dataset={dataset.name}/{series}/year={year}/{PART_FILE}"

    def _files(self, dataset: Dataset, exchange: str | None, symbol: str | None, timeframe: str | None) -> list[str]:
        pattern = "/".join(
            f"{name}={value if value is not None else '*'}"
            for name, value in ((EXCHANGE, exchange), (SYMBOL, symbol), (TIMEFRAME, timeframe))
        )
        return self.files.glob(f"dataset={dataset.name}/{pattern}/year=*/{PART_FILE}")

    # --- locking and quarantine --------------------------------------------------------------

    @contextmanager
    def lock(self, timeout_s: float = LOCK_TIMEOUT_S, name: str = LOCK) -> Iterator[None]:
        """Hold the store's exclusive lock `name`, by default the write lock (an flock, or a lock
        object on object storage)."""
        if self.read_only:
            raise StoreError(f"the store at {self.root} is read-only here; refresh it from the command line")
        with self.files.lock(timeout_s, name):
            yield

    def quarantine(self, path: str, reason: str) -> Path | str:
        """Move an unreadable file (relative to the root) under <root>/quarantine, keeping its
        relative path; log why and return where it went."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        target = f"{QUARANTINE}/{stamp}/{path}"
        self.files.move(path, target)
        self.files.put(f"{target}.reason.txt", lambda handle: handle.write(f"{reason}\n".encode()))
        log.warning("quarantined %s: %s (moved to %s)", path, reason, self.files.location(target))
        return self.files.location(target)

    def quarantined(self) -> list[Path | str]:
        """Files moved to quarantine, oldest first."""
        return [self.files.location(p) for p in self.files.find(QUARANTINE) if not p.endswith(".reason.txt")]

    def _damage(self, path: str) -> str | None:
        """Why the file cannot be used (its footer or schema does not read), or None if it can."""
        try:
            schema = pl.scan_parquet(self.files.url(path), storage_options=self.files.storage_options).collect_schema()
        except Exception as exc:  # polars and pyarrow raise many types for a damaged file
            return f"unreadable Parquet file ({type(exc).__name__}: {exc})"
        return None if TS in schema else f"not a dataset file: no {TS} column"

    def _readable(self, path: str) -> bool:
        """True if the file can be used; otherwise quarantine it (or skip it when read-only)."""
        reason = self._damage(path)
        if reason is None:
            return True
        if self.read_only:
            log.warning("skipping %s: %s", path, reason)
        else:
            self.quarantine(path, reason)
        return False

    def verify(self) -> list[Path | str]:
        """Check every stored file; quarantine the damaged ones and recount their series.

        Returns where the damaged files were moved (nothing is deleted)."""
        damaged = [
            (SeriesKey(ds.name, *self._series_parts(path)), path, reason)
            for ds in DATASETS.values()
            for path in self._files(ds, None, None, None)
            if (reason := self._damage(path)) is not None
        ]
        if not damaged or self.read_only:
            return []
        with self.lock():
            moved = [self.quarantine(path, reason) for _, path, reason in damaged]
            self._update_manifest({key for key, _, _ in damaged}, source="unknown", market_id=None)
        return moved

    # --- reading -----------------------------------------------------------------------------

    def scan(
        self,
        dataset: Dataset | str,
        exchange: str | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
    ) -> pl.LazyFrame:
        """All stored rows of `dataset` (optionally one exchange/symbol/timeframe) in its schema.

        Partitions are pruned by directory before any file is opened; damaged files are
        quarantined and the rest is returned.
        """
        ds = DATASETS[dataset] if isinstance(dataset, str) else dataset
        files = [p for p in self._files(ds, exchange, symbol, timeframe) if self._readable(p)]
        if not files:
            return empty(ds).lazy()
        return pl.scan_parquet(
            [self.files.url(p) for p in files],
            storage_options=self.files.storage_options,
            hive_partitioning=True,
            hive_schema=HIVE_SCHEMA,
            missing_columns="insert",
            extra_columns="ignore",
            schema={name: dtype for name, dtype in ds.columns.items()},
        ).select(list(ds.schema))

    def read(
        self,
        dataset: Dataset | str,
        symbols: tuple[str, ...],
        start: datetime,
        end: datetime,
        exchange: str | None = None,
        timeframe: str | None = None,
    ) -> pl.DataFrame:
        """Rows of `symbols` with start <= ts < end (any exchange or timeframe unless given),
        sorted by symbol and time.

        polars reads a cloud object in several range requests, so a partition replaced while it is
        read can fail to decode (pola-rs/polars#27362); the read is then tried again."""

        def collect() -> pl.DataFrame:
            return (
                self.scan(dataset, exchange=exchange, timeframe=timeframe)
                .filter(pl.col(SYMBOL).is_in(symbols), pl.col(TS) >= start, pl.col(TS) < end)
                .sort(SYMBOL, TS)
                .collect()
            )

        for _ in range(READ_ATTEMPTS - 1):
            try:
                return collect()
            except pl.exceptions.ComputeError as exc:
                log.warning("read of %s failed (%s): a partition replaced mid-read? retrying", self.root, exc)
                time.sleep(READ_RETRY_WAIT_S)
        return collect()

    def _read_partition(self, path: str) -> pl.DataFrame | None:
        if not self.files.exists(path) or not self._readable(path):
            return None
        try:
            return pl.read_parquet(self.files.url(path), storage_options=self.files.storage_options)
        except Exception as exc:  # damage past the footer shows only on a full read
            self.quarantine(path, f"unreadable Parquet data ({type(exc).__name__}: {exc})")
            return None

    # --- writing -----------------------------------------------------------------------------

    def write(self, dataset: Dataset | str, df: pl.DataFrame, source: str, market_id: str | None = None) -> int:
        """Merge `df` into the store; return how many rows were new (net of any off-grid bars an
        on-grid bar displaced, see `_without_shadowed_off_grid_bars`).

        Rows with the same key as stored rows replace them (the newest fetch wins, e.g. a bar that
        was still open); stored rows absent from `df` are kept. The manifest entry of every
        touched series is recomputed from what is stored.
        """
        ds = DATASETS[dataset] if isinstance(dataset, str) else dataset
        frame = conform(df, ds)
        if frame.is_empty():
            return 0
        added = 0
        with self.lock():
            self.files.remove_leftovers("dataset=*/**")
            partitions = frame.with_columns(year=pl.col(TS).dt.year()).partition_by(
                [EXCHANGE, SYMBOL, TIMEFRAME, "year"], as_dict=True
            )
            for (exchange, symbol, timeframe, year), part in partitions.items():
                path = self._partition_file(ds, exchange, symbol, timeframe, year)
                new = part.select(list(ds.columns))
                old = self._read_partition(path)
                before = 0 if old is None else old.height
                merged = new if old is None else pl.concat([old.select(list(ds.columns)), new], how="vertical_relaxed")
                value_key = [c for c in ds.key if c in ds.columns]
                merged = merged.unique(subset=value_key, keep="last", maintain_order=True).sort(TS)
                if ds.name == BARS.name:
                    merged = _without_shadowed_off_grid_bars(merged, timeframe)
                added += merged.height - before
                self.files.put(path, lambda handle: merged.write_parquet(handle, compression=COMPRESSION))
            spans = frame.group_by(EXCHANGE, SYMBOL, TIMEFRAME).agg(pl.col(TS).min().alias("lo"),
                                                                     pl.col(TS).max().alias("hi"))
            written = {SeriesKey(ds.name, e, s, t): (lo, hi) for e, s, t, lo, hi in spans.iter_rows()}
            self._update_manifest(set(written), source, market_id, written)
        return added

    # --- manifest ----------------------------------------------------------------------------

    def manifest(self) -> dict[str, dict]:
        """Entries keyed by series id ('bars/binance/BTC/1h'); rebuilt from files if damaged."""
        try:
            entries = _read_json(self.files, MANIFEST)["entries"]
            if not isinstance(entries, dict):
                raise TypeError("entries is not an object")
            return entries
        except (FileNotFoundError, NotADirectoryError):  # no cache there (yet)
            return {}
        except (ValueError, KeyError, TypeError) as exc:
            if self.read_only:
                log.warning("manifest %s is damaged (%s)", self.files.location(MANIFEST), exc)
                return {}
            with self.lock():
                self.quarantine(MANIFEST, f"damaged manifest ({exc}); rebuilt from the stored files")
                return self._update_manifest(self._stored_series(), source="unknown", market_id=None)

    def heartbeat(self, name: str, info: Mapping[str, object]) -> None:
        """Write collector `name`'s heartbeat to <root>/collectors/<name>.json, atomically. No lock: each
        collector writes only its own file, and a refresh holding the lock must not stall it."""
        if self.read_only:
            raise StoreError(f"the store at {self.root} is read-only here; run collectors from the command line")
        if not COLLECTOR_NAME.fullmatch(name):
            raise StoreError(f"collector name {name!r}: use letters, digits, '.', '_' and '-'")
        _put_json(self.files, f"{COLLECTORS}/{name}.json", dict(info))

    def heartbeats(self) -> dict[str, dict]:
        """Every collector's last heartbeat, by name; an unreadable file is skipped (logged)."""
        beats: dict[str, dict] = {}
        for path in self.files.glob(f"{COLLECTORS}/*.json"):
            try:
                beats[path.removeprefix(f"{COLLECTORS}/").removesuffix(".json")] = _read_json(self.files, path)
            except (OSError, ValueError) as exc:
                log.warning("skipping heartbeat %s: %s", self.files.location(path), exc)
        return beats

    def version(self) -> str:
        """Changes whenever the store changes: a cache key for readers."""
        return self.files.version(MANIFEST) or "empty"

    def status(self) -> list[dict]:
        """One manifest entry per cached series, sorted by dataset, exchange, symbol, timeframe."""
        entries = self.manifest()
        return [entries[key] for key in sorted(entries)]

    def last_ts(self, dataset: str, exchange: str, symbol: str, timeframe: str) -> datetime | None:
        """The newest stored ts of one series (from the manifest), or None if nothing is stored."""
        entry = self.manifest().get(SeriesKey(dataset, exchange, symbol, timeframe).id)
        return None if entry is None or entry["last_ts"] is None else datetime.fromisoformat(entry["last_ts"])

    def _stored_series(self) -> set[SeriesKey]:
        return {
            SeriesKey(ds.name, *self._series_parts(path))
            for ds in DATASETS.values()
            for path in self._files(ds, None, None, None)
        }

    @staticmethod
    def _series_parts(path: str) -> tuple[str, str, str]:
        """(exchange, symbol, timeframe) from a partition file's path."""
        parts = dict(p.split("=", 1) for p in path.split("/")[1:4])
        return parts[EXCHANGE], parts[SYMBOL], parts[TIMEFRAME]

    def _update_manifest(self, keys: set[SeriesKey], source: str, market_id: str | None,
                         written: Mapping[SeriesKey, tuple[datetime, datetime]] | None = None) -> dict[str, dict]:
        """Recompute the entries of `keys` from the stored files (caller holds the lock); `written`:
        the time span `source` just wrote of each, recorded in the entry's `spans`."""
        try:
            entries = _read_json(self.files, MANIFEST)["entries"]
        except (FileNotFoundError, ValueError, KeyError):
            entries = {}
        for key in keys:
            series = self.scan(key.dataset, key.exchange, key.symbol, key.timeframe).select(TS).collect()
            if series.is_empty():
                entries.pop(key.id, None)
                continue
            gaps = find_gaps(series, key.timeframe)
            longest = gaps.sort("missing", descending=True).head(GAPS_KEPT).sort("gap_start")
            previous = entries.get(key.id, {})
            entries[key.id] = {
                "dataset": key.dataset,
                "exchange": key.exchange,
                "symbol": key.symbol,
                "timeframe": key.timeframe,
                "source": source if source != "unknown" else previous.get("source", source),
                "spans": _with_span(previous, source, (written or {}).get(key)),
                "market_id": market_id or previous.get("market_id"),
                "rows": series.height,
                "first_ts": _utc_iso(series[TS].min()),
                "last_ts": _utc_iso(series[TS].max()),
                "gap_count": gaps.height,
                "gaps": [
                    {"start": _utc_iso(row["gap_start"]), "end": _utc_iso(row["gap_end"]), "missing": row["missing"]}
                    for row in longest.iter_rows(named=True)
                ],
                "fetched_at": _now_iso(),
            }
        _put_json(self.files, MANIFEST, {"entries": entries})
        return entries
