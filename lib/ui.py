"""The Streamlit edge: cached loaders, the demo banner and shared widgets.

The only lib module that imports streamlit. Pages call these; nothing here computes analytics.
"""

from __future__ import annotations

import math
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import partial
from pathlib import Path
from typing import NoReturn, TypeVar

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from lib import auth, export, views
from lib import overview as overviews
from lib.charts.theme import chart_config
from lib.config import Settings, load_settings
from lib.refresh import write_demo_market
from lib.store import Store
from lib.link_values import UNSUPPORTED, link_value
from lib.viewstate import MAX_PARAM_CHARS, WEEKENDS, Choices, View, choices_from_status, parse_view, view_params
from lib.views import Loader

T = TypeVar("T")

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
    """Read on every run (cheap), so a changed CASCADE_DATA_DIR or secrets.toml takes effect at once."""
    return load_settings(secrets=_secrets())


def real_store() -> Store:
    """The real cache (refresh and import write here, never into the demo store); read-only for
    hosted-mode viewers."""
    return Store(settings().data_dir, read_only=not can_write())


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
    such run switches the mode off and reruns, so app.py routes it. (app.py calls this; pages
    call `route_through_app`.)
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def route_through_app() -> None:
    """A page's `use_explicit_navigation`. A page that Streamlit's legacy mode runs may have
    started after another session's run switched that mode off (two users opening links on a
    fresh server at once), so it is known by what its run registered instead: the legacy
    navigation lists app.py itself as a page, app.py's never does."""
    if _in_legacy_navigation():
        PagesManager.uses_pages_directory = False
        st.rerun()


def _in_legacy_navigation() -> bool:
    """Whether this run's pages were registered by Streamlit's pages/ discovery (with app.py as
    the main page), not by app.py. Only meaningful in a page: before any st.navigation the
    registry holds just the main script."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return False
    main = Path(ctx.pages_manager.main_script_path).resolve()
    return any(page.get("script_path") and Path(page["script_path"]).resolve() == main
               for page in ctx.pages_manager.get_pages().values())


def stop_without_bars(active: ActiveStore, view: View, assets: Sequence[str]) -> None:
    """A page's answer to a view without bars: what is missing, and at which other timeframes the
    view's exchange has bars of `assets` in its range; then the page stops."""
    whole_page_now()
    cached_series = status(active)
    elsewhere = views.cached_elsewhere(cached_series, "bars", assets, view, view.exchange)
    span = views.cached_span(cached_series, "bars", assets, view.timeframe, view.exchange)
    cached = f"Its {view.timeframe} bars cover {span[0]} to {span[1]}. " if span else ""
    st.warning(f"No {view.timeframe} bars from {view.exchange} for {', '.join(assets)} between {view.start} and "
               f"{view.end}. {cached}{elsewhere or 'Pick another exchange, timeframe or range.'}")
    if span:
        start = max(span[0], span[1] - (view.end - view.start))  # as many days as the view's range, up to the last
        st.button(f"Show {start} to {span[1]}", key="to_cached_span", on_click=set_view_range, args=(start, span[1]))
    st.stop()


def active_store() -> ActiveStore:
    """Real data whenever any bars are cached; otherwise the synthetic demo market."""
    route_through_app()
    if identity() is None:  # hosted mode, not signed in: no page shows data (app.py routes to the login)
        st.stop()
    store = real_store()
    if any(entry["dataset"] == "bars" for entry in store.status()):
        return ActiveStore(store, is_demo=False)
    try:
        return ActiveStore(_demo_store(str(settings().demo_dir)), is_demo=True)
    except OSError as exc:
        st.error(f"No bars are cached in {store.root}, and the demo market cannot be written to "
                 f"{settings().demo_dir} ({exc.strerror or exc}). Point CASCADE_DATA_DIR at a folder this app can "
                 "write, or build the cache there with `python -m lib refresh`.", icon=":material/folder_off:")
        st.stop()


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
                "source": ", ".join(dict.fromkeys(span["source"] for span in e.get("spans", []))) or e["source"],
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


KEPT = "kept_"  # widget state is dropped when a page is left; the view lives on under these keys
VIEW_KEYS = ("view_assets", "view_exchange", "view_timeframe", "view_range", "view_weekend")


def _keep(key: str) -> None:
    st.session_state[KEPT + key] = st.session_state[key]


def set_view_range(start: date, end: date) -> None:
    """Move the shared date range (a preset button's callback); view_controls clamps it."""
    st.session_state[KEPT + "view_range"] = (start, end)


def view_controls(active: ActiveStore) -> View | None:
    """The sidebar controls every analytics page shares, bound to the URL query string.

    The first run of a session takes its values from the link (refused values fall back to
    defaults with a note); afterwards the widgets drive, the view follows the user from page to
    page, and the link follows the view. Returns None when nothing is cached to choose from.
    """
    choices = choices_from_status(status(active), settings().assets, settings().default_exchange)
    if choices is None:
        st.info("No bars are cached yet: fetch or import some on the Data page.")
        return None
    if KEPT + "view_assets" not in st.session_state:
        view, notes = parse_view(st.query_params.to_dict(), choices)
        values = (list(view.assets), view.exchange, view.timeframe, (view.start, view.end), view.weekend)
        st.session_state.update({KEPT + key: value for key, value in zip(VIEW_KEYS, values)}, view_notes=notes)
    start, end = (*st.session_state[KEPT + "view_range"], None, None)[:2]
    if start is not None and end is not None:  # a preset may ask for days the cache does not have
        start, end = max(start, choices.first_day), min(end, choices.last_day)
        st.session_state[KEPT + "view_range"] = (start, end) if start <= end else (choices.default().start, choices.default().end)
    for key in VIEW_KEYS:
        st.session_state[key] = st.session_state[KEPT + key]
    if first_screen_pending():  # the controls come with the rest of the page
        assets, exchange, timeframe, picked, weekend = (st.session_state[key] for key in VIEW_KEYS)
    else:
        assets, exchange, timeframe, picked, weekend = _view_widgets(choices)
    start, end = picked if isinstance(picked, (tuple, list)) and len(picked) == 2 else st.session_state[KEPT + "view_range"]
    view = View(tuple(assets) or choices.assets[:1], exchange, timeframe, start, end, weekend)
    st.query_params.update(view_params(view))  # not from_dict: a page's own (bound) values stay in the link
    return view


def _view_widgets(choices: Choices) -> tuple[list[str], str, str, object, str]:
    """The shared controls in the sidebar (their values in session_state under VIEW_KEYS) and the
    link's notes: assets, exchange, timeframe, dates (one or two while being picked), weekend."""
    with st.sidebar:
        for note in st.session_state.get("view_notes", []):
            st.caption(f":material/info: Link: {note}")
        kept = {"on_change": _keep}
        assets = st.multiselect("Assets", choices.assets, key="view_assets", args=("view_assets",), **kept)
        exchange = st.selectbox("Exchange / source", choices.exchanges, key="view_exchange", args=("view_exchange",), **kept)
        timeframe = st.selectbox("Timeframe", choices.timeframes, key="view_timeframe", args=("view_timeframe",), **kept)
        picked = st.date_input("Dates (UTC)", min_value=choices.first_day, max_value=choices.last_day, key="view_range",
                               args=("view_range",), **kept)
        weekend = st.radio("Weekend", list(WEEKENDS), format_func=WEEKENDS.get, key="view_weekend",
                           args=("view_weekend",), **kept)
    return assets, exchange, timeframe, picked, weekend


def default_dates(pick: Callable[[date, date], tuple[date, date]]) -> None:
    """A page's own days for a link without dates: `pick(first, last cached day)`. Call before
    `view_controls`, which reads the link on a session's first run only, so the view a user chose
    is kept from page to page."""
    choices = choices_from_status(active_store().store.status(), settings().assets, settings().default_exchange)
    if choices is not None and not {"start", "end"} & set(st.query_params):
        start, end = pick(choices.first_day, choices.last_day)
        st.query_params.update({"start": start.isoformat(), "end": end.isoformat()})


_LINK_AS_FOUND = "link_as_found"  # session_state: the query string before this run's widgets read it


def linked(widget: Callable[..., T], *args: object, key: str, **kwargs: object) -> T:
    """`widget(*args, key=key, **kwargs)` with its value in the link (Streamlit's query-param
    binding: the key is the parameter's name, a select box's parameter its option's label). A value
    the widget refuses (Streamlit then shows the default and drops it from the link) gets a note.
    In a new tab's first screen the widget is not drawn: its value is read from the link as the
    widget will read it (lib.link_values), and the widget comes with the rest of the page."""
    if first_screen_pending():
        value = link_value(widget, args, kwargs, st.query_params.get_all(key))
        if value is not UNSUPPORTED:
            return value
    asked = st.session_state.get(_LINK_AS_FOUND, {}).get(key)
    value = widget(*args, key=key, bind="query-params", **kwargs)
    label = kwargs.get("format_func", str)
    if asked is not None and not (_same(asked, value) or asked == label(value)):
        _note_refused(key)
    return value


def _note_refused(key: str) -> None:
    """A note, kept for the session, that the link's value of `key` could not be used."""
    note = f"ignored an invalid '{key}' value in the link; showing the default"
    st.session_state["view_notes"] = [*st.session_state.get("view_notes", []), note]
    st.sidebar.caption(f":material/info: Link: {note}")


def linked_table(key: str, default: pl.DataFrame, to_text: Callable[[pl.DataFrame], str],
                 from_text: Callable[[str], pl.DataFrame | None]) -> pl.DataFrame:
    """An editable table (`st.data_editor`, which has no query-param binding) whose edits live in
    the link under `key` as `to_text` writes them. The link is read once per session (the editor
    keeps its edits against a fixed starting table); a table `from_text` refuses gets a note. The
    link follows the edits while the table is valid (`from_text` accepts it), and otherwise keeps
    the last valid one."""
    start = f"{key}_start"
    if start not in st.session_state:
        asked = st.query_params.get(key)
        table = default if asked is None else from_text(asked)
        if table is None:
            _note_refused(key)
        st.session_state[start] = default if table is None else table
    if first_screen_pending():
        return st.session_state[start]
    edited = st.data_editor(st.session_state[start], key=key, hide_index=True, num_rows="dynamic")
    complete = not edited.is_empty() and edited.null_count().sum_horizontal().item() == 0
    text = to_text(edited) if complete else None
    if text is not None and from_text(text) is not None:  # else the link keeps the last valid table
        _link(key, text if text != to_text(default) else None)
    return edited


def _link(key: str, text: str | None) -> None:
    """Put `text` in the link under `key`, or take `key` out of it (None: the default, left out)."""
    if text is not None:
        st.query_params[key] = text
    elif key in st.query_params:
        del st.query_params[key]


def _same(text: str, value: object) -> bool:
    """Whether a widget's `value` is what the link's `text` asked for."""
    try:
        if isinstance(value, bool):
            return text.lower() == str(value).lower()
        if isinstance(value, (int, float)):
            return float(text) == float(value)
        if isinstance(value, datetime):
            return datetime.fromisoformat(text).replace(tzinfo=None) == value.replace(tzinfo=None)
        if isinstance(value, date):
            return date.fromisoformat(text) == value
    except ValueError:
        return False
    return text == str(value)


def analytics_page(title: str) -> tuple[ActiveStore, View]:
    """The top of every analytics page: the data banner, the title and the shared view controls.
    Stops the page (with a note) when no bars are cached to choose from."""
    st.session_state[_LINK_AS_FOUND] = st.query_params.to_dict()  # before any widget reads the link
    active = active_store()
    data_banner(active)
    st.title(title)
    view = view_controls(active)
    if view is None:
        stop()
    return active, view


@st.cache_resource(ttl=3600, max_entries=4, show_spinner=False)
def _manifest(root: str, version: str) -> dict[str, dict]:
    return Store(root, read_only=True).manifest()


def status(active: ActiveStore) -> list[dict]:
    """`Store.status()` of `active`, parsed once per store version: every badge and control of a
    rerun asks for it, and the manifest file changes only when the store does."""
    entries = _manifest(str(active.store.root), active.store.version())
    return [entries[key] for key in sorted(entries)]


def _series_stamp(
    active: ActiveStore, dataset: str, assets: tuple[str, ...], exchange: str | None, timeframe: str | None,
) -> tuple[tuple[str, str, int], ...]:
    """What a read depends on: id, fetch time and row count of each series it touches. A refresh
    of one series changes only the stamps of reads that include it."""
    entries = _manifest(str(active.store.root), active.store.version())
    return tuple(sorted(
        (key, str(entry.get("fetched_at")), int(entry.get("rows") or 0)) for key, entry in entries.items()
        if entry.get("dataset") == dataset and entry.get("symbol") in assets
        and exchange in (None, entry.get("exchange")) and timeframe in (None, entry.get("timeframe"))
    ))


# Shared by every session, not copied per rerun: polars frames are immutable, and a year of
# 1-minute bars would cost a pickle round trip per rerun in st.cache_data.
@st.cache_resource(ttl=3600, max_entries=32, show_spinner=False)
def _rows(
    root: str, stamp: tuple[tuple[str, str, int], ...], dataset: str, assets: tuple[str, ...], lo: datetime,
    hi: datetime, exchange: str | None, timeframe: str | None,
) -> pl.DataFrame:
    return Store(root).read(dataset, assets, lo, hi, exchange, timeframe)


def rows(
    active: ActiveStore, dataset: str, assets: tuple[str, ...], lo: datetime, hi: datetime,
    exchange: str | None = None, timeframe: str | None = None,
) -> pl.DataFrame:
    """Stored rows of `dataset` for `assets` with lo <= ts < hi (any exchange or timeframe unless
    given), sorted by symbol and time. Cached per series stamp (`_series_stamp`), so a refresh is
    seen at once and invalidates only the reads of what it changed."""
    stamp = _series_stamp(active, dataset, assets, exchange, timeframe)
    return _rows(str(active.store.root), stamp, dataset, assets, lo, hi, exchange, timeframe)


def loader(active: ActiveStore) -> Loader:
    """The cached `rows` of `active`, in the shape lib.views loads through."""
    return partial(rows, active)


_FINGERPRINTS: dict[int, tuple[weakref.ref, tuple]] = {}  # id(frame) -> (the frame, its fingerprint)
_FINGERPRINTS_LOCK = threading.Lock()


def fingerprint(value: object) -> object:
    """What a cache key keeps of `value`: a frame as its height, schema and the sum of its row
    hashes (one pass: ~50 ms for a year of 1-minute bars of three assets), anything else as is.
    A frame's fingerprint is kept while the frame lives: the cached reads (`rows`) hand every rerun
    the same frame, which is never changed in place."""
    if not isinstance(value, pl.DataFrame):
        return value
    known = _FINGERPRINTS.get(id(value))
    if known is not None and known[0]() is value:
        return known[1]
    rows = int(value.hash_rows().sum()) if value.height else 0
    made = "frame", value.height, tuple((name, str(dtype)) for name, dtype in value.schema.items()), rows
    with _FINGERPRINTS_LOCK:  # sessions run in threads
        for key in [key for key, (frame, _) in _FINGERPRINTS.items() if frame() is None]:
            del _FINGERPRINTS[key]
        _FINGERPRINTS[id(value)] = (weakref.ref(value), made)
    return made


# A page's analytics and figures, computed once per (inputs, options) and shared by every session:
# a rerun that changes neither (a click on a table, a colleague opening the same link) only draws.
@st.cache_resource(ttl=3600, max_entries=12, show_spinner=False)
def _computed(name: str, key: tuple, _build: Callable[..., object], _args: tuple) -> object:
    return _build(*_args)


def computed(build: Callable[..., T], *args: object) -> T:
    """`build(*args)`, cached on `args` (frames by `fingerprint`) and shared between sessions:
    callers must never change the result (copy a figure before zooming it)."""
    key = tuple(fingerprint(arg) for arg in args)
    return _computed(f"{build.__module__}.{build.__qualname__}", key, _build=build, _args=args)


@st.cache_data(ttl=600, max_entries=16, show_spinner="Reading the market...")
def _overview(root: str, version: str, is_demo: bool, view: View) -> overviews.Overview:
    return overviews.overview(loader(ActiveStore(Store(root, read_only=True), is_demo)), view, is_demo)


def overview(active: ActiveStore, view: View) -> overviews.Overview:
    """The overview of `view` (the rows and the story chart), cached per store version and view."""
    return _overview(str(active.store.root), active.store.version(), active.is_demo, view)


@st.cache_data(ttl=600, max_entries=16, show_spinner=False)
def _level_ranges(root: str, version: str, is_demo: bool, view: View) -> pl.DataFrame:
    return overviews.level_ranges(loader(ActiveStore(Store(root, read_only=True), is_demo)), view)


def level_ranges(active: ActiveStore, view: View) -> pl.DataFrame:
    """`lib.overview.level_ranges` of `view`, cached per store version and view."""
    return _level_ranges(str(active.store.root), active.store.version(), active.is_demo, view)


def export_name(chart: str, view: View) -> str:
    """File name (without extension) of a chart's PNG: page and chart, asset(s), source and range.
    A per-asset chart (`views.figure_asset`) names its asset alone."""
    assets = "" if views.figure_asset(chart) in view.assets else "_" + "-".join(view.assets)
    return f"cascade_{chart}{assets}_{view.exchange}_{view.timeframe}_{view.start}_{view.end}"


def badge(active: ActiveStore, view: View) -> views.Badge:
    """The provenance badge function of `view` on `active` (lib.views.badge_maker): the text `chart`
    shows under a chart and `export_all` prints in its footer."""
    return views.badge_maker(status(active), view, active.is_demo)


def badges(active: ActiveStore, view: View, make: Callable[..., dict[str, str]], *args: object) -> dict[str, str]:
    """`make(badge(active, view), *args)`: a page's chart badges, cached per store version, view and
    inputs like `computed` (each badge scans the rows it describes: 0.15 s a rerun on a year of 1m bars)."""
    key = (str(active.store.root), active.store.version(), active.is_demo, view, *(fingerprint(arg) for arg in args))
    return _badges(f"{make.__module__}.{make.__qualname__}", key, _make=make, _args=(badge(active, view), *args))


@st.cache_resource(ttl=3600, max_entries=64, show_spinner=False)  # small: more entries than `_computed`
def _badges(name: str, key: tuple, _make: Callable[..., dict[str, str]], _args: tuple) -> dict[str, str]:
    return _make(*_args)


def export_all(page: str, figures: dict[str, go.Figure], view: View, footers: dict[str, str],
               assumptions: dict | None = None, optional: tuple[str, dict[str, go.Figure]] = ("", {})) -> None:
    """'Export all charts': one zip of PNGs (2x) and a standalone HTML page, made on the server,
    each chart with its badge (`footers[name]`, as shown under it) as its footer, and a model's
    `assumptions` in full as assumptions.json. `optional`: a checkbox's label and the figures it
    adds, for charts too slow to render every time (an animation's frames). The last thing each
    analytics page writes: a first screen that got here had no chart, and the page reruns whole."""
    whole_page_now()
    with st.expander("Export all charts (PNG + HTML)"):
        name = export_name(page, view)
        label, extra = optional
        if extra and st.checkbox(label, key=f"{page}_export_optional"):
            figures = figures | extra
        # a callback, not the click's return value: it survives a rerun between the click and this line
        st.button("Build the zip", key=f"{page}_export", on_click=st.session_state.update, kwargs={f"{page}_export_asked": True})
        if st.session_state.pop(f"{page}_export_asked", False):
            try:
                with st.spinner("Rendering charts with Chromium..."):
                    files = export.bundle(figures, footers, f"Cascade: {page}", assumptions=assumptions)
            except export.ExportError as exc:
                st.error(str(exc))
            else:
                st.download_button(f"Download {name}.zip", export.zip_bytes(files), f"{name}.zip",
                                   mime="application/zip", key=f"{page}_export_download")


def chart(fig: go.Figure, key: str, filename: str, footer: str, on_select: Callable[[], None] | None = None) -> None:
    """Render a figure with our own theme (not Streamlit's), a camera button that saves
    `filename`.png at 2x scale, and its provenance badge (`footer`) right under it.
    `on_select`: called after a click on a point (the chart then keeps its selection in `key`)."""
    st.plotly_chart(fig, key=key, theme=None, config=chart_config(filename), on_select=on_select or "ignore",
                    selection_mode="points")
    st.caption(footer)  # the provenance badge: one caption-sized line, the same component under every chart


FIRST_SCREEN_DRAWN = "first_screen_drawn"  # session_state: this tab drew a chart (plotly.js is loaded) or gave up
GIVE_UP_S = 5  # the rest of the page comes after this long even if no chart was drawn (plotly.js failed)
# Reports "drawn" once any plotly chart on the page has been drawn.
FIRST_SCREEN_JS = """
export default function ({ setStateValue }) {
  const drawn = () => [...document.querySelectorAll(".js-plotly-plot")].some((plot) => plot._fullLayout);
  let timer;
  const wait = () => {
    if (drawn()) setStateValue("drawn", true);
    else timer = setTimeout(wait, 50);
  };
  wait();
  return () => clearTimeout(timer);
}
"""


def first_screen_pending() -> bool:
    """Whether this run is a new tab's first screen: its first chart comes before its controls.

    Why: the sidebar's widgets cost a new tab 0.6-0.9 s of drawing before the first chart (the
    Liquidations sidebar on this machine: a 100-point chart at 2.8 s alone, 3.6 s below them), and
    their values are in the link anyway (`linked`, `view_controls`)."""
    return not st.session_state.get(FIRST_SCREEN_DRAWN) and has_browser()


def has_browser() -> bool:
    """Whether a browser is on the other end (AppTest sends no request headers: its pages run whole)."""
    return bool(st.context.headers)


def whole_page_now() -> None:
    """Where a page ends or stops before a first chart: in a new tab's first screen, rerun the page
    whole at once (with its controls); otherwise nothing."""
    if first_screen_pending():
        st.session_state[FIRST_SCREEN_DRAWN] = True
        st.rerun()


def stop() -> NoReturn:
    """st.stop(), after which the page's controls are still drawn (see `whole_page_now`)."""
    whole_page_now()
    st.stop()


def sidebar_expander(label: str) -> AbstractContextManager:
    """`st.sidebar.expander(label)` for a group of `linked` controls; nothing in a new tab's first
    screen, where they are not drawn."""
    return nullcontext() if first_screen_pending() else st.sidebar.expander(label)


def preset_button(label: str, key: str, start: date, end: date) -> None:
    """A sidebar button that sets the view's dates to `start`..`end` (none in a first screen)."""
    if not first_screen_pending():
        st.sidebar.button(label, key=key, width="stretch", on_click=set_view_range, args=(start, end))


def first_screen_end() -> None:
    """Where a page's first screen ends. A new tab's first run stops here until its browser has drawn
    the chart above; then the page reruns whole, and so does every later run of the session.

    Why: a new tab loads plotly.js (4.7 MB) once the first chart arrives, then draws every chart that
    arrived meanwhile in one task, so charts below the fold held back the one in view (Drawdowns in a
    new tab: first chart at 4.7 s with all five sent at once, 3.3 s alone). Without a browser on the
    other end (AppTest: no request headers) there is nothing to wait for, and the page runs whole."""
    if not first_screen_pending():
        return
    waiting = st.components.v2.component(
        "cascade_first_screen", html="<p>Drawing the rest of the page...</p>", js=FIRST_SCREEN_JS,
        css="p { margin: 0; font-size: 0.875rem; opacity: 0.6; color: var(--st-text-color); }")
    waiting(key="first_screen", on_drawn_change=partial(st.session_state.update, {FIRST_SCREEN_DRAWN: True}))
    _whole_page_later()
    st.stop()


@st.fragment(run_every=GIVE_UP_S)
def _whole_page_later() -> None:
    """The first screen's fallback, on Streamlit's own timer: GIVE_UP_S after it the page reruns
    whole, whatever the browser drew (plotly.js or the component failed to load: without it the
    sidebar's controls would never come)."""
    if get_script_run_ctx().fragment_ids_this_run:  # the timer's run, not the page's
        whole_page_now()


PICKED_EPISODE = "dd_picked_episode"  # session_state: the episode the drawdown charts zoom to (its episode_id)
EPISODE_PARAM = "dd_episode"  # its name in the link


def picked_episode() -> str | None:
    """The episode the drawdown charts zoom to: the latest pick (see `episode_picker`), or on a
    session's first visit the link's `dd_episode`; written back into the link."""
    if PICKED_EPISODE not in st.session_state:
        asked = st.query_params.get(EPISODE_PARAM)
        st.session_state[PICKED_EPISODE] = asked if asked and len(asked) <= MAX_PARAM_CHARS else None
    picked = st.session_state[PICKED_EPISODE]
    _link(EPISODE_PARAM, picked or None)
    return picked


def episode_picker(key: str, ids: Sequence[str] = ()) -> Callable[[], None]:
    """The on_select callback of the episode table `key` (`ids`: its rows' episode ids) or of a
    drawdown chart `key` (a clicked episode marker's customdata is its id). The charts zoom to the
    latest pick, wherever it was made; a click on anything else lets them go."""

    def pick() -> None:
        selection = st.session_state[key]["selection"]
        picked = [ids[row] for row in selection.get("rows", []) if row < len(ids)]
        picked += [point["customdata"] for point in selection.get("points", []) if isinstance(point.get("customdata"), str)]
        st.session_state[PICKED_EPISODE] = picked[0] if picked else None

    return pick


ROW_PX = 35


def table_height(frame: pl.DataFrame, max_rows: int = 25) -> int:
    """Pixel height that shows every row of a short table without an inner scrollbar."""
    return ROW_PX * (min(frame.height, max_rows) + 1) + 3


# --- hosted mode: who is signed in (the rules are in lib/auth.py) ---------------------------------

IDENTITY_KEY = "_cascade_identity"  # session_state: (Identity, the hash it matched) after a password sign-in
SESSION_KEY = "_cascade_session"  # session_state: this session's key for the attempt limits
DESK_KEY = "desk"  # the attempt-limit key shared by every session
READ_ONLY_NOTE = (
    "**Read-only.** On this hosted instance the cache is refreshed from the command line on a schedule "
    "(`python -m lib refresh --default-set`); refreshes, imports and uploads here are for admins."
)


def _secrets() -> dict:
    """st.secrets as a plain dict ({} when there is no secrets.toml)."""
    return st.secrets.to_dict() if st.secrets.load_if_toml_exists() else {}


def secrets_problem() -> str | None:
    """Why the secrets could not be read, when a secrets.toml exists but does not parse (Streamlit
    then reports no secrets at all, so hosted mode would seem to have no login configured). The
    parser's words without the file's path: the login page shows it to anyone."""
    if st.secrets.load_if_toml_exists():
        return None
    try:
        st.secrets.to_dict()
    except StreamlitSecretNotFoundError as exc:
        if not str(exc).startswith("No secrets found"):
            return "secrets.toml does not parse: " + str(exc).split(": ", 1)[-1]
    return None


def oidc_user() -> dict:
    """st.user as a dict when an identity provider has signed this browser in, else {}."""
    user = st.user.to_dict()
    return user if user.get("is_logged_in") is True else {}


def identity() -> auth.Identity | None:
    """Who uses this session: in local mode everyone, with full access; in hosted mode the
    allowed user an identity provider or the desk password signed in, else None."""
    access = settings().access
    if not access.hosted:
        return auth.LOCAL
    if access.oidc_providers and (user := oidc_user()) and (allowed := auth.oidc_identity(user, access)):
        return allowed
    signed, matched = st.session_state.get(IDENTITY_KEY, (None, None))
    # valid only while the password it matched is still configured (changing it signs everyone out)
    return signed if matched and matched in (access.password_hash, access.admin_password_hash) else None


def can_write() -> bool:
    """True if this session may refresh, import and upload."""
    who = identity()
    return who is not None and who.can_write


@st.cache_resource(show_spinner=False)
def _limiters(max_failures: int, window_s: float) -> tuple[auth.AttemptLimiter, auth.AttemptLimiter]:
    """Process-wide attempt limits: one per session, and one for all sessions together."""
    return auth.AttemptLimiter(max_failures, window_s), auth.AttemptLimiter(auth.DESK_MAX_FAILURES, window_s)


def password_sign_in(password: str) -> str | None:
    """Sign this session in with a desk password: None on success, else what to tell the user."""
    access = settings().access
    per_session, desk = _limiters(access.max_failures, access.failure_window_s)
    session = st.session_state.setdefault(SESSION_KEY, uuid.uuid4().hex)
    wait = max(per_session.wait_s(session), desk.wait_s(DESK_KEY))
    if wait > 0:  # refused before checking, so a locked-out guesser learns nothing
        return f"Too many attempts: wait {math.ceil(wait)} s and try again."
    signed = auth.password_identity(password, access)
    if signed is None:
        per_session.failed(session)
        desk.failed(DESK_KEY)
        return "Wrong password."
    per_session.succeeded(session)
    matched = access.admin_password_hash if signed.can_write else access.password_hash
    st.session_state[IDENTITY_KEY] = (signed, matched)
    return None


LOGIN_PROBLEM_KEY = "_cascade_login_problem"  # session_state: why the last password sign-in failed


def submit_password(widget_key: str) -> None:
    """The login form's callback: sign in with the password typed into `widget_key`, then blank it."""
    st.session_state[LOGIN_PROBLEM_KEY] = password_sign_in(st.session_state.get(widget_key) or "")
    st.session_state[widget_key] = ""


def account_box() -> None:
    """Hosted mode: who is signed in, with which role, and a sign-out button (in the sidebar)."""
    who = identity()
    if who is None or who.method == "local":
        return
    with st.sidebar:
        st.caption(f":material/account_circle: {who.name} ({who.role})")
        st.button("Sign out", key="sign_out", on_click=sign_out, icon=":material/logout:")


def sign_out() -> None:
    """Forget this session's password sign-in; end an identity provider's sign-in too."""
    st.session_state.pop(IDENTITY_KEY, None)
    if oidc_user():
        st.logout()
