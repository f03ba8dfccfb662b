"""Charts to files: PNG through kaleido and the system Chromium, standalone HTML, a zip of both.

Every exported chart carries a footer (title, data range, source, fetch time, assumptions).
Kaleido's persistent browser is not thread-safe (plotly/Kaleido#444; TOOLCHAIN.md): every export
goes through one lock, and the browser is started on first use, not at import.
"""

from __future__ import annotations

import io
import json
import threading
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import kaleido
import plotly.graph_objects as go
import plotly.io as pio

from lib.charts.theme import EXPORT_HEIGHT, EXPORT_SCALE, EXPORT_WIDTH, MUTED, wrap

FOOTER_CHARS = 170
FOOTER_LINE_PX = 15
_LOCK = threading.Lock()
_server: dict[str, bool] = {"started": False}


class ExportError(RuntimeError):
    """An export could not be made; the message says why (e.g. Chromium is missing)."""


def with_footer(fig: go.Figure, footer: str) -> go.Figure:
    """A copy of `fig` with `footer` written under the plot, wrapped, the bottom margin grown to fit."""
    lines = wrap(footer, FOOTER_CHARS)
    out = go.Figure(fig)
    bottom = (out.layout.margin.b or 48) + FOOTER_LINE_PX * len(lines) + 24
    out.add_annotation(text="<br>".join(lines), xref="paper", yref="paper", x=0, y=0, xanchor="left", yanchor="top",
                       yshift=-(out.layout.margin.b or 48) + 4, showarrow=False, align="left",
                       font={"size": 10, "color": MUTED})
    return out.update_layout(margin={"b": bottom}, height=(out.layout.height or EXPORT_HEIGHT) + bottom - (out.layout.margin.b or 48))


def png(fig: go.Figure, width: int = EXPORT_WIDTH, scale: float = EXPORT_SCALE) -> bytes:
    """The figure as PNG bytes (its own height, `width` px wide, at `scale`)."""
    with _LOCK:
        try:
            if not _server["started"]:
                kaleido.start_sync_server(mathjax=False, silence_warnings=True)
                _server["started"] = True
            with warnings.catch_warnings():  # plotly passes options a running server ignores, and says so
                warnings.filterwarnings("ignore", message="The kopts argument is ignored")
                return fig.to_image(format="png", width=width, height=fig.layout.height or EXPORT_HEIGHT, scale=scale)
        except (RuntimeError, OSError, ValueError) as exc:
            raise ExportError(f"PNG export failed ({exc}); is Chromium installed (apt-get install chromium)?") from exc


def html(figures: dict[str, go.Figure], title: str) -> str:
    """One standalone HTML page (plotly.js inlined once, works offline) with every figure."""
    parts = [
        pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        for i, fig in enumerate(figures.values())
    ]
    body = "\n".join(f"<section>{part}</section>" for part in parts)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body style='font-family:sans-serif;max-width:1700px;margin:auto'><h1>{title}</h1>{body}</body></html>")


def bundle(figures: dict[str, go.Figure], footer: str | Mapping[str, str], title: str,
           formats: tuple[str, ...] = ("png", "html"), assumptions: dict | None = None) -> dict[str, bytes]:
    """File name -> bytes: `<name>.png` per figure and `index.html` with all of them, footers included,
    and a model's `assumptions` in full as `assumptions.json`.
    `footer`: one for every figure, or each figure's own by name (the badge the app shows under it)."""
    footed = {name: with_footer(fig, footer if isinstance(footer, str) else footer[name]) for name, fig in figures.items()}
    files = {f"{name}.png": png(fig) for name, fig in footed.items()} if "png" in formats else {}
    if "html" in formats:
        files["index.html"] = html(footed, title).encode()
    if assumptions:
        files["assumptions.json"] = json.dumps(assumptions, default=str, indent=2).encode()
    return files


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
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
