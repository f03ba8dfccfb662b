"""Charts to files: PNG through kaleido and the system Chromium, standalone HTML, a zip of both.

Every exported chart carries a footer (title, data range, source, fetch time, assumptions).
Kaleido's global sync server is not thread-safe (plotly/Kaleido#444; TOOLCHAIN.md), and when its
browser cannot start (no Chromium, missing libraries) its thread dies and every export waits forever.
So kaleido runs on an event loop of our own: opened on first use (a failure is raised to the caller),
every render submitted to that loop as a coroutine with its own result, whichever thread asks.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import json
import tempfile
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path

import kaleido
import plotly.graph_objects as go
import plotly.io as pio
from kaleido.errors import KaleidoError

from lib.charts.theme import CONTROLS_PX, EXPORT_HEIGHT, EXPORT_SCALE, EXPORT_WIDTH, MARGIN_B, MUTED, wrap

FOOTER_CHARS = 170
FOOTER_LINE_PX = 15
AXIS_TITLE_PX = 24  # an x-axis title's line under the tick labels
RENDER_TABS = 2  # kaleido renders in two browser tabs at once: one per core of the machines we run on
START_TIMEOUT_S = 60
_LOCK = threading.Lock()  # around starting the browser
_renderer: dict[str, object] = {}  # "loop" and "kaleido" once the browser runs
_RENDER_FAILED = (RuntimeError, OSError, ValueError, KaleidoError)  # what kaleido raises (ChromeNotFoundError is a RuntimeError)


class ExportError(RuntimeError):
    """An export could not be made; the message says why (e.g. Chromium is missing)."""


def with_footer(fig: go.Figure, footer: str) -> go.Figure:
    """A copy of `fig` with `footer` written under the plot, wrapped, the bottom margin grown to fit.
    The footer starts under the bottom margin, and under an x-axis title too: plotly grows the
    margin for the title as it draws, past the layout's value the footer is placed by."""
    lines = wrap(footer, FOOTER_CHARS)
    out = go.Figure(fig)
    margin = out.layout.margin.b or MARGIN_B
    titled = any(axis.title.text for axis in out.select_xaxes())
    above = margin + (AXIS_TITLE_PX if titled else 0)  # what sits under the plot before the footer
    bottom = above + FOOTER_LINE_PX * len(lines) + 24
    out.add_annotation(text="<br>".join(lines), xref="paper", yref="paper", x=0, y=0, xanchor="left", yanchor="top",
                       yshift=-above + 4, showarrow=False, align="left", font={"size": 10, "color": MUTED})
    return out.update_layout(margin={"b": bottom}, height=(out.layout.height or EXPORT_HEIGHT) + bottom - margin)


def _kaleido() -> tuple[asyncio.AbstractEventLoop, kaleido.Kaleido]:
    """The running renderer, started on first use: kaleido's browser with `RENDER_TABS` tabs, on its
    own event loop in a daemon thread. Raises what starting it raised (e.g. ChromeNotFoundError)."""
    with _LOCK:
        if not _renderer:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="kaleido", daemon=True).start()

            async def opened() -> kaleido.Kaleido:
                renderer = kaleido.Kaleido(n=RENDER_TABS, mathjax=False)
                await renderer.open()
                return renderer

            try:
                renderer = asyncio.run_coroutine_threadsafe(opened(), loop).result(START_TIMEOUT_S)
            except BaseException:
                loop.call_soon_threadsafe(loop.stop)
                raise
            _renderer.update(loop=loop, kaleido=renderer)
            atexit.register(_close, loop, renderer)  # no Chromium left behind
        return _renderer["loop"], _renderer["kaleido"]


def _close(loop: asyncio.AbstractEventLoop, renderer: kaleido.Kaleido) -> None:
    if not loop.is_running():  # closed already (a renderer forgotten before the process exits)
        return
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(renderer.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)


def _forget_renderer() -> None:
    """Close the renderer (if it still can be) so the next export starts a new browser."""
    with _LOCK:
        if _renderer:
            _close(_renderer["loop"], _renderer["kaleido"])
            _renderer.clear()


def pngs(figures: Mapping[str, go.Figure], width: int = EXPORT_WIDTH, scale: float = EXPORT_SCALE) -> dict[str, bytes]:
    """Each figure as PNG bytes (its own height, `width` px wide, at `scale`), rendered in one batch
    across the `RENDER_TABS` tabs: a page's eight charts take 2.6-3.6 s instead of 4.0-5.9 s one by one.
    A failed batch is tried once more in a new browser: the one running may have died (killed, out of memory)."""
    with tempfile.TemporaryDirectory(prefix="cascade-png-") as tmp:
        paths = {name: Path(tmp) / f"{i}.png" for i, name in enumerate(figures)}
        specs = [{"fig": fig, "path": paths[name],
                  "opts": {"format": "png", "width": width, "height": fig.layout.height or EXPORT_HEIGHT, "scale": scale}}
                 for name, fig in figures.items()]
        try:
            _render(specs)
        except _RENDER_FAILED:
            _forget_renderer()
            try:
                _render(specs)
            except _RENDER_FAILED as exc:
                _forget_renderer()
                raise ExportError(f"PNG export failed ({exc}); is Chromium installed (apt-get install chromium)?") from exc
        return {name: path.read_bytes() for name, path in paths.items()}


def _render(specs: list[dict]) -> None:
    """Write each spec's figure to its path, in the running renderer (started if need be)."""
    loop, renderer = _kaleido()
    asyncio.run_coroutine_threadsafe(renderer.write_fig_from_object(specs, cancel_on_error=True), loop).result()


def png(fig: go.Figure, width: int = EXPORT_WIDTH, scale: float = EXPORT_SCALE) -> bytes:
    """The figure as PNG bytes (see `pngs`)."""
    return pngs({"chart": fig}, width, scale)["chart"]


def html(figures: dict[str, go.Figure], title: str) -> str:
    """One standalone HTML page (plotly.js inlined once, works offline) with every figure."""
    parts = [
        pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        for i, fig in enumerate(figures.values())
    ]
    body = "\n".join(f"<section>{part}</section>" for part in parts)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body style='font-family:sans-serif;max-width:1700px;margin:auto'><h1>{title}</h1>{body}</body></html>")


def stills(name: str, fig: go.Figure) -> dict[str, go.Figure]:
    """`fig` under `name`, or, when it is animated, one still per frame under `<name>_<frame>`
    (the frame's name, digits and a T kept: "2026-01-31 15:00" -> 20260131T1500): the figure as
    that frame sets its traces and layout, without the play controls and the room they took
    (`CONTROLS_PX`)."""
    if not fig.frames:
        return {name: fig}
    out = {}
    for frame in fig.frames:
        still = go.Figure(data=fig.data, layout=fig.layout)
        still.layout.sliders, still.layout.updatemenus = (), ()
        still.update_layout(margin_b=(fig.layout.margin.b or MARGIN_B + CONTROLS_PX) - CONTROLS_PX,
                            height=(fig.layout.height or EXPORT_HEIGHT + CONTROLS_PX) - CONTROLS_PX)
        for trace, changed in zip(still.data, frame.data, strict=True):
            trace.update(changed.to_plotly_json())
        key = "".join(c for c in frame.name.replace(" ", "T") if c.isdigit() or c == "T")
        out[f"{name}_{key}"] = still.update_layout(frame.layout.to_plotly_json())
    return out


def bundle(figures: dict[str, go.Figure], footer: str | Mapping[str, str], title: str,
           formats: tuple[str, ...] = ("png", "html"), assumptions: dict | None = None) -> dict[str, bytes]:
    """File name -> bytes: `<name>.png` per figure (per frame of an animated one, see `stills`) and
    `index.html` with all of them (animated ones playing), footers included, and a model's
    `assumptions` in full as `assumptions.json`.
    `footer`: one for every figure, or each figure's own by name (the badge the app shows under it)."""
    def footed(name: str, fig: go.Figure) -> go.Figure:
        return with_footer(fig, footer if isinstance(footer, str) else footer[name])

    files = {}
    if "png" in formats:
        each = {key: footed(name, still) for name, fig in figures.items() for key, still in stills(name, fig).items()}
        files = {f"{key}.png": data for key, data in pngs(each).items()}
    if "html" in formats:
        files["index.html"] = html({name: footed(name, fig) for name, fig in figures.items()}, title).encode()
    if assumptions:
        files["assumptions.json"] = json.dumps(assumptions, default=str, indent=2).encode()
    return files


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    # level 1: the HTML (7 MB with plotly.js inlined) deflates in 0.14 s instead of 0.31 s, 14 % larger
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in files.items():
            # PNG is compressed already: deflating it again took 0.35 s of a page's export for 1 %
            archive.writestr(name, data, zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def write(files: dict[str, bytes], out_dir: Path) -> list[Path]:
    """Write `files` into `out_dir` (created); return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        path = out_dir / name
        path.write_bytes(data)
        paths.append(path)
    return paths
