"""`python -m lib ...`: the pipeline without a browser.

Every command exits 0 on success, 1 with one line per failure, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from lib.config import load_settings
from lib.refresh import DEFAULT_SET, refresh_many, write_demo_market
from lib.schema import ASSETS, DATASETS, TIMEFRAMES
from lib.sources import SOURCES
from lib.sources.files import KINDS, ImportFormatError, read_import
from lib.store import Store, StoreError


def _utc(text: str) -> datetime:
    """An ISO-8601 date or time; naive values are taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date or time: {text!r}") from exc
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def cmd_status(store: Store, args: argparse.Namespace) -> int:
    entries = store.status()
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    if not entries:
        print(f"the cache at {store.root} is empty (try: python -m lib refresh, import, or demo)")
        return 0
    print(f"{'series':42} {'rows':>9}  {'first_ts':20} {'last_ts':20} {'gaps':>5}  fetched_at")
    for e in entries:
        series = f"{e['dataset']}/{e['exchange']}/{e['symbol']}/{e['timeframe']}"
        print(f"{series:42} {e['rows']:>9}  {e['first_ts']:20} {e['last_ts']:20} {e['gap_count']:>5}  {e['fetched_at']}")
    for path in store.quarantined():
        print(f"quarantined: {path}")
    return 0


def cmd_refresh(store: Store, args: argparse.Namespace) -> int:
    if args.default_set:
        if args.if_empty and store.status():
            print(f"cache at {store.root} already holds data: nothing fetched (run refresh without --if-empty)")
            return 0
        jobs = list(DEFAULT_SET)
    else:
        jobs = [(args.source, args.dataset, args.timeframe, args.since)]
    with tqdm(desc="refresh", unit=" rows", file=sys.stderr, disable=args.quiet) as bar:

        def progress(label: str, rows: int) -> None:
            bar.set_postfix_str(label)
            bar.n = rows
            bar.refresh()

        results = refresh_many(store, jobs, tuple(args.assets), args.until, args.seconds, progress)
    failed = [r for r in results if r.error]
    for r in results:
        if not r.error:
            print(f"ok      {r.label}: {r.rows_added} new rows")
    for r in failed:
        print(f"failed  {r.label}: {r.error} ({r.rows_added} rows kept)", file=sys.stderr)
    return 1 if failed else 0


def cmd_import(store: Store, args: argparse.Namespace) -> int:
    failures = 0
    for path in tqdm(args.paths, desc="import", unit=" file", file=sys.stderr, disable=args.quiet or len(args.paths) < 2):
        try:
            imported = read_import(path, args.kind, args.exchange, args.symbol, args.timeframe)
            added = store.write(imported.dataset, imported.frame, source=f"file:{path.name}")
        except (ImportFormatError, OSError) as exc:
            print(f"failed  {path}: {exc}", file=sys.stderr)
            failures += 1
            continue
        notes = f" ({'; '.join(imported.notes)})" if imported.notes else ""
        print(f"ok      {path}: {imported.frame.height} rows as {imported.dataset.name} [{imported.layout}], {added} new{notes}")
    return 1 if failures else 0


def cmd_demo(store: Store, args: argparse.Namespace) -> int:
    demo = Store(load_settings(data_dir=store.root).demo_dir)
    added = write_demo_market(demo, args.seed)
    print(f"demo market (synthetic) written to {demo.root}: {added} new rows")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description="Cascade: crypto market stress data and reports")
    parser.add_argument("--data-dir", help="the cache directory (default: env CASCADE_DATA_DIR, else data/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    status = sub.add_parser("status", help="what is cached: rows, range, gaps, fetch time")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=cmd_status)

    refresh = sub.add_parser("refresh", help="fetch new rows from a source into the cache")
    refresh.add_argument("--source", choices=sorted(SOURCES), default="binance")
    refresh.add_argument("--dataset", choices=sorted(DATASETS), default="bars")
    refresh.add_argument("--timeframe", choices=list(TIMEFRAMES), default="1h")
    refresh.add_argument("--assets", nargs="+", default=list(ASSETS), metavar="SYMBOL")
    refresh.add_argument("--since", type=_utc, help="first time to fetch when nothing is cached (ISO-8601, UTC)")
    refresh.add_argument("--until", type=_utc, help="fetch up to this time (default: now)")
    refresh.add_argument("--seconds", type=float, help="stop after this many seconds (what was fetched is kept)")
    refresh.add_argument("--default-set", action="store_true", help="the default datasets: " + ", ".join(
        f"{s} {d} {t}" for s, d, t, _ in DEFAULT_SET))
    refresh.add_argument("--if-empty", action="store_true", help="with --default-set: only when the cache is empty")
    refresh.set_defaults(run=cmd_refresh)

    imp = sub.add_parser("import", help="import CSV or Parquet files (layout auto-detected)")
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    imp.add_argument("--kind", choices=KINDS, help="what the files hold (default: detected)")
    imp.add_argument("--exchange", help="exchange name to store under (default: from the file name)")
    imp.add_argument("--symbol", help="base asset, e.g. BTC (default: from the file name)")
    imp.add_argument("--timeframe", choices=list(TIMEFRAMES), help="bar size (default: from the name or the data)")
    imp.set_defaults(run=cmd_import)

    demo = sub.add_parser("demo", help="write the synthetic demo market (kept apart from real data)")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    store = Store(load_settings(data_dir=args.data_dir).data_dir)
    try:
        return args.run(store, args)
    except (StoreError, KeyError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted; what was stored before is kept")
