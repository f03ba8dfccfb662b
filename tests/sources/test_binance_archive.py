"""lib.sources.binance_archive and binance_download: Binance archive files written here in the archive's
exact layout (zip of one CSV, .CHECKSUM beside it) from the real klines in ../shared/data, literal
metrics and bookDepth files, refused files, and downloads served by a fake HTTP layer."""

from __future__ import annotations

import hashlib
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lib.cli import main
from lib.schema import BARS, DEPTH, OPEN_INTEREST, conform
from lib.sources import binance_download
from lib.sources.binance_archive import ArchiveName, archive_relpath, checksum_path, parse_name, read_archive
from lib.sources.binance_download import BASE_URL, DownloadError, http_get, periods
from lib.store import Store

SPOT_BTC_1H = "ohlcv/binance_spot_BTCUSDT_1h.parquet"
KLINE_HEADER = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
MICROS_PER_MILLI = 1_000
METRICS_HEADER = (
    "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
    "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio\n"
)
TODAY = date(2026, 5, 20)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- building archive files -------------------------------------------------------------------------


def real_klines(shared_data: Path, start: str, end: str) -> pl.DataFrame:
    """The real Binance spot BTCUSDT 1h klines with start <= open time < end (epoch ms, as archived before 2025)."""
    rows = pl.read_parquet(shared_data / SPOT_BTC_1H)
    bounds = [int(utc(t).timestamp() * 1000) for t in (start, end)]
    return rows.filter(pl.col("open_time").is_between(*bounds, closed="left"))


def kline_csv(rows: pl.DataFrame, micros: bool, header: bool) -> bytes:
    """Binance's 12-column kline CSV: times in ms, or µs (spot since 2025: close_time ends in 999999);
    numbers with 8 decimals; `ignore` is 0."""
    scale = MICROS_PER_MILLI if micros else 1
    frame = rows.with_columns(
        open_time=pl.col("open_time") * scale,
        close_time=pl.col("close_time") * scale + (scale - 1),
        ignore=pl.lit(0),
    ).select(KLINE_HEADER)
    return frame.write_csv(include_header=header, float_precision=8).encode()


def write_archive(root: Path, relpath: str, csv: bytes, checksum: bool = True) -> Path:
    """`csv` zipped at root/relpath as Binance ships it (one CSV named like the zip), with its .CHECKSUM."""
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{path.stem}.csv", csv)
    if checksum:
        checksum_path(path).write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    return path


def expected_bars(rows: pl.DataFrame, exchange: str) -> pl.DataFrame:
    """The canonical bars the real kline rows should become."""
    return conform(
        rows.select(
            exchange=pl.lit(exchange), symbol=pl.lit("BTC"), timeframe=pl.lit("1h"),
            ts=pl.from_epoch("open_time", time_unit="ms").dt.replace_time_zone("UTC"),
            open="open", high="high", low="low", close="close", volume="volume",
            quote_volume="quote_volume", trades="count", taker_buy_volume="taker_buy_volume",
        ),
        BARS,
    )  # fmt: skip


def run(data_dir: Path, *args: str | Path) -> int:
    return main(["--data-dir", str(data_dir), "--quiet", *map(str, args)])


def stored(data_dir: Path, dataset: str) -> pl.DataFrame:
    return Store(data_dir).scan(dataset).sort("exchange", "symbol", "ts").collect()


# --- names and periods: tables ----------------------------------------------------------------------

RELPATHS = [
    (("spot", "klines", "BTCUSDT", "1h", "2024-01"), "spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip"),
    (("spot", "klines", "BTCUSDT", "1m", "2024-01-05"), "spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip"),
    (("um", "klines", "ETHUSDT", "5m", "2024-01-05"), "futures/um/daily/klines/ETHUSDT/5m/ETHUSDT-5m-2024-01-05.zip"),
    (("um", "metrics", "BTCUSDT", None, "2024-01-05"),
     "futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-05.zip"),
    (("um", "bookDepth", "SOLUSDT", None, "2024-01-05"),
     "futures/um/daily/bookDepth/SOLUSDT/SOLUSDT-bookDepth-2024-01-05.zip"),
]  # fmt: skip


@pytest.mark.parametrize(("parts", "relpath"), RELPATHS)
def test_archive_paths_follow_binance_layout_and_parse_back(parts: tuple, relpath: str) -> None:
    market, kind, pair, interval, period = parts
    assert archive_relpath(market, kind, pair, interval, period) == relpath
    assert parse_name(Path(relpath).name) == ArchiveName(pair, kind, interval, period)


@pytest.mark.parametrize("name", ["BTCUSDT.zip", "btc_1h.csv", "BTCUSDT-1h-2024.zip", "BTCUSDT-trades-2024-01-05.zip"])
def test_other_names_are_not_archive_names(name: str) -> None:
    assert parse_name(name) is None


PERIODS = [
    ("klines", "2024-01-15", "2024-03-02", ["2024-01", "2024-02", "2024-03"]),
    ("klines", "2026-04-28", "2026-05-02", ["2026-04", "2026-05-01", "2026-05-02"]),  # current month: daily files
    ("metrics", "2024-01-30", "2024-02-01", ["2024-01-30", "2024-01-31", "2024-02-01"]),
    ("bookDepth", "2024-02-29", "2024-02-29", ["2024-02-29"]),
]


@pytest.mark.parametrize(("kind", "start", "end", "expected"), PERIODS)
def test_periods_monthly_klines_daily_otherwise(kind: str, start: str, end: str, expected: list[str]) -> None:
    assert periods(kind, date.fromisoformat(start), date.fromisoformat(end), TODAY) == expected


# --- klines from the real data ----------------------------------------------------------------------

# (path in the archive tree, first and last open time + 1 h, µs timestamps, header row, exchange)
KLINE_FILES = [
    ("spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip", "2024-01-01", "2024-02-01", False, False, "binance"),
    ("spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2025-01.zip", "2025-01-01", "2025-02-01", True, False, "binance"),
    ("spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2025-03-09.zip", "2025-03-09", "2025-03-10", True, True, "binance"),
    # USD-M layout (header row, ms); the rows are the real spot klines, the routing is what is tested
    ("futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-03-10.zip", "2024-03-10", "2024-03-11", False, True,
     "binanceusdm"),
    ("BTCUSDT-1h-2024-02.csv", "2024-02-01", "2024-03-01", False, False, "binance"),  # unzipped, no tree: spot
]  # fmt: skip


@pytest.mark.parametrize(("relpath", "start", "end", "micros", "header", "exchange"), KLINE_FILES)
def test_kline_archives_import_the_real_rows(
    tmp_path: Path, data_dir: Path, shared_data: Path,
    relpath: str, start: str, end: str, micros: bool, header: bool, exchange: str,
) -> None:  # fmt: skip
    rows = real_klines(shared_data, start, end)
    csv = kline_csv(rows, micros, header)
    if relpath.endswith(".zip"):
        path = write_archive(tmp_path / "data.binance.vision", relpath, csv)
    else:
        path = tmp_path / relpath
        path.write_bytes(csv)
    assert run(data_dir, "import", path) == 0
    assert_frame_equal(stored(data_dir, "bars"), expected_bars(rows, exchange))


def test_notes_say_what_was_checked_and_assumed(tmp_path: Path, shared_data: Path) -> None:
    rows = real_klines(shared_data, "2025-01-01", "2025-01-02")
    verified = write_archive(tmp_path / "a" / "spot", "BTCUSDT-1h-2025-01-01.zip", kline_csv(rows, True, False))
    loose = write_archive(tmp_path / "b", "BTCUSDT-1h-2025-01-01.zip", kline_csv(rows, True, False), checksum=False)
    assert read_archive(verified).notes[:2] == (
        "sha256 matches BTCUSDT-1h-2025-01-01.zip.CHECKSUM", "timestamps were epoch µs",
    )  # fmt: skip
    assert read_archive(loose).notes[:2] == (
        "no BTCUSDT-1h-2025-01-01.zip.CHECKSUM beside it: checksum not verified",
        "no spot/ or futures/um/ folder above the file: taken as spot (--exchange overrides)",
    )


# --- refused files ----------------------------------------------------------------------------------


def bad_checksum(path: Path) -> None:
    checksum_path(path).write_text(f"{hashlib.sha256(b'other bytes').hexdigest()}  {path.name}\n")


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    checksum_path(path).unlink()


def truncated_with_checksum(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def two_members(path: Path) -> None:
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("README.txt", "extra")
    checksum_path(path).unlink()


def unreadable_time(path: Path) -> None:
    write_archive(path.parent, path.name, b"timestamp,percentage,depth,notional\nyesterday noon,-1,1.5,90000.0\n")


REFUSED = [
    ("spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip", bad_checksum, "checksum mismatch"),
    ("spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip", truncated, "is not a complete zip archive"),
    ("spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip", truncated_with_checksum, "checksum mismatch"),
    ("spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip", two_members, "should hold one CSV file"),
    ("futures/cm/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip", None, "futures/cm archives are not supported"),
    ("spot/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-05.zip", None, "for USD-M futures only"),
    ("futures/um/daily/bookDepth/BTCUSDT/BTCUSDT-bookDepth-2024-01-05.zip", unreadable_time,
     "unparseable timestamp in data row 1"),
]


@pytest.mark.parametrize(("relpath", "damage", "message"), REFUSED)
def test_refused_files_fail_with_a_clear_line_and_store_nothing(
    tmp_path: Path, data_dir: Path, shared_data: Path, capsys, relpath: str, damage, message: str
) -> None:
    rows = real_klines(shared_data, "2024-01-01", "2024-02-01")
    path = write_archive(tmp_path, relpath, kline_csv(rows, False, False))
    if damage:
        damage(path)
    assert run(data_dir, "import", path) == 1
    err = capsys.readouterr().err
    assert f"failed  {path}: " in err and message in err and "Traceback" not in err
    assert Store(data_dir).status() == []


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path, data_dir: Path, shared_data: Path, capsys) -> None:
    months = {"2024-01": ("2024-01-01", "2024-02-01"), "2024-02": ("2024-02-01", "2024-03-01"),
              "2024-03": ("2024-03-01", "2024-04-01")}  # fmt: skip
    paths = {
        month: write_archive(tmp_path, f"spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-{month}.zip",
                             kline_csv(real_klines(shared_data, *bounds), False, False))
        for month, bounds in months.items()
    }  # fmt: skip
    bad_checksum(paths["2024-02"])
    assert run(data_dir, "import", *paths.values()) == 1
    out, err = capsys.readouterr()
    assert err.count("failed  ") == 1 and "BTCUSDT-1h-2024-02.zip: checksum mismatch" in err
    assert out.count("ok      ") == 2
    good = pl.concat([real_klines(shared_data, *months[m]) for m in ("2024-01", "2024-03")])
    assert_frame_equal(stored(data_dir, "bars"), expected_bars(good, "binance"))


# --- metrics and bookDepth: literal files, literal expected rows --------------------------------------

METRICS_ROWS = (  # not in time order, one empty value: as Binance ships them
    "2024-01-05 00:05:00,BTCUSDT,41000.123,1794000000.5,1.9,2.1,1.5,0.9\n"
    "2024-01-05 00:00:00,BTCUSDT,41000.0,1795000000.0,1.8,2.0,1.4,1.1\n"
    "2024-01-05 00:10:00,BTCUSDT,41002.5,,1.8,2.0,1.4,1.0\n"
)
EXPECTED_OPEN_INTEREST = [
    ("2024-01-05 00:00", 41000.0, 1795000000.0),
    ("2024-01-05 00:05", 41000.123, 1794000000.5),
    ("2024-01-05 00:10", 41002.5, None),
]


@pytest.mark.parametrize("header", [True, False])
def test_metrics_become_five_minute_open_interest(tmp_path: Path, data_dir: Path, header: bool) -> None:
    csv = ((METRICS_HEADER if header else "") + METRICS_ROWS).encode()
    path = write_archive(tmp_path, "futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-05.zip", csv)
    assert run(data_dir, "import", path) == 0
    expected = pl.DataFrame(
        [("binanceusdm", "BTC", "5m", utc(ts), oi, usd) for ts, oi, usd in EXPECTED_OPEN_INTEREST],
        schema=["exchange", "symbol", "timeframe", "ts", "open_interest", "open_interest_usd"], orient="row",
    )
    assert_frame_equal(stored(data_dir, "open_interest"), conform(expected, OPEN_INTEREST))


BOOK_DEPTH = (
    "timestamp,percentage,depth,notional\n"
    "2024-01-05 00:00:08,-5,500.5,21000000.25\n"
    "2024-01-05 00:00:08,-2,200.0,8500000.0\n"
    "2024-01-05 00:00:08,-1,100.0,4300000.0\n"
    "2024-01-05 00:00:08,1,90.0,3900000.0\n"
    "2024-01-05 00:00:08,2,180.0,7800000.0\n"
    "2024-01-05 00:00:08,5,450.0,19500000.0\n"
    "2024-01-05 00:00:38,-1,110.0,4700000.0\n"  # a snapshot without its ±2 % rows
    "2024-01-05 00:00:38,1,95.0,4100000.0\n"
)
# ts, bid 1 %, ask 1 %, bid 2 %, ask 2 % (USD); 0.5 %, mid and spread are not in the file
EXPECTED_DEPTH = [
    ("2024-01-05 00:00:08", 4300000.0, 3900000.0, 8500000.0, 7800000.0),
    ("2024-01-05 00:00:38", 4700000.0, 4100000.0, None, None),
]


@pytest.mark.parametrize("header", [True, False])
def test_book_depth_becomes_depth_snapshots(tmp_path: Path, data_dir: Path, header: bool) -> None:
    csv = BOOK_DEPTH if header else BOOK_DEPTH.split("\n", 1)[1]
    path = write_archive(tmp_path, "futures/um/daily/bookDepth/BTCUSDT/BTCUSDT-bookDepth-2024-01-05.zip", csv.encode())
    assert run(data_dir, "import", path) == 0
    expected = pl.DataFrame(
        [("binanceusdm", "BTC", "snapshot", utc(ts), *usd) for ts, *usd in EXPECTED_DEPTH],
        schema=["exchange", "symbol", "timeframe", "ts",
                "bid_usd_1pct", "ask_usd_1pct", "bid_usd_2pct", "ask_usd_2pct"],
        orient="row",
    )
    got = stored(data_dir, "depth")
    assert_frame_equal(got, conform(expected, DEPTH))
    assert got.select("mid", "spread_bps", "bid_usd_0p5pct", "ask_usd_0p5pct").null_count().sum_horizontal().item() == 8


# --- download through a fake HTTP layer ---------------------------------------------------------------


class FakeVision:
    """data.binance.vision answered from the files under `root`: url -> bytes, None (404) when absent.
    Records every URL asked for."""

    def __init__(self, root: Path) -> None:
        self.files = {f"{BASE_URL}/{p.relative_to(root).as_posix()}": p.read_bytes() for p in root.rglob("*.*")}
        self.requested: list[str] = []

    def __call__(self, url: str) -> bytes | None:
        self.requested.append(url)
        return self.files.get(url)


@pytest.fixture
def server_root(tmp_path: Path, shared_data: Path) -> Path:
    """January and February 2024 monthly spot klines, and metrics for 5 and 7 January (6 is missing)."""
    root = tmp_path / "server"
    for month, bounds in {"2024-01": ("2024-01-01", "2024-02-01"), "2024-02": ("2024-02-01", "2024-03-01")}.items():
        rows = real_klines(shared_data, *bounds)
        write_archive(root, archive_relpath("spot", "klines", "BTCUSDT", "1h", month), kline_csv(rows, False, False))
    for day in ("2024-01-05", "2024-01-07"):
        metrics = (METRICS_HEADER + METRICS_ROWS.replace("2024-01-05", day)).encode()
        write_archive(root, archive_relpath("um", "metrics", "BTCUSDT", None, day), metrics)
    return root


def download(data_dir: Path, out: Path, kind: str, start: str, end: str) -> int:
    return run(data_dir, "download", "binance", "--kind", kind, "--symbol", "BTC", "--start", start, "--end", end,
               "--out", out)  # fmt: skip


def test_download_verifies_imports_and_a_second_run_fetches_nothing(
    tmp_path: Path, data_dir: Path, server_root: Path, monkeypatch, capsys
) -> None:
    vision = FakeVision(server_root)
    monkeypatch.setattr(binance_download, "http_get", vision)
    out = tmp_path / "archives"
    assert download(data_dir, out, "klines", "2024-01-01", "2024-02-29") == 0
    assert len(vision.requested) == 4  # two zips, two checksums
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [
        "BTCUSDT-1h-2024-01.zip", "BTCUSDT-1h-2024-01.zip.CHECKSUM",
        "BTCUSDT-1h-2024-02.zip", "BTCUSDT-1h-2024-02.zip.CHECKSUM",
    ]  # fmt: skip
    assert Store(data_dir).status()[0]["rows"] == 31 * 24 + 29 * 24
    capsys.readouterr()
    vision.requested.clear()
    assert download(data_dir, out, "klines", "2024-01-01", "2024-02-29") == 0
    assert vision.requested == []
    assert capsys.readouterr().out.count("kept    spot/monthly/klines/BTCUSDT/1h/") == 2


def test_a_missing_day_is_reported_and_the_others_imported(
    tmp_path: Path, data_dir: Path, server_root: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(binance_download, "http_get", FakeVision(server_root))
    assert download(data_dir, tmp_path / "archives", "metrics", "2024-01-05", "2024-01-07") == 0
    out = capsys.readouterr().out
    assert "missing futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-06.zip: no file" in out
    days = stored(data_dir, "open_interest")["ts"].dt.day().unique().sort().to_list()
    assert days == [5, 7]


def test_a_download_whose_checksum_does_not_match_is_refused(
    tmp_path: Path, data_dir: Path, server_root: Path, monkeypatch, capsys
) -> None:
    bad_checksum(server_root / archive_relpath("spot", "klines", "BTCUSDT", "1h", "2024-02"))
    monkeypatch.setattr(binance_download, "http_get", FakeVision(server_root))
    out = tmp_path / "archives"
    assert download(data_dir, out, "klines", "2024-01-01", "2024-02-29") == 1
    err = capsys.readouterr().err
    assert "failed  spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02.zip: " in err
    assert "BTCUSDT-1h-2024-02.zip: checksum mismatch" in err
    assert sorted(p.name for p in out.rglob("*.zip*")) == ["BTCUSDT-1h-2024-01.zip", "BTCUSDT-1h-2024-01.zip.CHECKSUM"]
    assert Store(data_dir).status()[0]["last_ts"] == "2024-01-31T23:00:00Z"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kind", "metrics", "--market", "spot"), "for USD-M futures only"),
        (("--kind", "klines", "--start", "2023-01-01"), "no klines file for BTC from 2023-01-01"),  # all 404
    ],
)
def test_downloads_that_cannot_be_done_fail_with_one_line(
    tmp_path: Path, data_dir: Path, server_root: Path, monkeypatch, capsys, args: tuple[str, ...], message: str
) -> None:
    monkeypatch.setattr(binance_download, "http_get", FakeVision(server_root))
    base = {"--kind": "klines", "--start": "2023-01-01", "--end": "2023-02-01", "--out": str(tmp_path / "a")}
    given = {**base, **dict(zip(args[::2], args[1::2], strict=True))}
    assert run(data_dir, "download", "binance", "--symbol", "BTC", *[x for kv in given.items() for x in kv]) == 1
    assert message in capsys.readouterr().err


def test_an_unreachable_server_stops_the_download_with_one_reason(
    tmp_path: Path, data_dir: Path, monkeypatch, capsys
) -> None:
    def unreachable(url: str) -> bytes | None:
        raise DownloadError(f"GET {url}: [Errno -3] Temporary failure in name resolution (4 tries)")

    monkeypatch.setattr(binance_download, "http_get", unreachable)
    assert download(data_dir, tmp_path / "archives", "bookDepth", "2024-01-05", "2024-01-07") == 1
    err = capsys.readouterr().err
    assert err.count("Temporary failure in name resolution") == 1
    assert err.count(": not tried: see above") == 2
    assert Store(data_dir).status() == []


# --- http_get against a real HTTP server on loopback --------------------------------------------------


class Scripted(BaseHTTPRequestHandler):
    """Answers each path with its next scripted status (the last one repeats)."""

    script: dict[str, list[int]] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        statuses = self.script[self.path]
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"zip bytes" if status == 200 else b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback(monkeypatch) -> Iterator[str]:
    monkeypatch.setattr(binance_download, "BACKOFF_S", 0.0)
    Scripted.script = {"/flaky": [503, 429, 200], "/gone": [404], "/geo": [451], "/down": [500]}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_get_retries_then_answers_and_404_is_none(loopback: str) -> None:
    assert http_get(f"{loopback}/flaky") == b"zip bytes"
    assert http_get(f"{loopback}/gone") is None


@pytest.mark.parametrize(("path", "message"), [("/geo", "HTTP 451"), ("/down", "HTTP 500")])
def test_http_get_gives_up_with_the_reason(loopback: str, path: str, message: str) -> None:
    with pytest.raises(DownloadError, match=message):
        http_get(f"{loopback}{path}")
