"""`python -m lib ...`: the pipeline without a browser.

Every command exits 0 on success, 1 with one line per failure, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from lib.aggregate import KINDS as AGGREGATIONS, LOCAL, AggregateError, aggregate, dask_client, sources_for
from lib.analytics.drawdowns import LIQUIDATION_TIMEFRAME
from lib.analytics.liquidation_levels import WARM_UP
from lib.auth import hash_password
from lib.collect import (
    DEFAULT_DEPTH_INTERVAL_SECONDS,
    DEFAULT_FLUSH_SECONDS,
    DEFAULT_HEARTBEAT_SECONDS,
    EXCHANGES as COLLECTOR_EXCHANGES,
    Settings as CollectorSettings,
    collect,
)
from lib.config import is_url, load_settings
from lib.refresh import DEFAULT_SET, refresh_all, refresh_lock, refresh_many, write_demo_market
from lib.reports import DEFAULT_TOP, Report, drawdown_report, liquidity_report, liquidation_report, pick_series
from lib.schema import (
    ASSETS,
    BARS,
    DATASETS,
    DEPTH,
    EVENT,
    LIQUIDATION_TOTALS,
    LIQUIDATIONS,
    OPEN_INTEREST,
    TIMEFRAMES,
    TS,
)
from lib.sources import SOURCES
from lib.sources.binance_archive import ARCHIVE_KINDS, FUTURES_ONLY, MARKET_DIRS, read_any
from lib.sources.binance_download import ARCHIVES_SUBDIR, FAILED, FETCHED, KEPT, download
from lib.sources.files import KINDS, ImportFormatError
from lib.store import Store, StoreError
from lib.viewstate import View, choices_from_status, parse_view


def _utc(text: str) -> datetime:
    """An ISO-8601 date or time; naive values are taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date or time: {text!r}") from exc
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _until(text: str) -> datetime:
    """The end of a window: a date includes that whole day (the window ends at the next midnight
    UTC); a date and time is the first moment left out."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return _utc(text)
    return datetime.combine(day + timedelta(days=1), time(), timezone.utc)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


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
    """One refresh at a time per data directory: a second one exits 1 at once (RefreshRunning)."""
    with refresh_lock(store):
        return _refresh(store, args)


def _refresh(store: Store, args: argparse.Namespace) -> int:
    if args.default_set and args.if_empty and store.status():
        print(f"cache at {store.root} already holds data: nothing fetched (run refresh without --if-empty)")
        return 0
    if args.all and not store.status():
        print(f"the cache at {store.root} is empty: nothing to refresh (try: python -m lib refresh --default-set)")
        return 0
    jobs = list(DEFAULT_SET) if args.default_set else [(args.source, args.dataset, args.timeframe, args.since)]
    with tqdm(desc="refresh", unit=" rows", file=sys.stderr, disable=args.quiet) as bar:

        def progress(label: str, rows: int) -> None:
            bar.set_postfix_str(label)
            bar.n = rows
            bar.refresh()

        if args.all:
            results, skipped = refresh_all(store, args.until, args.seconds, progress)
        else:
            results, skipped = refresh_many(store, jobs, tuple(args.assets), args.until, args.seconds, progress), []
    for note in skipped:
        print(f"skipped {note}")
    failed = [r for r in results if r.error]
    for r in results:
        if not r.error:
            print(f"ok      {r.label}: {r.rows_added} new rows")
    for r in failed:
        print(f"failed  {r.label}: {r.error} ({r.rows_added} rows kept)", file=sys.stderr)
    return 1 if failed else 0


def _import_file(
    store: Store, path: Path, kind: str | None = None, exchange: str | None = None,
    symbol: str | None = None, timeframe: str | None = None,
) -> bool:
    """Import one file (Binance archives and zips through read_archive), print one line; False if it failed."""
    try:
        imported = read_any(path, kind, exchange, symbol, timeframe)
        added = store.write(imported.dataset, imported.frame, source=f"file:{path.name}")
    except (ImportFormatError, OSError) as exc:
        print(f"failed  {path}: {exc}", file=sys.stderr)
        return False
    notes = f" ({'; '.join(imported.notes)})" if imported.notes else ""
    what = f"{imported.frame.height} rows as {imported.dataset.name} [{imported.layout}]"
    print(f"ok      {path}: {what}, {added} new{notes}")
    return True


def cmd_import(store: Store, args: argparse.Namespace) -> int:
    paths = tqdm(args.paths, desc="import", unit=" file", file=sys.stderr, disable=args.quiet or len(args.paths) < 2)
    done = [_import_file(store, path, args.kind, args.exchange, args.symbol, args.timeframe) for path in paths]
    return 0 if all(done) else 1


def cmd_download(store: Store, args: argparse.Namespace) -> int:
    """Fetch Binance archive files (resumable, checksum-verified) into --out, then import them."""
    market = args.market or ("um" if args.kind in FUTURES_ONLY else "spot")
    if args.out is None and is_url(store.root):
        return _fail(f"the data directory {store.root} is object storage; archive files are downloaded and verified "
                     "on local disk: give --out DIR (they are imported into the store from there)")
    out = args.out or store.root / ARCHIVES_SUBDIR
    try:
        fetched = download(args.kind, args.symbol, market, args.interval, args.start, args.end, out)
    except ValueError as exc:
        return _fail(str(exc))
    for f in fetched:
        print(f"{f.status:<7} {f.relpath}: {f.detail}", file=sys.stderr if f.status == FAILED else sys.stdout)
    available = [f.path for f in fetched if f.status in (FETCHED, KEPT)]
    if not available:
        return _fail(f"no {args.kind} file for {args.symbol} from {args.start} to {args.end} on data.binance.vision")
    imported = [_import_file(store, path) for path in available]
    return 0 if all(imported) and all(f.status != FAILED for f in fetched) else 1


def cmd_demo(store: Store, args: argparse.Namespace) -> int:
    demo = Store(load_settings(data_dir=store.root).demo_dir)
    added = write_demo_market(demo, args.seed)
    print(f"demo market (synthetic) written to {demo.root}: {added} new rows")
    return 0


def cmd_collect(store: Store, args: argparse.Namespace) -> int:
    """Record a live feed until SIGTERM or Ctrl-C (see lib/collect.py); what it holds is stored on the way out."""
    settings = CollectorSettings(flush_seconds=args.flush_seconds, heartbeat_seconds=args.heartbeat_seconds)
    try:
        beat = collect(store, args.kind, args.exchange, tuple(args.symbols), args.name, settings, args.interval,
                       args.ws_url)
    except ValueError as exc:
        return _fail(str(exc))
    print(f"{beat.name} stopped: {beat.events_received} received, {beat.rows_written} new rows stored, "
          f"{beat.reconnects} reconnects, {beat.errors} errors, {beat.events_lost} lost")
    if beat.rows_held:
        return _fail(f"{beat.rows_held} rows could not be stored: {beat.last_error}")
    return 0


def cmd_aggregate(store: Store, args: argparse.Namespace) -> int:
    """Tick-level inputs into bars (lib/aggregate.py): streamed on this machine, or one Dask task per
    symbol x day with --scheduler; the bars are written to the store once, at the end."""
    try:
        sources = sources_for(args.kind, store, args.inputs, args.exchange, args.symbol)
        with dask_client(args.scheduler, args.workers) as client:
            bars = aggregate(args.kind, sources, args.timeframe, client)
    except (AggregateError, ImportFormatError) as exc:
        return _fail(str(exc))
    if bars.is_empty():
        return _fail(f"nothing to aggregate: no rows in {', '.join(source.label for source in sources)}")
    dataset = AGGREGATIONS[args.kind].dataset
    added = store.write(dataset, bars, source=f"aggregate:{args.kind}")
    where = f"Dask scheduler {args.scheduler}" if args.scheduler else "this machine (streaming)"
    print(f"ok      {bars.height} {dataset.name} rows at {args.timeframe} from {len(sources)} input(s) on {where}, "
          f"{added} new")
    return 0


# --- report --------------------------------------------------------------------------------------


class NothingCached(LookupError):
    """The cache holds nothing for what a report asks; the message says what is missing."""


def _unwritable(folder: Path, exc: OSError) -> str:
    return f"cannot write into {folder}: {exc.strerror or exc}"


def _when(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC"


def _window_text(start: datetime | None, end: datetime | None) -> str:
    """' since A before B' for error messages; empty for the whole cache."""
    return "".join(f" {word} {_when(value)}" for word, value in (("since", start), ("before", end)) if value)


def _cached_text(entries: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['exchange']} has {e['first_ts']} to {e['last_ts']}" for e in entries)


def _entries(
    store: Store, dataset: str, symbol: str, timeframe: str | None = None, exchange: str | None = None
) -> list[dict[str, Any]]:
    """Manifest entries of `dataset` for `symbol` (and `timeframe`, `exchange` when given)."""
    return [
        e for e in store.status()
        if e["dataset"] == dataset and e["symbol"] == symbol
        and timeframe in (None, e["timeframe"]) and exchange in (None, e["exchange"])
    ]


def _read(store: Store, entry: dict[str, Any], start: datetime | None, end: datetime | None) -> pl.DataFrame:
    """The rows of one cached series with start <= ts < end, sorted by time."""
    frame = store.scan(entry["dataset"], entry["exchange"], entry["symbol"], entry["timeframe"])
    if start is not None:
        frame = frame.filter(pl.col(TS) >= start)
    if end is not None:
        frame = frame.filter(pl.col(TS) < end)
    return frame.sort(TS).collect()


def _optional(
    store: Store, entries: list[dict[str, Any]], start: datetime | None, end: datetime | None
) -> pl.DataFrame | None:
    """The rows of the best series of `entries` in the window (`pick_series`), or None."""
    entry = pick_series(entries, start, end)
    frame = None if entry is None else _read(store, entry, start, end)
    return None if frame is None or frame.is_empty() else frame


def _bars(
    store: Store, args: argparse.Namespace, start: datetime | None, end: datetime | None
) -> tuple[pl.DataFrame, list[str]]:
    """The requested bars, and a note on the exchange when it was picked here; NothingCached if none."""
    what = f"{args.timeframe} {args.symbol} bars"
    entries = _entries(store, BARS.name, args.symbol, args.timeframe, args.exchange)
    if not entries:
        source = f" from {args.exchange}" if args.exchange else ""
        raise NothingCached(f"no {what}{source} in the cache at {store.root} (python -m lib status lists what is)")
    exchanges = ", ".join(sorted(e["exchange"] for e in entries))
    frame = _optional(store, entries, start, end)
    if frame is None:
        raise NothingCached(f"no {what}{_window_text(start, end)} ({_cached_text(entries)})")
    notes = [] if args.exchange else [f"exchange {frame['exchange'][0]} picked: the most cached {what} of {exchanges}"]
    return frame, notes


def _drawdowns(store: Store, args: argparse.Namespace) -> Report:
    bars, notes = _bars(store, args, args.start, args.end)
    totals = _entries(store, LIQUIDATION_TOTALS.name, args.symbol, LIQUIDATION_TIMEFRAME)
    return drawdown_report(bars, top=args.top, liquidations=_optional(store, totals, args.start, args.end), notes=notes)


WEEKEND_NAMES = {"utc": "utc", "us-closed": "cme"}  # the CLI's names -> lib.analytics.sessions' names


def _liquidity(store: Store, args: argparse.Namespace) -> Report:
    bars, notes = _bars(store, args, args.start, args.end)
    return liquidity_report(bars, WEEKEND_NAMES[args.weekend], notes=notes,
                            estimate_quote_volume=args.estimate_quote_volume)


def _liquidations(store: Store, args: argparse.Namespace) -> Report:
    """Realised liquidations over the window (default: the cached liquidations' own range), bars and
    open interest from `WARM_UP` before it for the estimate, and 1 % depth for fragility."""
    series = (pick_series(_entries(store, LIQUIDATION_TOTALS.name, args.symbol, args.timeframe), args.start, args.end)
              or pick_series(_entries(store, LIQUIDATIONS.name, args.symbol, EVENT), args.start, args.end))
    if series is None:
        raise NothingCached(f"no {args.timeframe} {args.symbol} liquidations{_window_text(args.start, args.end)} "
                            f"in the cache at {store.root} (python -m lib status lists what is)")
    start = args.start or datetime.fromisoformat(series["first_ts"])
    liquidations = _read(store, series, start, args.end)
    warm_up = start - WARM_UP
    bars, notes = _bars(store, args, warm_up, args.end)
    return liquidation_report(
        liquidations,
        bars,
        start=start,
        open_interest=_optional(store, _entries(store, OPEN_INTEREST.name, args.symbol), warm_up, args.end),
        depth=_optional(store, _entries(store, DEPTH.name, args.symbol), start, args.end),
        bucket_usd=args.bucket_usd,
        notes=notes,
    )


def cmd_report(store: Store, args: argparse.Namespace) -> int:
    if args.start and args.end and args.start >= args.end:
        return _fail(f"--start must be before --end: the window{_window_text(args.start, args.end)} is empty")
    try:
        report = args.build(store, args)
    except (NothingCached, ValueError) as exc:
        return _fail(str(exc))
    if args.format == "json":
        print(json.dumps(report.summary, indent=1, allow_nan=False))
    else:
        sys.stdout.write(report.table.write_csv())
    return 0


EXPORT_PAGES = ("drawdowns", "liquidity", "liquidations")  # lib.views.PAGES, without importing it
REPLAY_MODES = ("window", "bars")  # lib.views.REPLAY_MODES, without importing it


def _asked_view(status: list[dict[str, Any]], **asked: str | None) -> View | None:
    """The view the options ask for (unset ones: as the app chooses), with a note on stderr for each
    refused value; None when no bars are cached."""
    choices = choices_from_status(status, load_settings().assets, load_settings().default_exchange)
    if choices is None:
        return None
    view, notes = parse_view({k: v for k, v in asked.items() if v}, choices)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return view


def cmd_export(store: Store, args: argparse.Namespace) -> int:
    """Every chart of the chosen pages for one view, as PNG (2x) or one standalone HTML per page,
    each with the provenance footer the app's export gives them."""
    status = store.status()
    view = _asked_view(status, assets=",".join(args.assets or ()), exchange=args.exchange, timeframe=args.timeframe,
                       start=args.start and args.start.date().isoformat(), end=args.end and args.end.date().isoformat())
    if view is None:
        return _fail(f"no bars are cached in {store.root}: refresh, import or run `python -m lib demo` first")
    # Imported here: the page builders pull in scipy, statsmodels and plotly (seconds), which the
    # other commands (status, import, refresh run by cron) should not wait for.
    from lib import export
    from lib.views import PAGES, badge_maker, page_exports

    badge = badge_maker(status, view, is_demo=False)
    written: list[Path] = []
    for page in PAGES if args.page == "all" else (args.page,):
        try:
            made = page_exports(store.read, badge, page, view, replay_mode=args.replay)
            files = export.bundle(made.figures, made.footers, f"Cascade: {page}", (args.format,), made.assumptions)
        except (ValueError, export.ExportError) as exc:
            return _fail(f"{page}: {exc}")
        try:
            written += export.write(files, args.out / page)
        except OSError as exc:
            return _fail(_unwritable(args.out / page, exc))
    print(f"{len(written)} files written under {args.out} ({', '.join(view.assets)}, {view.exchange} {view.timeframe}, "
          f"{view.start} .. {view.end})")
    return 0


def cmd_brief(store: Store, args: argparse.Namespace) -> int:
    """The weekend brief as of --asof (default: the close of the last cached bar) from cached data
    only: a PNG page, a standalone HTML page and a Markdown summary written into --out."""
    status = store.status()
    view = _asked_view(status, assets=",".join(args.assets or ()), exchange=args.exchange, timeframe=args.timeframe)
    if view is None:
        return _fail(f"no bars are cached in {store.root}: refresh, import or run `python -m lib demo` first")
    from lib import brief, export  # seconds of imports (see cmd_export)

    asof = args.asof or brief.latest_close(status, view)
    made = brief.build(store.read, view, asof, status, is_demo=False)
    if made.used_until is None:
        spans = "; ".join(f"{e['symbol']} from {e['first_ts']}" for symbol in view.assets
                          for e in _entries(store, "bars", symbol, view.timeframe, view.exchange))
        return _fail(f"no {view.timeframe} bars of {', '.join(view.assets)} from {view.exchange} up to {_when(asof)} "
                     f"({spans}): a brief of nothing is not written")
    try:
        written = export.write(brief.files(made), args.out)
    except export.ExportError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(_unwritable(args.out, exc))
    print(f"weekend brief as of {_when(asof)} ({', '.join(view.assets)}, {view.exchange} {view.timeframe}; data read "
          f"up to the bar of {_when(made.used_until)}): {len(written)} files in {args.out}")
    return 0


ALERTS_CROSSED = 3  # the exit status of `alerts` when a limit is crossed (1: an error, 2: bad arguments)
# `lib.alerts.RULES` name -> (metavar, help): here, so that building the parser imports no charts
ALERT_OPTIONS: dict[str, tuple[str, str]] = {
    "drop_24h": ("PCT", "an asset fell at least PCT %% over the last 24 h"),
    "off_30d_high": ("PCT", "an asset is at least PCT %% below its 30-day high"),
    "liquidated_24h": ("USD", "at least USD of longs and shorts were liquidated over the last 24 h"),
    "longs_vs_depth": ("X", ("estimated longs within -5 %% are at least X times the 1 %% bid depth (the weekend's "
                             "where cached)")),
    "funding": ("PCT", "funding is at least PCT %% per interval, either sign"),
    "weekend_ratio": ("X", "weekend volume is at most X times the weekday's (last 12 weeks)"),
}


def _finite(text: str) -> float:
    """A limit: a finite number."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def cmd_alerts(store: Store, args: argparse.Namespace) -> int:
    """Check the limits asked for against the figures as of --asof (default: the close of the last
    cached bar): one line per asset and limit, crossed ones first; exit 3 when any is crossed."""
    from lib import alerts, brief  # seconds of imports (see cmd_export)

    limits = {name: value for name in ALERT_OPTIONS if (value := getattr(args, name)) is not None}
    if not limits:
        return _fail("give at least one limit, e.g. --drop-24h 5 --longs-vs-depth 2 (see --help)")
    status = store.status()
    view = _asked_view(status, assets=",".join(args.assets or ()), exchange=args.exchange, timeframe=args.timeframe)
    if view is None:
        return _fail(f"no bars are cached in {store.root}: refresh, import or run `python -m lib demo` first")
    asof = args.asof or brief.latest_close(status, view)
    checked = alerts.run(store.read, view, asof, limits)
    if checked.used_until is None:
        return _fail(f"no {view.timeframe} bars of {', '.join(view.assets)} from {view.exchange} up to {_when(asof)}")
    if args.format == "json":
        print(json.dumps({"asof": asof.isoformat(), "used_until": checked.used_until.isoformat(),
                          "assets": list(view.assets), "exchange": view.exchange, "timeframe": view.timeframe,
                          "checks": checked.checks.to_dicts()}, indent=1))
    else:
        print(f"Cascade alerts as of {_when(asof)} ({', '.join(view.assets)}, {view.exchange} {view.timeframe}; data "
              f"read up to the bar of {_when(checked.used_until)}): {checked.crossed.height} of "
              f"{checked.checks.height} limits crossed")
        print("\n".join(alerts.lines(checked.checks)))
    return ALERTS_CROSSED if checked.crossed.height else 0


def cmd_hash_password(store: Store, args: argparse.Namespace) -> int:
    """Print the scrypt hash of a password for [cascade] password_hash in .streamlit/secrets.toml.

    Asks twice on a terminal; otherwise reads the first line of stdin (for scripts)."""
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            return _fail("the two passwords differ; nothing printed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < args.min_length:
        return _fail(f"the password is shorter than {args.min_length} characters; nothing printed")
    print(hash_password(password))
    print('paste it into .streamlit/secrets.toml under [cascade]: password_hash = "scrypt$..." '
          "(or admin_password_hash)", file=sys.stderr)
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
    which = refresh.add_mutually_exclusive_group()
    which.add_argument("--default-set", action="store_true", help="the default datasets: " + ", ".join(
        f"{s} {d} {t}" for s, d, t, _ in DEFAULT_SET))
    which.add_argument("--all", action="store_true",
                       help="every cached series of a fetchable source, from its last row (--source, --dataset, "
                            "--timeframe and --assets are ignored; imported files and demo data are skipped)")
    refresh.add_argument("--if-empty", action="store_true", help="with --default-set: only when the cache is empty")
    refresh.set_defaults(run=cmd_refresh)

    down = sub.add_parser("download", help="fetch Binance public archive files (data.binance.vision) and import them")
    down.add_argument("provider", choices=("binance",))
    down.add_argument("--kind", choices=ARCHIVE_KINDS, required=True)
    down.add_argument("--symbol", required=True, help="base asset (BTC) or Binance pair (BTCUSDT)")
    down.add_argument("--market", choices=tuple(MARKET_DIRS),
                      help="spot or USD-M futures (default: spot for klines, um for metrics and bookDepth)")
    down.add_argument("--interval", choices=list(TIMEFRAMES), default="1h", help="klines bar size (default: 1h)")
    down.add_argument("--start", type=date.fromisoformat, required=True, help="first day, YYYY-MM-DD (UTC)")
    down.add_argument("--end", type=date.fromisoformat, required=True, help="last day included, YYYY-MM-DD (UTC)")
    down.add_argument("--out", type=Path, help=f"archive folder (default: {ARCHIVES_SUBDIR}/ in the data directory)")
    down.set_defaults(run=cmd_download)

    imp = sub.add_parser("import", help="import CSV, Parquet or Binance archive (zip) files (layout auto-detected)")
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    imp.add_argument("--kind", choices=KINDS, help="what the files hold (default: detected)")
    imp.add_argument("--exchange", help="exchange name to store under (default: from the file name)")
    imp.add_argument("--symbol", help="base asset, e.g. BTC (default: from the file name)")
    imp.add_argument("--timeframe", choices=list(TIMEFRAMES), help="bar size (default: from the name or the data)")
    imp.set_defaults(run=cmd_import)

    demo = sub.add_parser("demo", help="write the synthetic demo market (kept apart from real data)")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=cmd_demo)

    collecting = sub.add_parser("collect", help="record a live feed into the cache until SIGTERM or Ctrl-C")
    feeds = collecting.add_subparsers(dest="kind", required=True)
    live = argparse.ArgumentParser(add_help=False)
    live.add_argument("--exchange", choices=COLLECTOR_EXCHANGES, required=True)
    live.add_argument("--symbols", nargs="+", default=list(ASSETS), metavar="SYMBOL")
    live.add_argument("--name", help="the collector's heartbeat name (default: <kind>-<exchange>)")
    live.add_argument("--flush-seconds", type=_positive, default=DEFAULT_FLUSH_SECONDS,
                      help="store held rows at least this often: the most a crash can lose "
                      f"(default: {DEFAULT_FLUSH_SECONDS:g})")
    live.add_argument("--heartbeat-seconds", type=_positive, default=DEFAULT_HEARTBEAT_SECONDS,
                      help=f"how often the heartbeat file is written (default: {DEFAULT_HEARTBEAT_SECONDS:g})")
    liquidating = feeds.add_parser("liquidations", parents=[live],
                                   help="liquidation events from the exchange's websocket")
    liquidating.add_argument("--ws-url", help="dev/test only: read this websocket (e.g. a local server) with built-in "
                             "market definitions instead of the exchange's")
    liquidating.set_defaults(run=cmd_collect, interval=DEFAULT_DEPTH_INTERVAL_SECONDS)
    depth = feeds.add_parser("depth", parents=[live], help="order-book depth snapshots (REST) on a timer")
    depth.add_argument("--interval", type=_positive, default=DEFAULT_DEPTH_INTERVAL_SECONDS,
                       help=f"seconds between snapshots (default: {DEFAULT_DEPTH_INTERVAL_SECONDS:g})")
    depth.set_defaults(run=cmd_collect, ws_url=None)

    aggregating = sub.add_parser("aggregate", help="trades or liquidation events into bars, streamed or on Dask")
    aggregating.add_argument("kind", choices=tuple(AGGREGATIONS),
                             help="liquidations: stored events -> liquidation_totals; trades: --input files -> bars")
    aggregating.add_argument("--timeframe", choices=list(TIMEFRAMES), default="1h", help="bar size (default: 1h)")
    aggregating.add_argument("--input", dest="inputs", nargs="+", type=Path, default=[], metavar="FILE",
                             help="Binance trades or aggTrades files (CSV, zip or Parquet); trades only")
    aggregating.add_argument("--exchange", help="trades: store under this exchange (default: from the archive "
                             "folder); liquidations: only this exchange's events")
    aggregating.add_argument("--symbol", help="trades: base asset (default: from the file name); liquidations: "
                             "only this symbol's events")
    aggregating.add_argument("--scheduler", metavar="ADDRESS", help="run one task per symbol x day on the Dask "
                             f"scheduler at ADDRESS (tcp://host:8786), or '{LOCAL}' for a cluster on this machine "
                             "(default: stream on this machine, no Dask)")
    aggregating.add_argument("--workers", type=int, default=2, help=f"worker processes with --scheduler {LOCAL} "
                             "(default: 2)")
    aggregating.set_defaults(run=cmd_aggregate)

    hashing = sub.add_parser("hash-password", help="print the scrypt hash of a password for hosted mode's secrets.toml")
    hashing.add_argument("--min-length", type=int, default=12, help="refuse shorter passwords (default: 12)")
    hashing.set_defaults(run=cmd_hash_password)

    exporting = sub.add_parser("export", help="write every chart of a page (or all pages) as PNG or HTML")
    exporting.add_argument("--out", type=Path, required=True, help="folder to write into (one subfolder per page)")
    exporting.add_argument("--page", choices=(*EXPORT_PAGES, "all"), default="all")
    exporting.add_argument("--assets", nargs="+", metavar="SYMBOL", help="default: every cached asset")
    exporting.add_argument("--exchange", help="exchange of the bars (default: as the app chooses)")
    exporting.add_argument("--timeframe", choices=list(TIMEFRAMES), help="default: 1h where cached")
    exporting.add_argument("--start", type=_utc, help="first day (default: a year before the last cached day)")
    exporting.add_argument("--end", type=_utc, help="last day included (default: the last cached day)")
    exporting.add_argument("--format", choices=("png", "html"), default="png")
    exporting.add_argument("--replay", nargs="?", const="window", choices=REPLAY_MODES,
                           help="liquidations: also the map played, as the page plays it: at evenly spaced steps of "
                                "the window (the default) or bar by bar over its last 60 bars (png: one file per "
                                "step, replay_<asset>_<time>.png; html: animated)")
    exporting.set_defaults(run=cmd_export)

    briefing = sub.add_parser("brief", help="the weekend brief (PNG, HTML, Markdown) as of a time, from cached data only")
    briefing.add_argument("--out", type=Path, required=True, help="folder to write into")
    briefing.add_argument("--asof", type=_utc, help="use only data before this time (ISO-8601, UTC; default: the "
                          "close of the last cached bar)")
    briefing.add_argument("--assets", nargs="+", metavar="SYMBOL", help="default: every cached asset")
    briefing.add_argument("--exchange", help="exchange of the bars (default: as the app chooses)")
    briefing.add_argument("--timeframe", choices=list(TIMEFRAMES), help="default: 1h where cached")
    briefing.set_defaults(run=cmd_brief)

    alerting = sub.add_parser("alerts", help="check limits (a fall, liquidations, longs against depth, funding...) "
                              "against cached data; exit 3 when one is crossed, for a cron job")
    alerting.add_argument("--asof", type=_utc, help="use only data before this time (ISO-8601, UTC; default: the "
                          "close of the last cached bar)")
    alerting.add_argument("--assets", nargs="+", metavar="SYMBOL", help="default: every cached asset")
    alerting.add_argument("--exchange", help="exchange of the bars (default: as the app chooses)")
    alerting.add_argument("--timeframe", choices=list(TIMEFRAMES), help="default: 1h where cached")
    alerting.add_argument("--format", choices=("text", "json"), default="text")
    for name, (metavar, text) in ALERT_OPTIONS.items():
        alerting.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_finite, metavar=metavar, help=text)
    alerting.set_defaults(run=cmd_alerts)

    report = sub.add_parser("report", help="drawdown, liquidity or liquidation report of one asset, as JSON or CSV")
    kinds = report.add_subparsers(dest="report", required=True)
    window = argparse.ArgumentParser(add_help=False)
    window.add_argument("--symbol", required=True, help="base asset, e.g. BTC")
    window.add_argument("--exchange", help="exchange of the bars (default: the one with the most cached bars)")
    window.add_argument("--timeframe", choices=list(TIMEFRAMES), default="1h")
    window.add_argument("--start", type=_utc, help="first time included (ISO-8601, UTC)")
    window.add_argument("--end", type=_until, help="last day included, or first time left out (ISO-8601, UTC)")
    window.add_argument("--format", choices=("json", "csv"), default="json",
                        help="json: the whole report; csv: its table")
    drawdowns = kinds.add_parser("drawdowns", parents=[window], help="desk metrics; csv: the deepest episodes")
    drawdowns.add_argument("--top", type=int, default=DEFAULT_TOP, help="episodes listed, deepest first")
    drawdowns.set_defaults(run=cmd_report, build=_drawdowns)
    liquidity = kinds.add_parser("liquidity", parents=[window],
                                 help="weekend against weekday per measure, with CIs and p-values; csv: the table")
    liquidity.add_argument("--weekend", choices=tuple(WEEKEND_NAMES), default="utc",
                           help="utc: Sat-Sun UTC; us-closed: CME crypto futures closed, Fri 16:00 to Sun 17:00 Chicago")
    liquidity.add_argument("--estimate-quote-volume", action=argparse.BooleanOptionalAction, default=True,
                           help="where bars have base volume only: volume x (high + low + close) / 3 (default: on)")
    liquidity.set_defaults(run=cmd_report, build=_liquidity)
    liquidations = kinds.add_parser("liquidations", parents=[window],
                                    help="realised totals, grid, bursts, estimated levels; csv: the grid cells")
    liquidations.add_argument("--bucket-usd", type=_positive, help="price bucket size (default: about 200 buckets)")
    liquidations.set_defaults(run=cmd_report, build=_liquidations)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    store = Store(load_settings(data_dir=args.data_dir).data_dir)
    try:
        return args.run(store, args)
    except (StoreError, KeyError) as exc:
        return _fail(str(exc))
    except OSError as exc:  # e.g. a data directory that cannot be created or written: its path and why
        return _fail(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted; what was stored before is kept")
