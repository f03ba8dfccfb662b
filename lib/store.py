"""The Parquet cache under the data directory: the only code that reads or writes it.

Layout (hive style, one file per partition):
    <root>/dataset=bars/exchange=binance/symbol=BTC/timeframe=1h/year=2024/data.parquet
    <root>/manifest.json     what is cached, from where, when fetched, and its gaps
    <root>/quarantine/...    files that could not be read, moved aside with their path kept
    <root>/.lock             held while writing, so two writers never interleave
    <root>/collectors/<name>.json   each live collector's heartbeat (lib.collect)

Writes are atomic (temporary file, fsync, rename): a crash leaves the previous file intact.
Merges dedupe on the dataset key and keep the newest row, so a short or failed fetch never
drops stored rows. Reads return a polars LazyFrame so filters push down to the files.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from lib.gaps import find_gaps
from lib.schema import DATASETS, EXCHANGE, PARTITIONS, SYMBOL, TIMEFRAME, TS, Dataset, conform, empty

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
QUARANTINE = "quarantine"
LOCK = ".lock"
COLLECTORS = "collectors"
COLLECTOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a heartbeat file's stem
PART_FILE = "data.parquet"
TMP_SUFFIX = ".tmp"
COMPRESSION = "zstd"
LOCK_TIMEOUT_S = 600.0
GAPS_KEPT = 200  # the longest gaps listed per entry; gap_count always counts all of them

HIVE_SCHEMA: dict[str, pl.DataType] = {"dataset": pl.String(), **PARTITIONS, "year": pl.Int32()}


class StoreError(RuntimeError):
    """The store cannot do what was asked; the message says why."""


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


def _now_iso() -> str:
    return _utc_iso(datetime.now(timezone.utc)) or ""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, write: Callable[[Path], object]) -> None:
    """Write through `write(tmp_path)`, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


class Store:
    """Partitioned Parquet cache rooted at `root` (created on first write)."""

    def __init__(self, root: Path | str, read_only: bool = False) -> None:
        self.root = Path(root)
        self.read_only = read_only

    # --- paths -------------------------------------------------------------------------------

    def _dataset_dir(self, dataset: Dataset) -> Path:
        return self.root / f"dataset={dataset.name}"

    def _partition_file(self, dataset: Dataset, exchange: str, symbol: str, timeframe: str, year: int) -> Path:
        return (
            self._dataset_dir(dataset)
            / f"{EXCHANGE}={exchange}"
            / f"{SYMBOL}={symbol}"
            / f"{TIMEFRAME}={timeframe}"
            / f"year={year}"
            / PART_FILE
        )

    def _files(self, dataset: Dataset, exchange: str | None, symbol: str | None, timeframe: str | None) -> list[Path]:
        pattern = "/".join(
            f"{name}={value if value is not None else '*'}"
            for name, value in ((EXCHANGE, exchange), (SYMBOL, symbol), (TIMEFRAME, timeframe))
        )
        return sorted(self._dataset_dir(dataset).glob(f"{pattern}/year=*/{PART_FILE}"))

    # --- locking and quarantine --------------------------------------------------------------

    @contextmanager
    def lock(self, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the store's exclusive write lock (an flock on <root>/.lock)."""
        if self.read_only:
            raise StoreError(f"the store at {self.root} is read-only here; refresh it from the command line")
        self.root.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout_s
        with open(self.root / LOCK, "a+") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(f"another process has held the lock on {self.root} for {timeout_s:.0f} s")
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def quarantine(self, path: Path, reason: str) -> Path:
        """Move an unreadable file under <root>/quarantine, keeping its relative path; log why."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.root / QUARANTINE / stamp / path.relative_to(self.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        (target.parent / f"{target.name}.reason.txt").write_text(reason + "\n")
        log.warning("quarantined %s: %s (moved to %s)", path, reason, target)
        return target

    def quarantined(self) -> list[Path]:
        """Files moved to quarantine, oldest first."""
        folder = self.root / QUARANTINE
        return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".reason.txt"))

    @staticmethod
    def _damage(path: Path) -> str | None:
        """Why the file cannot be used (its footer or schema does not read), or None if it can."""
        try:
            schema = pl.read_parquet_schema(path)
        except Exception as exc:  # polars and pyarrow raise many types for a damaged file
            return f"unreadable Parquet file ({type(exc).__name__}: {exc})"
        return None if TS in schema else f"not a dataset file: no {TS} column"

    def _readable(self, path: Path) -> bool:
        """True if the file can be used; otherwise quarantine it (or skip it when read-only)."""
        reason = self._damage(path)
        if reason is None:
            return True
        if self.read_only:
            log.warning("skipping %s: %s", path, reason)
        else:
            self.quarantine(path, reason)
        return False

    def verify(self) -> list[Path]:
        """Check every stored file; quarantine the damaged ones and recount their series.

        Returns where the damaged files were moved (nothing is deleted)."""
        damaged = [
            (SeriesKey(ds.name, *self._series_parts(ds, path)), path, reason)
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
            files,
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
        sorted by symbol and time."""
        return (
            self.scan(dataset, exchange=exchange, timeframe=timeframe)
            .filter(pl.col(SYMBOL).is_in(symbols), pl.col(TS) >= start, pl.col(TS) < end)
            .sort(SYMBOL, TS)
            .collect()
        )

    def _read_partition(self, path: Path) -> pl.DataFrame | None:
        if not path.exists() or not self._readable(path):
            return None
        try:
            return pl.read_parquet(path)
        except Exception as exc:  # damage past the footer shows only on a full read
            self.quarantine(path, f"unreadable Parquet data ({type(exc).__name__}: {exc})")
            return None

    # --- writing -----------------------------------------------------------------------------

    def write(self, dataset: Dataset | str, df: pl.DataFrame, source: str, market_id: str | None = None) -> int:
        """Merge `df` into the store; return how many rows were new.

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
            self._remove_stale_tmp()
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
                added += merged.height - before
                _atomic_write_bytes(path, lambda tmp: merged.write_parquet(tmp, compression=COMPRESSION))
            touched = {SeriesKey(ds.name, e, s, t) for e, s, t, _ in partitions}
            self._update_manifest(touched, source, market_id)
        return added

    def _remove_stale_tmp(self) -> None:
        """Temporary files left by a writer that was killed mid-write (we hold the lock)."""
        for tmp in self.root.glob(f"dataset=*/**/*{TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)

    # --- manifest ----------------------------------------------------------------------------

    def manifest(self) -> dict[str, dict]:
        """Entries keyed by series id ('bars/binance/BTC/1h'); rebuilt from files if damaged."""
        path = self.root / MANIFEST
        if not path.exists():
            return {}
        try:
            entries = json.loads(path.read_text())["entries"]
            if not isinstance(entries, dict):
                raise TypeError("entries is not an object")
            return entries
        except (ValueError, KeyError, TypeError) as exc:
            if self.read_only:
                log.warning("manifest %s is damaged (%s)", path, exc)
                return {}
            with self.lock():
                self.quarantine(path, f"damaged manifest ({exc}); rebuilt from the stored files")
                return self._update_manifest(self._stored_series(), source="unknown", market_id=None)

    def heartbeat(self, name: str, info: Mapping[str, object]) -> None:
        """Write collector `name`'s heartbeat to <root>/collectors/<name>.json, atomically. No lock: each
        collector writes only its own file, and a refresh holding the lock must not stall it."""
        if self.read_only:
            raise StoreError(f"the store at {self.root} is read-only here; run collectors from the command line")
        if not COLLECTOR_NAME.fullmatch(name):
            raise StoreError(f"collector name {name!r}: use letters, digits, '.', '_' and '-'")
        payload = json.dumps(dict(info), indent=1, sort_keys=True)
        _atomic_write_bytes(self.root / COLLECTORS / f"{name}.json", lambda tmp: tmp.write_text(payload))

    def heartbeats(self) -> dict[str, dict]:
        """Every collector's last heartbeat, by name; an unreadable file is skipped (logged)."""
        beats: dict[str, dict] = {}
        for path in sorted((self.root / COLLECTORS).glob("*.json")):
            try:
                beats[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                log.warning("skipping heartbeat %s: %s", path, exc)
        return beats

    def version(self) -> str:
        """Changes whenever the store changes: a cache key for readers."""
        path = self.root / MANIFEST
        return f"{path.stat().st_mtime_ns}" if path.exists() else "empty"

    def status(self) -> list[dict]:
        """One manifest entry per cached series, sorted by dataset, exchange, symbol, timeframe."""
        return [self.manifest()[key] for key in sorted(self.manifest())]

    def last_ts(self, dataset: str, exchange: str, symbol: str, timeframe: str) -> datetime | None:
        """The newest stored ts of one series (from the manifest), or None if nothing is stored."""
        entry = self.manifest().get(SeriesKey(dataset, exchange, symbol, timeframe).id)
        return None if entry is None or entry["last_ts"] is None else datetime.fromisoformat(entry["last_ts"])

    def _stored_series(self) -> set[SeriesKey]:
        return {
            SeriesKey(ds.name, *self._series_parts(ds, path))
            for ds in DATASETS.values()
            for path in self._files(ds, None, None, None)
        }

    def _series_parts(self, dataset: Dataset, path: Path) -> tuple[str, str, str]:
        """(exchange, symbol, timeframe) from a partition file's path."""
        parts = dict(p.split("=", 1) for p in path.relative_to(self._dataset_dir(dataset)).parts[:3])
        return parts[EXCHANGE], parts[SYMBOL], parts[TIMEFRAME]

    def _update_manifest(self, keys: set[SeriesKey], source: str, market_id: str | None) -> dict[str, dict]:
        """Recompute the entries of `keys` from the stored files (caller holds the lock)."""
        path = self.root / MANIFEST
        try:
            entries = json.loads(path.read_text())["entries"] if path.exists() else {}
        except (ValueError, KeyError):
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
        payload = json.dumps({"entries": entries}, indent=1, sort_keys=True)
        _atomic_write_bytes(path, lambda tmp: tmp.write_text(payload))
        return entries
