"""The Streamlit edge: cached loaders, the demo banner and shared widgets.

The only lib module that imports streamlit. Pages call these; nothing here computes analytics.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from lib.charts.theme import chart_config
from lib.config import Settings, load_settings
from lib.refresh import write_demo_market
from lib.schema import TS
from lib.store import Store
from lib.viewstate import WEEKENDS, View, choices_from_status, parse_view, view_params

DEMO_BANNER = (
    "**Demo data (synthetic).** Nothing is cached yet and no real data could be fetched, so every page "
    "shows a generated market. Fetch or import real data on the Data page (or `python -m lib refresh`)."
)


@dataclass(frozen=True)
class ActiveStore:
    """The store the pages read: the real cache, or the demo store when the cache holds no bars."""

    store: Store
    is_demo: bool


def settings() -> Settings:
    """Read on every run (cheap), so a changed CASCADE_DATA_DIR takes effect at once."""
    return load_settings()


def real_store() -> Store:
    """The real cache (refresh and import write here, never into the demo store)."""
    return Store(settings().data_dir)


@st.cache_resource(show_spinner="Generating the demo market (synthetic)...")
def _demo_store(root: str) -> Store:
    store = Store(root)
    if not store.status():
        write_demo_market(store)
    return store


def use_explicit_navigation() -> None:
    """Route every run through app.py's st.navigation, never Streamlit's legacy pages/ discovery.

    Streamlit turns the legacy mode off only once some run calls st.navigation; until then a
    fresh server runs a pages/*.py file requested by URL on its own, without app.py. The first
    such run switches the mode off and reruns, so app.py routes it.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def active_store() -> ActiveStore:
    """Real data whenever any bars are cached; otherwise the synthetic demo market."""
    use_explicit_navigation()
    store = real_store()
    if any(entry["dataset"] == "bars" for entry in store.status()):
        return ActiveStore(store, is_demo=False)
    return ActiveStore(_demo_store(str(settings().demo_dir)), is_demo=True)


def data_banner(active: ActiveStore) -> None:
    """The one place that tells the user they are looking at synthetic data."""
    if active.is_demo:
        st.warning(DEMO_BANNER, icon=":material/science:")


def ago(iso: str | None, now: datetime | None = None) -> str:
    """'3 min ago', '5 h ago', '2 d ago' for an ISO-8601 UTC time; 'never' for None."""
    if not iso:
        return "never"
    seconds = ((now or datetime.now(timezone.utc)) - datetime.fromisoformat(iso)).total_seconds()
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit} ago"
    return "just now"


def _minute(iso: str | None) -> str:
    """'2018-01-01 00:00' (UTC) for display."""
    return "" if not iso else datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")


@st.cache_data(ttl=60, max_entries=8)
def status_frame(root: str, version: str) -> pl.DataFrame:
    """The cache's manifest as a table for display (keyed on the store's version)."""
    entries = Store(root).status()
    return pl.DataFrame(
        [
            {
                "dataset": e["dataset"],
                "exchange": e["exchange"],
                "symbol": e["symbol"],
                "timeframe": e["timeframe"],
                "first": _minute(e["first_ts"]),
                "last": _minute(e["last_ts"]),
                "rows": e["rows"],
                "gaps": e["gap_count"],
                "fetched": ago(e["fetched_at"]),
                "source": e["source"],
            }
            for e in entries
        ],
        schema={
            "dataset": pl.String, "exchange": pl.String, "symbol": pl.String, "timeframe": pl.String,
            "first": pl.String, "last": pl.String, "rows": pl.Int64, "gaps": pl.Int64,
            "fetched": pl.String, "source": pl.String,
        },
    )


def saved_upload(upload: st.runtime.uploaded_file_manager.UploadedFile, folder: str | Path) -> Path:
    """Write an uploaded file to `folder` under its own (sanitised) name, for the importer."""
    path = Path(folder) / Path(upload.name).name
    path.write_bytes(upload.getbuffer())
    return path


def upload_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="cascade-upload-")


def set_view_range(start: date, end: date) -> None:
    """Move the shared date range (a preset button); the widgets pick it up on the rerun."""
    st.session_state["view_range"] = (start, end)


def view_controls(active: ActiveStore) -> View | None:
    """The sidebar controls every analytics page shares, bound to the URL query string.

    The first run of a session takes its values from the link (refused values fall back to
    defaults with a note); afterwards the widgets drive, and the link follows them.
    Returns None when nothing is cached to choose from.
    """
    choices = choices_from_status(active.store.status(), settings().assets, settings().default_exchange)
    if choices is None:
        st.info("No bars are cached yet: fetch or import some on the Data page.")
        return None
    if "view_assets" not in st.session_state:
        view, notes = parse_view(st.query_params.to_dict(), choices)
        st.session_state.update(
            view_notes=notes,
            view_assets=list(view.assets), view_exchange=view.exchange, view_timeframe=view.timeframe,
            view_range=(view.start, view.end), view_weekend=view.weekend,
        )
    start, end = st.session_state["view_range"] if len(st.session_state["view_range"]) == 2 else (None, None)
    if start is not None:  # a preset may ask for days the cache does not have
        start, end = max(start, choices.first_day), min(end, choices.last_day)
        st.session_state["view_range"] = (start, end) if start <= end else (choices.default().start, choices.default().end)
    with st.sidebar:
        for note in st.session_state.get("view_notes", []):
            st.caption(f":material/info: Link: {note}")
        assets = st.multiselect("Assets", choices.assets, key="view_assets") or list(choices.assets[:1])
        exchange = st.selectbox("Exchange / source", choices.exchanges, key="view_exchange")
        timeframe = st.selectbox("Timeframe", choices.timeframes, key="view_timeframe")
        picked = st.date_input("Dates (UTC)", min_value=choices.first_day, max_value=choices.last_day, key="view_range")
        weekend = st.radio("Weekend", list(WEEKENDS), format_func=WEEKENDS.get, key="view_weekend")
    start, end = picked if isinstance(picked, (tuple, list)) and len(picked) == 2 else (choices.first_day, choices.last_day)
    view = View(tuple(assets), exchange, timeframe, start, end, weekend)
    st.query_params.from_dict(view_params(view))
    return view


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _rows(
    root: str, version: str, dataset: str, assets: tuple[str, ...], lo: datetime, hi: datetime,
    exchange: str | None, timeframe: str | None,
) -> pl.DataFrame:
    return (
        Store(root).scan(dataset, exchange=exchange, timeframe=timeframe)
        .filter(pl.col("symbol").is_in(assets), pl.col(TS) >= lo, pl.col(TS) < hi)
        .sort("symbol", TS)
        .collect()
    )


def rows(
    active: ActiveStore, dataset: str, assets: tuple[str, ...], lo: datetime, hi: datetime,
    exchange: str | None = None, timeframe: str | None = None,
) -> pl.DataFrame:
    """Stored rows of `dataset` for `assets` with lo <= ts < hi (any exchange or timeframe unless
    given), sorted by symbol and time. Cached per store version, so a refresh is seen at once."""
    return _rows(str(active.store.root), active.store.version(), dataset, assets, lo, hi, exchange, timeframe)


def day_bounds(view: View) -> tuple[datetime, datetime]:
    """The view's dates as [start 00:00, day after end 00:00) in UTC."""
    return datetime.combine(view.start, time(), timezone.utc), datetime.combine(view.end + timedelta(days=1), time(), timezone.utc)


def bars(active: ActiveStore, view: View) -> pl.DataFrame:
    """The view's bars (all its assets, its exchange and timeframe)."""
    return rows(active, "bars", view.assets, *day_bounds(view), view.exchange, view.timeframe)


def liquidation_totals(active: ActiveStore, view: View, timeframe: str = "1h") -> pl.DataFrame:
    """Liquidated USD per bar (long_usd, short_usd) for the view's assets, all exchanges."""
    return rows(active, "liquidation_totals", view.assets, *day_bounds(view), timeframe=timeframe)


def export_name(kind: str, symbol: str, view: View) -> str:
    """File name (without extension) of a chart's PNG: page, asset and range."""
    return f"cascade_{kind}_{symbol}_{view.exchange}_{view.timeframe}_{view.start}_{view.end}"


def provenance(active: ActiveStore, view: View, frame: pl.DataFrame, dataset: str = "bars") -> None:
    """One line under a page's charts: where the data comes from, what it covers, its gaps."""
    entries = [
        e for e in active.store.status()
        if e["dataset"] == dataset and e["exchange"] == view.exchange and e["timeframe"] == view.timeframe
        and e["symbol"] in view.assets
    ]
    lo, hi = day_bounds(view)
    gaps = sum(
        1 for e in entries for g in e["gaps"] if datetime.fromisoformat(g["start"]) < hi and datetime.fromisoformat(g["end"]) > lo
    )
    covered = f"{frame[TS].min():%Y-%m-%d %H:%M} to {frame[TS].max():%Y-%m-%d %H:%M} UTC" if not frame.is_empty() else "nothing"
    sources = sorted({e["source"] for e in entries})
    fetched = min((e["fetched_at"] for e in entries), default=None)
    text = (f"Source: {view.exchange} {dataset} {view.timeframe} ({', '.join(sources) or 'unknown'}), covering {covered}; "
            f"{gaps} gap(s) in range, shown not filled; cached {ago(fetched)}.")
    st.caption(("DEMO DATA (synthetic). " if active.is_demo else "") + text)


def chart(fig: go.Figure, key: str, filename: str) -> None:
    """Render a figure with our own theme (not Streamlit's) and a camera button that saves
    `filename`.png at 2x scale."""
    st.plotly_chart(fig, key=key, theme=None, config=chart_config(filename))


ROW_PX = 35


def table_height(frame: pl.DataFrame, max_rows: int = 25) -> int:
    """Pixel height that shows every row of a short table without an inner scrollbar."""
    return ROW_PX * (min(frame.height, max_rows) + 1) + 3
