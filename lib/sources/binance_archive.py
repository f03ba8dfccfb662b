"""Binance's public data archive (data.binance.vision), read from local files.

An archive file is named `<PAIR>-<interval | metrics | bookDepth>-<YYYY-MM[-DD]>.zip`, holds one CSV
and sits in the archive's own tree: `spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip`,
`futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-05.zip`. Beside it Binance publishes
`<name>.zip.CHECKSUM` ("<sha256>  <name>.zip"), verified here before anything is read.

Klines and metrics are parsed by `files.read_import` (layouts binance_klines and open_interest: ms or
µs timestamps per row, header or none); bookDepth is reshaped here into the depth dataset.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import polars as pl

from lib.schema import DEPTH, DEPTH_BANDS, EXCHANGE, SNAPSHOT, SYMBOL, TIMEFRAME, TS, SchemaError, conform, depth_column
from lib.sources.files import ImportFormatError, Imported, base_asset, base_from_name, epoch_to_utc, read_import

ARCHIVE_NAME = re.compile(
    r"^(?P<pair>[A-Z0-9]+)-(?P<kind>metrics|bookDepth|\d+(?:mo|[smhdwM]))-(?P<period>\d{4}-\d{2}(?:-\d{2})?)"
    r"\.(?P<ext>zip|csv)$"
)
KLINES, METRICS, BOOK_DEPTH = "klines", "metrics", "bookDepth"
ARCHIVE_KINDS: tuple[str, ...] = (KLINES, METRICS, BOOK_DEPTH)
IMPORT_KINDS: dict[str, str] = {KLINES: "bars", METRICS: "open_interest", BOOK_DEPTH: "depth"}

# Market -> its folder in the archive tree and the exchange its rows are stored under.
MARKET_DIRS: dict[str, str] = {"spot": "spot", "um": "futures/um"}
MARKET_EXCHANGES: dict[str, str] = {"spot": "binance", "um": "binanceusdm"}
FUTURES_ONLY: frozenset[str] = frozenset({METRICS, BOOK_DEPTH})
MONTH_PERIOD = "YYYY-MM"  # a monthly file's period; a daily file's is YYYY-MM-DD

METRICS_TIMEFRAME = "5m"  # Binance aggregates metrics every 5 minutes
HEADERS: dict[str, tuple[str, ...]] = {
    METRICS: (
        "create_time", "symbol", "sum_open_interest", "sum_open_interest_value", "count_toptrader_long_short_ratio",
        "sum_toptrader_long_short_ratio", "count_long_short_ratio", "sum_taker_long_short_vol_ratio",
    ),
    BOOK_DEPTH: ("timestamp", "percentage", "depth", "notional"),
}  # fmt: skip
BOOK_DEPTH_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# bookDepth's percentage is signed: -1 is the bids down to 1 % below mid, +1 the asks up to 1 % above.
SIDE_SIGNS: tuple[tuple[str, int], ...] = (("bid", -1), ("ask", 1))

CHECKSUM_SUFFIX = ".CHECKSUM"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
HASH_CHUNK = 1 << 20


class ArchiveError(ImportFormatError):
    """An archive file is refused (bad checksum, damaged zip, unsupported market); nothing is stored from it."""


@dataclass(frozen=True)
class ArchiveName:
    """What a Binance archive file name says: pair ('BTCUSDT'), kind, interval for klines, period."""

    pair: str
    kind: str
    interval: str | None
    period: str  # 'YYYY-MM' (monthly file) or 'YYYY-MM-DD' (daily file)


def parse_name(name: str) -> ArchiveName | None:
    """'BTCUSDT-1h-2024-01.zip' -> ArchiveName('BTCUSDT', 'klines', '1h', '2024-01'); None if not an archive name."""
    match = ARCHIVE_NAME.match(name)
    if match is None:
        return None
    token = match["kind"]
    kind = token if token in (METRICS, BOOK_DEPTH) else KLINES
    return ArchiveName(match["pair"], kind, token if kind == KLINES else None, match["period"])


def archive_relpath(market: str, kind: str, pair: str, interval: str | None, period: str) -> str:
    """A file's path below the archive root, the same below https://data.binance.vision/data/:
    ('spot', 'klines', 'BTCUSDT', '1h', '2024-01') -> 'spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip'."""
    frequency = "monthly" if len(period) == len(MONTH_PERIOD) else "daily"
    token, leaf = (interval, f"/{interval}") if kind == KLINES else (kind, "")
    return f"{MARKET_DIRS[market]}/{frequency}/{kind}/{pair}{leaf}/{pair}-{token}-{period}.zip"


def is_archive(path: Path) -> bool:
    """True for a zip, or a file named as Binance names its archive files: import it with read_archive."""
    return path.suffix.lower() == ".zip" or parse_name(path.name) is not None


# --- checksums -------------------------------------------------------------------------------------


def checksum_path(path: Path) -> Path:
    """Where Binance puts the checksum of `path`: '<name>.zip.CHECKSUM' beside it."""
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, checksum_text: str, name: str) -> None:
    """Raise ArchiveError unless `path` hashes to the SHA-256 that `checksum_text` gives for `name`."""
    fields = checksum_text.split()
    expected = fields[0].lower() if fields else ""
    if not SHA256_HEX.match(expected) or (len(fields) > 1 and fields[1].lstrip("*") != name):
        raise ArchiveError(f"{name}: its checksum file does not read '<sha256>  {name}' (got {checksum_text[:100]!r})")
    actual = sha256_file(path)
    if actual != expected:
        raise ArchiveError(
            f"{name}: checksum mismatch (sha256 {actual[:12]}…, its .CHECKSUM says {expected[:12]}…): "
            "refused, nothing stored"
        )


def _checked(path: Path) -> str:
    """Verify a zip against the .CHECKSUM beside it, if there is one; a note on what was checked."""
    beside = checksum_path(path)
    if not beside.exists():
        return f"no {beside.name} beside it: checksum not verified"
    verify_checksum(path, beside.read_text(), path.name)
    return f"sha256 matches {beside.name}"


# --- the CSV inside ---------------------------------------------------------------------------------


def _zip_member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    """The one CSV inside an archive file."""
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) != 1 or not members[0].filename.lower().endswith(".csv"):
        listed = ", ".join(m.filename for m in members) or "nothing"
        raise ArchiveError(f"{name} should hold one CSV file; it holds {listed}")
    return members[0]


def _copy_with_header(source: IO[bytes], target: Path, header: tuple[str, ...] | None) -> None:
    """Copy a CSV stream to `target`, writing `header` first when its first line is not that header."""
    first = source.readline()
    first_field = first.split(b",", 1)[0].strip().lstrip(b"\xef\xbb\xbf").decode(errors="replace")
    with target.open("wb") as out:
        if header is not None and first_field != header[0]:
            out.write((",".join(header) + "\n").encode())
        out.write(first)
        shutil.copyfileobj(source, out)


def readable_csv(path: Path, kind: str | None, folder: Path) -> Path:
    """A CSV file that read_import (or read_book_depth) can read: the CSV inside a zip extracted into
    `folder` under the archive's own name, with the header added to a headerless metrics or bookDepth
    file. Raises ArchiveError for a truncated or damaged zip."""
    target = folder / f"{path.stem}.csv"
    header = HEADERS.get(kind or "")
    try:
        if path.suffix.lower() != ".zip":
            if header is None:
                return path
            with path.open("rb") as source:
                _copy_with_header(source, target, header)
            return target
        with zipfile.ZipFile(path) as archive, archive.open(_zip_member(archive, path.name)) as source:
            _copy_with_header(source, target, header)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ArchiveError(f"{path.name} is not a complete zip archive ({exc}): refused, nothing stored") from exc
    except OSError as exc:
        raise ArchiveError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    return target


# --- where the rows belong --------------------------------------------------------------------------


def market_of(path: Path, kind: str) -> tuple[str, tuple[str, ...]]:
    """('spot' or 'um', notes) from the nearest 'spot' or 'futures/<x>' folder above the file; without
    one, klines are taken as spot and metrics/bookDepth (USD-M only) as um."""
    parents = path.resolve().parent.parts
    for index in range(len(parents) - 1, -1, -1):
        if parents[index] == "spot":
            market = "spot"
            break
        if parents[index] == "futures" and index + 1 < len(parents):
            market = parents[index + 1]
            break
    else:
        market = "um" if kind in FUTURES_ONLY else "spot"
        return market, (f"no spot/ or futures/um/ folder above the file: taken as {market} (--exchange overrides)",)
    if market not in MARKET_EXCHANGES:
        raise ArchiveError(f"{path.name}: futures/{market} archives are not supported (spot and futures/um are)")
    if kind in FUTURES_ONLY and market == "spot":
        raise ArchiveError(f"{path.name}: Binance publishes {kind} for USD-M futures only (futures/um)")
    return market, ()


# --- bookDepth --------------------------------------------------------------------------------------


def _utc_times(values: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """bookDepth's timestamp ('2024-01-05 00:00:08', UTC) or an epoch number -> Datetime('us', 'UTC')."""
    if dtype.is_numeric():
        return epoch_to_utc(values)
    text = values.str.strip_chars()
    return text.str.to_datetime(BOOK_DEPTH_TIME_FORMAT, time_unit="us", time_zone="UTC", strict=False)


def depth_from_book_depth(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows of (ts, percentage, notional) -> one row per ts with the bid and ask USD within each depth band.

    bid_usd within b % = notional at percentage -b, ask = notional at +b (cumulative USD from mid);
    a band the file does not have (0.5 %) stays null, as do mid and spread_bps (not in the file)."""
    return rows.group_by(TS, maintain_order=True).agg(
        pl.col("notional").filter(pl.col("percentage") == sign * band).last().alias(depth_column(side, band))
        for band in DEPTH_BANDS
        for side, sign in SIDE_SIGNS
    )


def read_book_depth(csv: Path, exchange: str, symbol: str) -> pl.DataFrame:
    """A bookDepth CSV (with header) as canonical depth rows of `symbol` on `exchange`, sorted by ts."""
    try:
        raw = pl.read_csv(csv, schema_overrides={"percentage": pl.Float64, "notional": pl.Float64})
    except pl.exceptions.PolarsError as exc:
        raise ArchiveError(f"cannot read {csv.name}: {str(exc).strip().splitlines()[0]}") from exc
    missing = [c for c in HEADERS[BOOK_DEPTH] if c not in raw.columns]
    if missing:
        have = ", ".join(raw.columns)
        raise ArchiveError(f"{csv.name}: bookDepth column(s) {', '.join(missing)} missing; have {have}")
    rows = raw.select(_utc_times(pl.col("timestamp"), raw.schema["timestamp"]).alias(TS), "percentage", "notional")
    if rows[TS].null_count():
        raise ArchiveError(f"{csv.name}: unparseable timestamp in data row {rows[TS].is_null().arg_true()[0] + 1}")
    depth = depth_from_book_depth(rows).with_columns(
        pl.lit(exchange).alias(EXCHANGE), pl.lit(symbol).alias(SYMBOL), pl.lit(SNAPSHOT).alias(TIMEFRAME)
    )
    try:
        return conform(depth, DEPTH).sort(TS)
    except SchemaError as exc:
        raise ArchiveError(f"{csv.name}: {exc}") from exc


# --- the import ------------------------------------------------------------------------------------


def _base(symbol: str | None, stem: str) -> str:
    """The base asset: the option ('BTCUSDT' or 'BTC'), else what the file name says."""
    base = pl.select(base_asset(pl.lit(symbol))).item() if symbol else base_from_name(stem)
    if base is None:
        raise ArchiveError(f"cannot infer the symbol from {stem!r}: pass symbol= (e.g. BTC)")
    return base


def _read_named(
    path: Path, name: ArchiveName, folder: Path, exchange: str | None, symbol: str | None, timeframe: str | None
) -> Imported:
    """Read an archive file whose name says its kind: market and exchange from the archive tree."""
    market, notes = market_of(path, name.kind)
    exchange = exchange or MARKET_EXCHANGES[market]
    csv = readable_csv(path, name.kind, folder)
    if name.kind == BOOK_DEPTH:
        return Imported(DEPTH, read_book_depth(csv, exchange, _base(symbol, path.stem)), "binance_book_depth", notes)
    default_timeframe = name.interval if name.kind == KLINES else METRICS_TIMEFRAME
    imported = read_import(csv, IMPORT_KINDS[name.kind], exchange, symbol, timeframe or default_timeframe)
    return replace(imported, notes=(*notes, *imported.notes))


def read_archive(
    path: Path,
    kind: str | None = None,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> Imported:
    """Read one Binance archive file (zip or CSV) into its canonical dataset; same options as read_import.

    klines -> bars (exchange binance for spot, binanceusdm for USD-M), metrics -> open_interest
    (open_interest = sum_open_interest, open_interest_usd = sum_open_interest_value, 5m), bookDepth ->
    depth snapshots. A zip that is not named like an archive file is unpacked and read by read_import.
    Raises ArchiveError (an ImportFormatError) with a one-line reason; a zip whose checksum does not
    match is not even opened.
    """
    path = Path(path)
    name = parse_name(path.name)
    if name is not None and kind not in (None, IMPORT_KINDS[name.kind]):
        raise ArchiveError(f"{path.name} is a Binance {name.kind} file, not {kind}")
    notes = (_checked(path),) if path.suffix.lower() == ".zip" else ()
    with tempfile.TemporaryDirectory(prefix="cascade-archive-") as folder:
        if name is None:
            imported = read_import(readable_csv(path, None, Path(folder)), kind, exchange, symbol, timeframe)
        else:
            imported = _read_named(path, name, Path(folder), exchange, symbol, timeframe)
    return replace(imported, notes=(*notes, *imported.notes))


def read_any(path: Path, kind: str | None = None, exchange: str | None = None, symbol: str | None = None,
             timeframe: str | None = None) -> Imported:
    """Any importable file: Binance archives and zips through `read_archive`, the rest through `read_import`."""
    return (read_archive if is_archive(path) else read_import)(path, kind, exchange, symbol, timeframe)
