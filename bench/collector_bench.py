"""A liquidation collector under a sustained load: the loopback server of tests/helpers_ws.py pushes
`--rate` events per second (default 200) for `--seconds` (default 600) in an exchange's own format,
to `python -m lib collect liquidations` running as its own process (as under systemd).

Events: the real hourly BTC liquidation totals of ../shared/data/liquidations split into events at
each hour's real prices (cycled, times shifted, when the run needs more). Measured: events sent,
received and stored (none lost, none doubled), the collector's resident memory over the run (peak,
and its growth from half time to the end: bounded means flat), its CPU, and what one more flush costs
into the partition the run built (the store rewrites a year's partition per flush).

    .venv/bin/python bench/collector_bench.py [--seconds 60] [--rate 200] [--exchange bybit]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import lib  # noqa: E402, F401  (before polars: lib sets the allocator polars reads once)

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from helpers_ws import (  # noqa: E402
    HOUR_MS,
    FeedServer,
    binance_messages,
    bybit_messages,
    okx_messages,
    split_aggregates,
)
from run_all import Goal, report  # noqa: E402

from lib.schema import LIQUIDATIONS  # noqa: E402
from lib.store import Store  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
AGGREGATES = SHARED / "liquidations" / "coinglass_BTC_liquidations_agg_1h.parquet"
KLINES = SHARED / "ohlcv" / "binance_usdm_BTCUSDT_1h.parquet"
BYBIT_PUSH_S = 0.5  # Bybit's allLiquidation pushes every 500 ms
OKX_DETAILS = 4  # details per OKX entry
NAME = "bench"
SAMPLE_S = 1.0
START_TIMEOUT_S = 180.0  # the collector imports ccxt.pro: slow on a busy machine
DRAIN_TIMEOUT_S = 60.0
EXTRA_FLUSH_ROWS = 1_000
PAGE_SIZE = 4096
RSS_GROWTH_GOAL_MB = 50.0


def events_for(total: int) -> pl.DataFrame:
    """`total` events from the real aggregates; repeated with times shifted past the data when short."""
    base = split_aggregates(pl.read_parquet(AGGREGATES), pl.read_parquet(KLINES))
    span = base["ts_ms"].max() - base["ts_ms"].min() + HOUR_MS
    cycles = -(-total // base.height)
    return pl.concat([base.with_columns(pl.col("ts_ms") + i * span) for i in range(cycles)]).head(total)


def messages_for(exchange: str, events: pl.DataFrame, rate: int) -> tuple[list, float]:
    """The server's messages and the seconds between them, for `rate` events per second."""
    if exchange == "bybit":
        per_message = max(1, round(rate * BYBIT_PUSH_S))
        return bybit_messages(events, batch=per_message), per_message / rate
    if exchange == "okx":
        return okx_messages(events, batch=OKX_DETAILS), OKX_DETAILS / rate
    return binance_messages(events), 1 / rate


def memory_mb(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def heartbeat(data_dir: Path) -> dict | None:
    path = data_dir / "collectors" / f"{NAME}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--rate", type=int, default=200, help="events per second")
    parser.add_argument("--exchange", choices=("bybit", "binanceusdm", "okx"), default="bybit")
    parser.add_argument("--flush-seconds", type=float, default=5.0)
    args = parser.parse_args()

    events = events_for(args.rate * args.seconds)
    messages, interval = messages_for(args.exchange, events, args.rate)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {events.height:,} events in "
          f"{len(messages):,} {args.exchange} messages, one every {interval * 1000:.0f} ms", flush=True)
    with tempfile.TemporaryDirectory() as tmp, FeedServer(args.exchange, messages, interval_s=interval) as server:
        data_dir = Path(tmp)
        command = [sys.executable, "-m", "lib", "--data-dir", tmp, "collect", "liquidations", "--exchange",
                   args.exchange, "--symbols", "BTC", "--flush-seconds", str(args.flush_seconds),
                   "--heartbeat-seconds", "1", "--name", NAME, "--ws-url", server.url]
        collector = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while server.sent == 0 and time.monotonic() < deadline and collector.poll() is None:
            time.sleep(0.1)
        started, cpu_start = time.monotonic(), cpu_seconds(collector.pid)
        rss: list[tuple[float, float]] = []
        while not server.finished.is_set() and collector.poll() is None:
            rss.append((time.monotonic() - started, memory_mb(collector.pid, "VmRSS")))
            time.sleep(SAMPLE_S)
        pushed_s = time.monotonic() - started
        drain_deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while (beat := heartbeat(data_dir)) and beat["events_received"] < server.events_sent \
                and time.monotonic() < drain_deadline:
            time.sleep(0.2)
        peak = memory_mb(collector.pid, "VmHWM")
        cpu = cpu_seconds(collector.pid) - cpu_start
        collector.send_signal(signal.SIGTERM)
        out, err = collector.communicate(timeout=DRAIN_TIMEOUT_S)
        if collector.returncode != 0:
            raise SystemExit(f"the collector failed (exit {collector.returncode}):\n{err}")
        beat = heartbeat(data_dir) or {}
        store = Store(data_dir)
        stored = store.scan(LIQUIDATIONS).select("ts", "side", "price", "qty").collect()
        started_write = time.perf_counter()
        extra = store.scan(LIQUIDATIONS).head(EXTRA_FLUSH_ROWS).collect().with_columns(
            pl.col("ts") + pl.duration(microseconds=1))  # new keys in the same year partitions
        store.write(LIQUIDATIONS, extra, source="bench")
        flush_s = time.perf_counter() - started_write

    at_half = next((mb for t, mb in rss if t >= pushed_s / 2), rss[-1][1])
    drift = rss[-1][1] - at_half
    print(f"pushed {server.events_sent:,} events in {pushed_s:.0f} s ({server.events_sent / pushed_s:.0f}/s); "
          f"received {beat.get('events_received', 0):,}; stored {stored.height:,} rows; "
          f"reconnects {beat.get('reconnects')}, lost in the feed {beat.get('events_lost')}", flush=True)
    print("RSS (MB) over the run: " + ", ".join(f"{t:.0f}s {mb:.0f}" for t, mb in rss[:: max(1, len(rss) // 10)]))
    report("collector: events stored vs sent (missing)", events.height - stored.height, "events", Goal(0, "events"),
           note=f"{stored.height:,} of {events.height:,}, {args.rate}/s for {args.seconds} s, {args.exchange}")
    report("collector: peak RSS", peak, "MB")
    report("collector: RSS growth over the second half (end - half time)", drift, "MB", Goal(RSS_GROWTH_GOAL_MB, "MB"))
    report("collector: CPU while pushed", cpu / pushed_s * 100, "% of a core")
    report(f"collector: one flush into the run's partition ({stored.height:,} rows)", flush_s, "s",
           Goal(args.flush_seconds, "s"))


if __name__ == "__main__":
    main()
