"""lib/aggregate.py: hand-computed bars from trades and liquidation events, each Binance trade layout,
streaming == Dask LocalCluster == an eager reference on a few hundred thousand rows, and clear errors."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from distributed import Client, LocalCluster
from polars.testing import assert_frame_equal

from lib import aggregate as agg
from lib.aggregate import AggregateError, StoredEvents, aggregate, collect_bars, trade_bars, trade_file
from lib.cli import main
from lib.schema import BARS, EVENT, EXCHANGE, LIQUIDATION_TOTALS, LIQUIDATIONS, SYMBOL, TS, conform
from lib.store import Store

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)
SUMS_REL_TOL = 1e-12  # float sums added in another order; everything else must match exactly


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- hand-computed bars ---------------------------------------------------------------------------

# id, seconds after 10:00, price, qty, is_buyer_maker (False: the buyer was the taker), in shuffled order
FIVE_TRADES = [
    (4, 59.999, 101.0, 0.5, True),
    (2, 30.0, 105.0, 2.0, True),
    (1, 0.0, 100.0, 1.0, False),
    (5, 60.0, 102.0, 3.0, False),
    (3, 30.0, 95.0, 1.0, False),
]
FIVE_TRADES_1M = [
    # ts, open, high, low, close, volume, quote_volume, trades, taker_buy_volume
    (at(0), 100.0, 105.0, 95.0, 101.0, 4.5, 100 + 210 + 95 + 50.5, 4, 2.0),
    (at(60), 102.0, 102.0, 102.0, 102.0, 3.0, 306.0, 1, 3.0),
]
SAME_MILLISECOND = [(8, 0.0, 11.0, 1.0, False), (7, 0.0, 10.0, 1.0, False)]
SAME_MILLISECOND_1M = [(at(0), 10.0, 11.0, 10.0, 11.0, 2.0, 21.0, 2, 2.0)]
BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_volume")


def trades_frame(rows: list[tuple], exchange: str = "binance", symbol: str = "BTC") -> pl.DataFrame:
    """Normalised trades (lib.aggregate's trade schema) from (id, seconds, price, qty, is_buyer_maker) rows."""
    return pl.DataFrame(
        [(exchange, symbol, at(s), i, p, q, p * q, 1, m) for i, s, p, q, m in rows],
        schema={EXCHANGE: pl.String, SYMBOL: pl.String, TS: pl.Datetime("us", "UTC"), "id": pl.Int64,
                "price": pl.Float64, "qty": pl.Float64, "quote_qty": pl.Float64, "trades": pl.Int64,
                "is_buyer_maker": pl.Boolean},
        orient="row",
    )  # fmt: skip


def expected_bars(rows: list[tuple], timeframe: str, exchange: str = "binance", symbol: str = "BTC") -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=list(BAR_COLUMNS), orient="row")
    return conform(frame.with_columns(exchange=pl.lit(exchange), symbol=pl.lit(symbol), timeframe=pl.lit(timeframe),
                                      volume_reliable=pl.lit(True)), BARS)


@pytest.mark.parametrize(
    "name, trades, bars",
    [
        ("shuffled", FIVE_TRADES, FIVE_TRADES_1M),
        ("same_millisecond", SAME_MILLISECOND, SAME_MILLISECOND_1M),
        ("single_trade", FIVE_TRADES[3:4], FIVE_TRADES_1M[1:]),
    ],
)
def test_trades_become_one_bar_per_minute_with_open_and_close_by_time_then_id(
    name: str, trades: list[tuple], bars: list[tuple]
) -> None:
    made = trade_bars(trades_frame(trades).lazy(), "1m").collect()
    assert_frame_equal(conform(made, BARS).sort(TS), expected_bars(bars, "1m"))


def test_a_coarser_timeframe_is_the_sum_of_its_minutes() -> None:
    made = conform(trade_bars(trades_frame(FIVE_TRADES).lazy(), "1h").collect(), BARS)
    assert made.select(BAR_COLUMNS).rows() == [(at(0), 100.0, 105.0, 95.0, 102.0, 7.5, 761.5, 5, 5.0)]


# --- each Binance layout on disk --------------------------------------------------------------------


def trades_csv_lines(header: bool, micros: bool, spot_flags: bool) -> list[str]:
    """FIVE_TRADES as Binance's trades CSV: id, price, qty, quote_qty, time, is_buyer_maker[, is_best_match]."""
    scale = 1000 if micros else 1
    flags = (lambda m: f"{m},True") if spot_flags else (lambda m: str(m).lower())
    rows = [f"{i},{p},{q},{p * q},{ms(at(s)) * scale},{flags(m)}" for i, s, p, q, m in FIVE_TRADES]
    return (["id,price,qty,quote_qty,time,is_buyer_maker"] if header else []) + rows


def agg_trades_csv_lines() -> list[str]:
    """FIVE_TRADES as spot aggTrades (no header), each row standing for two trades (first_trade_id..last)."""
    return [f"{i},{p},{q},{10 * i},{10 * i + 1},{ms(at(s))},{m},True" for i, s, p, q, m in FIVE_TRADES]


def write(path: Path, lines: list[str], zipped: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    if zipped:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(path.with_suffix(".csv").name, text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    "relpath, lines, zipped, exchange, trades_per_row",
    [
        ("spot/daily/trades/BTCUSDT/BTCUSDT-trades-2025-03-01.zip", trades_csv_lines(False, True, True), True,
         "binance", 1),
        ("futures/um/daily/trades/BTCUSDT/BTCUSDT-trades-2025-03-01.csv", trades_csv_lines(True, False, False), False,
         "binanceusdm", 1),
        ("spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2025-03-01.zip", agg_trades_csv_lines(), True, "binance", 2),
        ("loose/btc_trades.csv", trades_csv_lines(True, False, False), False, "binance", 1),
    ],
)  # fmt: skip
def test_each_binance_trade_layout_gives_the_hand_computed_bars(
    tmp_path: Path, relpath: str, lines: list[str], zipped: bool, exchange: str, trades_per_row: int
) -> None:
    source = trade_file(write(tmp_path / relpath, lines, zipped))
    expected = expected_bars(FIVE_TRADES_1M, "1m", exchange).with_columns(pl.col("trades") * trades_per_row)
    assert_frame_equal(collect_bars("trades", [source], "1m"), expected, check_exact=False, rel_tol=SUMS_REL_TOL)


def test_a_parquet_file_with_binance_column_names_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "ETHUSDT-trades-2025-03-01.parquet"
    pl.read_csv(write(tmp_path / "t.csv", trades_csv_lines(True, False, False))).write_parquet(path)
    made = collect_bars("trades", [trade_file(path)], "1m")
    assert_frame_equal(made, expected_bars(FIVE_TRADES_1M, "1m", symbol="ETH"), check_exact=False, rel_tol=SUMS_REL_TOL)


# --- liquidation events -> liquidation_totals -------------------------------------------------------

# seconds after 10:00, side of the liquidated position, price, qty, notional_usd (None: price x qty)
EVENTS = [
    (300, "long", 100.0, 2.0, 200.0),
    (600, "short", 50.0, 1.0, 50.0),  # a BUY forced order: it closed a short
    (3599, "long", 10.0, 3.0, None),
    (3600, "short", 5.0, 1.0, 5.0),
]
EVENTS_1H = [(at(0), 230.0, 50.0), (at(3600), 0.0, 5.0)]


def events_frame(rows: list[tuple], symbol: str = "BTC") -> pl.DataFrame:
    frame = pl.DataFrame([(at(s), side, p, q, usd) for s, side, p, q, usd in rows],
                         schema=[TS, "side", "price", "qty", "notional_usd"], orient="row")
    return conform(frame.with_columns(exchange=pl.lit("bybit"), symbol=pl.lit(symbol), timeframe=pl.lit(EVENT)),
                   LIQUIDATIONS)


def test_liquidation_events_become_long_and_short_usd_per_bar_by_the_liquidated_positions_side(data_dir: Path) -> None:
    store = Store(data_dir)
    store.write(LIQUIDATIONS, events_frame(EVENTS), source="test")
    made = collect_bars("liquidations", [StoredEvents(store)], "1h")
    expected = pl.DataFrame(EVENTS_1H, schema=[TS, "long_usd", "short_usd"], orient="row").with_columns(
        exchange=pl.lit("bybit"), symbol=pl.lit("BTC"), timeframe=pl.lit("1h"))
    assert_frame_equal(made, conform(expected, LIQUIDATION_TOTALS))


# --- big input: streaming == Dask == eager reference --------------------------------------------------

DAY = timedelta(days=1)
BIG_START = datetime(2024, 12, 30, tzinfo=timezone.utc)  # spans a year boundary: two store partitions
BIG_DAYS = 3
TRADES_PER_DAY = 50_000


def random_trades(rng: np.random.Generator, n: int, start: datetime, days: int, first_id: int) -> pl.DataFrame:
    """n trades over `days` days from `start`, every 50 ms at most (so many share a millisecond)."""
    ticks = np.sort(rng.integers(0, days * 86_400_000 // 50, n)) * 50 + ms(start)
    price = 100 * np.exp(np.cumsum(rng.normal(0, 1e-4, n)))
    qty = rng.exponential(0.5, n).round(6)
    return pl.DataFrame({"id": np.arange(first_id, first_id + n), "price": price.round(2), "qty": qty,
                         "time": ticks, "is_buyer_maker": rng.random(n) < 0.5})


def write_big_inputs(folder: Path) -> tuple[list[Path], pl.DataFrame]:
    """BTC: one spot trades zip per day (no header; the last day in µs). ETH: one futures aggTrades CSV
    (with header) over all days. Returns the files and every trade in the normalised schema."""
    rng = np.random.default_rng(8)
    paths, normalised = [], []
    for day in range(BIG_DAYS):
        start = BIG_START + day * DAY
        trades = random_trades(rng, TRADES_PER_DAY, start, 1, day * TRADES_PER_DAY).with_columns(
            quote_qty=pl.col("price") * pl.col("qty"), trades=pl.lit(1, pl.Int64))
        micros = day == BIG_DAYS - 1
        csv = trades.select("id", "price", "qty", "quote_qty", pl.col("time") * (1000 if micros else 1),
                            "is_buyer_maker", is_best_match=pl.lit(True)).write_csv(include_header=False)
        paths.append(write(folder / "spot/daily/trades/BTCUSDT" / f"BTCUSDT-trades-{start:%Y-%m-%d}.zip",
                           csv.splitlines(), zipped=True))
        normalised.append(trades.with_columns(exchange=pl.lit("binance"), symbol=pl.lit("BTC")))
    agg_rows = random_trades(rng, BIG_DAYS * TRADES_PER_DAY * 2, BIG_START, BIG_DAYS, 0).with_columns(
        first_trade_id=pl.col("id") * 3, last_trade_id=pl.col("id") * 3 + pl.col("id") % 3)
    path = folder / "futures/um/daily/aggTrades/ETHUSDT/ETHUSDT-aggTrades-several-days.csv"
    path.parent.mkdir(parents=True)
    agg_rows.rename({"id": "agg_trade_id", "qty": "quantity", "time": "transact_time"}).select(
        "agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker"
    ).write_csv(path)
    paths.append(path)
    normalised.append(agg_rows.select(
        "id", "price", "qty", "time", "is_buyer_maker", quote_qty=pl.col("price") * pl.col("qty"),
        trades=pl.col("last_trade_id") - pl.col("first_trade_id") + 1, exchange=pl.lit("binanceusdm"),
        symbol=pl.lit("ETH"),
    ))  # fmt: skip
    trades = pl.concat(normalised, how="diagonal").with_columns(
        pl.from_epoch("time", time_unit="ms").dt.replace_time_zone("UTC").dt.cast_time_unit("us").alias(TS))
    return paths, trades


def write_big_events(store: Store) -> None:
    rng = np.random.default_rng(9)
    for symbol in ("BTC", "ETH"):
        n = 20_000
        ticks = np.sort(rng.integers(0, BIG_DAYS * 86_400_000, n)) + ms(BIG_START)
        price, qty = rng.uniform(90, 110, n).round(2), rng.exponential(0.5, n).round(4)
        store.write(LIQUIDATIONS, pl.DataFrame({
            EXCHANGE: "bybit", SYMBOL: symbol, "timeframe": EVENT, "price": price, "qty": qty,
            TS: pl.from_epoch(pl.Series(ticks), time_unit="ms"), "side": np.where(rng.random(n) < 0.6, "long", "short"),
            "notional_usd": pl.Series(price * qty).scatter(np.arange(0, n, 7), None),  # some missing: price x qty
        }), source="test")  # fmt: skip


def reference_trade_bars(trades: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """The obvious eager way: sort every trade by time and id, then first and last per bar."""
    bars = trades.sort(TS, "id").group_by(EXCHANGE, SYMBOL, pl.col(TS).dt.truncate(timeframe), maintain_order=True).agg(
        open=pl.col("price").first(), high=pl.col("price").max(), low=pl.col("price").min(),
        close=pl.col("price").last(), volume=pl.col("qty").sum(), quote_volume=pl.col("quote_qty").sum(),
        trades=pl.col("trades").sum(), taker_buy_volume=(pl.col("qty") * ~pl.col("is_buyer_maker")).sum(),
    )  # fmt: skip
    return conform(bars.with_columns(timeframe=pl.lit(timeframe), volume_reliable=pl.lit(True)), BARS)


def reference_liquidation_totals(events: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """The obvious eager way: notional per event, pivoted by side, summed per bar."""
    usd = events.with_columns(usd=pl.col("notional_usd").fill_null(pl.col("price") * pl.col("qty")))
    totals = usd.with_columns(pl.col(TS).dt.truncate(timeframe)).pivot(
        "side", index=[EXCHANGE, SYMBOL, TS], values="usd", aggregate_function="sum"
    ).fill_null(0.0)
    return conform(totals.rename({"long": "long_usd", "short": "short_usd"}).with_columns(timeframe=pl.lit(timeframe)),
                   LIQUIDATION_TOTALS)


def sorted_bars(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(EXCHANGE, SYMBOL, TS)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], pl.DataFrame, Store]:
    folder = tmp_path_factory.mktemp("big")
    paths, trades = write_big_inputs(folder)
    store = Store(folder / "data")
    write_big_events(store)
    return paths, trades, store


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two worker processes on loopback: tasks and their frames really go through pickling."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as dask:  # fmt: skip
        yield dask


@pytest.mark.parametrize("timeframe", ["1m", "1w"])
def test_big_trades_streamed_on_dask_and_eagerly_give_the_same_bars(
    big: tuple[list[Path], pl.DataFrame, Store], client: Client, timeframe: str
) -> None:
    paths, trades, _ = big
    sources = [trade_file(path) for path in paths]
    streamed = aggregate("trades", sources, timeframe)
    distributed = aggregate("trades", sources, timeframe, client)
    assert trades.height == 450_000 and streamed[SYMBOL].unique().sort().to_list() == ["BTC", "ETH"]
    assert_frame_equal(sorted_bars(distributed), streamed, check_exact=False, rel_tol=SUMS_REL_TOL)
    assert_frame_equal(sorted_bars(reference_trade_bars(trades, timeframe)), streamed, check_exact=False,
                       rel_tol=SUMS_REL_TOL)


def test_big_liquidations_streamed_on_dask_and_eagerly_give_the_same_totals(
    big: tuple[list[Path], pl.DataFrame, Store], client: Client
) -> None:
    _, _, store = big
    sources = [StoredEvents(store)]
    streamed = aggregate("liquidations", sources, "1h")
    assert_frame_equal(sorted_bars(aggregate("liquidations", sources, "1h", client)), streamed, check_exact=False,
                       rel_tol=SUMS_REL_TOL)
    reference = reference_liquidation_totals(store.scan(LIQUIDATIONS).collect(), "1h")
    assert_frame_equal(sorted_bars(reference), streamed, check_exact=False, rel_tol=SUMS_REL_TOL)


def test_a_task_never_splits_a_bar_longer_than_a_day() -> None:
    assert [agg.partition_every(tf) for tf in ("1m", "1h", "1d", "1w")] == ["1d", "1d", "1d", "1w"]


# --- errors ------------------------------------------------------------------------------------------


def test_a_malformed_file_is_refused_naming_it_on_dask_too(tmp_path: Path, client: Client) -> None:
    lines = trades_csv_lines(True, False, False)
    bad = write(tmp_path / "BTCUSDT-trades-2025-03-01.csv", [*lines[:3], "9,abc,1,1,1740823200000,true"])
    with pytest.raises(AggregateError, match=r"BTCUSDT-trades-2025-03-01.csv: could not parse `abc`"):
        aggregate("trades", [trade_file(bad)], "1m")
    with pytest.raises(AggregateError, match=r"BTCUSDT-trades-2025-03-01.csv"):
        aggregate("trades", [trade_file(bad)], "1m", client)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("BTCUSDT-trades-2025-03-01.zip", b"PK\x03\x04 truncated", "not a complete zip archive"),
        ("btc.csv", b"1,100,1,100,1740823200000,true\n", "not a Binance trades or aggTrades file"),
        ("BTCUSDT-trades-2025-03-01.csv", b"1,100,1,100,1740823200000,true,true,extra\n", "8 columns"),
        ("trades-2025-03-01.csv", b"id,price,qty,quote_qty,time,is_buyer_maker\n", "cannot tell the symbol"),
    ],
)
def test_a_file_that_is_not_trades_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    code = main(["--data-dir", str(tmp_path / "data"), "aggregate", "trades", "--input", str(tmp_path / name)])
    assert code == 1 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["trades", "--input", "nowhere/BTCUSDT-trades-2025-03-01.csv"], "no such input file"),
        (["trades"], "trades need --input"),
        (["liquidations", "--input", "x.csv"], "--input is for trades"),
        (["liquidations"], "nothing to aggregate"),
        (["liquidations", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
    ],
)
def test_the_command_says_what_is_missing_or_unreachable(
    data_dir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setattr(agg, "CONNECT_TIMEOUT_S", 0.5)
    assert main(["--data-dir", str(data_dir), "aggregate", *args]) == 1
    assert message in capsys.readouterr().err


def test_the_command_stores_the_bars_once_and_a_rerun_adds_nothing(data_dir: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path / "spot/BTCUSDT-trades-2025-03-01.csv", trades_csv_lines(False, False, True))
    argv = ["--data-dir", str(data_dir), "aggregate", "trades", "--timeframe", "1m", "--input", str(path)]
    assert main(argv) == 0 and main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(", 0 new")
    stored = Store(data_dir).scan(BARS).collect()
    assert_frame_equal(stored, expected_bars(FIVE_TRADES_1M, "1m"), check_exact=False, rel_tol=SUMS_REL_TOL)
