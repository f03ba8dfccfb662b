"""Exports: footers, standalone HTML, PNG through kaleido (guarded by a lock), and `python -m lib export`."""

from __future__ import annotations

import json
import struct
import zipfile
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import plotly.graph_objects as go
import pytest

from lib import export
from lib.cli import main
from lib.charts.theme import CONTROLS_PX, EXPORT_SCALE, EXPORT_WIDTH

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="PNG export needs Chromium (apt-get install chromium)")


def figure(height: int, title: str = "t") -> go.Figure:
    return go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]), layout={"height": height, "title": {"text": title}})


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_footer_is_added_to_a_copy_and_the_figure_grows() -> None:
    original = figure(400)
    footed = export.with_footer(original, "Data: binance bars 1h · covers 2024-01-01 to 2024-03-31 UTC")
    assert original.layout.annotations == ()
    assert "covers 2024-01-01" in footed.layout.annotations[0].text
    assert footed.layout.height > 400


def test_the_footer_starts_under_an_x_axis_title() -> None:
    """plotly grows the bottom margin for an axis title as it draws; a footer placed by the layout's
    margin alone was written over the title ("Price (USD)" of the liquidation map)."""
    plain = export.with_footer(figure(400), "Data: x")
    titled = export.with_footer(figure(400).update_xaxes(title_text="Price (USD)"), "Data: x")
    (under_plain,), (under_titled,) = (f.layout.annotations for f in (plain, titled))
    assert under_titled.yshift == under_plain.yshift - export.AXIS_TITLE_PX
    assert titled.layout.margin.b == plain.layout.margin.b + export.AXIS_TITLE_PX
    assert titled.layout.height == plain.layout.height + export.AXIS_TITLE_PX


def test_html_is_standalone_with_plotly_inlined_once() -> None:
    page = export.html({"a": figure(300, "first chart"), "b": figure(300, "second chart")}, "Cascade: test")
    assert page.count("plotly.js v") == 1  # the library's banner comment: inlined once, works offline
    assert "first chart" in page and "second chart" in page


@needs_chromium
def test_png_has_the_export_width_at_2x() -> None:
    width, height = png_size(export.png(figure(500)))
    assert width == EXPORT_WIDTH * EXPORT_SCALE
    assert height == 500 * EXPORT_SCALE


@needs_chromium
def test_concurrent_exports_each_get_their_own_image() -> None:
    heights = [300, 350, 400, 450, 500, 550]
    with ThreadPoolExecutor(max_workers=6) as pool:
        sizes = list(pool.map(lambda h: png_size(export.png(figure(h, f"h{h}"))), heights * 2))
    assert [h for _, h in sizes] == [h * EXPORT_SCALE for h in heights * 2]


@needs_chromium
def test_a_batch_of_pngs_gives_each_figure_its_own_image() -> None:
    heights = {"first": 300, "second": 420, "third": 360, "fourth": 510}  # rendered in parallel tabs
    images = export.pngs({name: figure(height, name) for name, height in heights.items()})
    assert list(images) == list(heights)
    assert {name: png_size(data)[1] for name, data in images.items()} == {n: h * EXPORT_SCALE for n, h in heights.items()}


@needs_chromium
def test_an_export_after_the_browser_died_starts_a_new_one() -> None:
    export.png(figure(300))
    browser = export._renderer["kaleido"].subprocess  # Chromium, as kaleido started it
    browser.kill()  # as the out-of-memory killer would
    browser.wait(10)
    assert png_size(export.png(figure(340)))[1] == 340 * EXPORT_SCALE


@needs_chromium
def test_bundle_zips_pngs_and_an_index(tmp_path: Path) -> None:
    files = export.bundle({"one": figure(300)}, "footer text", "Cascade: test")
    archive = zipfile.ZipFile(BytesIO(export.zip_bytes(files)))
    assert sorted(archive.namelist()) == ["index.html", "one.png"]
    assert "footer text" in archive.read("index.html").decode()
    stored = {info.filename: info.compress_type for info in archive.infolist()}
    assert stored == {"one.png": zipfile.ZIP_STORED, "index.html": zipfile.ZIP_DEFLATED}  # PNG is compressed already


@needs_chromium
def test_cli_export_writes_every_chart_of_a_page(tmp_path: Path, data_dir: Path, shared_data: Path, capsys) -> None:
    sample = shared_data / "samples" / "binance_spot_BTCUSDT_1h_2024-03.csv"
    assert main(["--data-dir", str(data_dir), "--quiet", "import", str(sample)]) == 0
    out = tmp_path / "out"
    assert main(["--data-dir", str(data_dir), "export", "--out", str(out), "--page", "drawdowns", "--assets", "BTC"]) == 0
    written = sorted(p.name for p in (out / "drawdowns").iterdir())
    assert written == ["drawdown_BTC.png", "episodes.png"]
    assert "2 files written" in capsys.readouterr().out


@pytest.mark.timeout(60)  # kaleido's own sync server waited forever here
def test_cli_export_without_chromium_fails_at_once_with_a_reason(tmp_path: Path, data_dir: Path, shared_data: Path,
                                                                 capsys, no_chromium) -> None:
    sample = shared_data / "samples" / "binance_spot_BTCUSDT_1h_2024-03.csv"
    assert main(["--data-dir", str(data_dir), "--quiet", "import", str(sample)]) == 0
    assert main(["--data-dir", str(data_dir), "export", "--out", str(tmp_path / "out"), "--page", "drawdowns"]) == 1
    assert "PNG export failed (No browser found" in (err := capsys.readouterr().err)
    assert "apt-get install chromium" in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_cli_export_on_an_empty_cache_fails_with_a_reason(tmp_path: Path, data_dir: Path, capsys) -> None:
    assert main(["--data-dir", str(data_dir), "export", "--out", str(tmp_path / "x")]) == 1
    assert "no bars are cached" in capsys.readouterr().err


def test_cli_export_into_a_folder_it_cannot_make_fails_with_a_reason(a_file: Path, data_dir: Path,
                                                                    shared_data: Path, capsys) -> None:
    sample = shared_data / "samples" / "binance_spot_BTCUSDT_1h_2024-03.csv"
    assert main(["--data-dir", str(data_dir), "--quiet", "import", str(sample)]) == 0
    args = ["--data-dir", str(data_dir), "export", "--out", str(a_file), "--page", "drawdowns", "--format", "html"]
    assert main(args) == 1
    assert f"cannot write into {a_file / 'drawdowns'}: " in capsys.readouterr().err  # no traceback


def test_the_cli_offers_every_page_and_replay_the_views_can_draw() -> None:
    from lib.cli import EXPORT_PAGES, REPLAY_MODES
    from lib.views import PAGES
    from lib.views import REPLAY_MODES as PLAYED

    assert EXPORT_PAGES == PAGES and REPLAY_MODES == tuple(PLAYED)


def test_cli_export_of_the_liquidations_page_writes_the_model_assumptions(tmp_path: Path, data_dir: Path,
                                                                         shared_data: Path) -> None:
    sample = shared_data / "samples" / "binance_spot_BTCUSDT_1h_2024-03.csv"
    assert main(["--data-dir", str(data_dir), "--quiet", "import", str(sample)]) == 0
    out = tmp_path / "out"
    assert main(["--data-dir", str(data_dir), "export", "--out", str(out), "--page", "liquidations", "--format", "html"]) == 0
    assert sorted(p.name for p in (out / "liquidations").iterdir()) == ["assumptions.json", "index.html"]
    assumptions = json.loads((out / "liquidations" / "assumptions.json").read_text())
    assert list(assumptions) == ["BTC"] and [tier["leverage"] for tier in assumptions["BTC"]["tiers"]] == [5, 10, 25, 50, 100]
    page = (out / "liquidations" / "index.html").read_text()
    assert page.count("Estimated by a model from these inputs") == 2  # the levels and the map (no totals: no scorecard)


def animated() -> go.Figure:
    """Two frames of one line, with the play controls and the room they take."""
    fig = go.Figure(go.Scatter(x=[1, 2], y=[1, 1]), layout={"height": 500 + CONTROLS_PX, "margin": {"b": 48 + CONTROLS_PX},
                                                             "sliders": [{"steps": [{"label": "a"}]}],
                                                             "updatemenus": [{"type": "buttons"}]})
    fig.frames = [go.Frame(name=name, data=[{"type": "scatter", "y": [level, level]}], layout={"title": {"text": name}})
                  for name, level in (("2026-01-31 15:00", 1), ("2026-01-31 23:00", 3))]
    return fig


def test_an_animated_figure_exports_a_still_per_frame() -> None:
    stills = export.stills("replay_BTC", animated())
    assert list(stills) == ["replay_BTC_20260131T1500", "replay_BTC_20260131T2300"]
    for still, level, name in zip(stills.values(), (1, 3), ("2026-01-31 15:00", "2026-01-31 23:00"), strict=True):
        assert list(still.data[0].y) == [level, level] and list(still.data[0].x) == [1, 2]  # the frame's y, the figure's x
        assert still.layout.title.text == name
        assert not still.layout.sliders and not still.layout.updatemenus and not still.frames
        assert (still.layout.height, still.layout.margin.b) == (500, 48)  # without the controls' room
    still = figure(400)
    assert export.stills("one", still) == {"one": still}  # a figure without frames is its own still


@needs_chromium
def test_a_bundle_renders_each_frame_and_keeps_the_animation_in_the_html() -> None:
    files = export.bundle({"replay_BTC": animated()}, "Data: a footer", "Cascade: test")
    assert sorted(files) == ["index.html", "replay_BTC_20260131T1500.png", "replay_BTC_20260131T2300.png"]
    assert files["replay_BTC_20260131T1500.png"] != files["replay_BTC_20260131T2300.png"]
    assert png_size(files["replay_BTC_20260131T1500.png"]) == (EXPORT_WIDTH * EXPORT_SCALE, (500 + 24 + 15) * EXPORT_SCALE)
    assert "Plotly.addFrames" in files["index.html"].decode()  # the HTML plays


def test_cli_export_plays_the_liquidation_map_over_the_window(tmp_path: Path, data_dir: Path, shared_data: Path) -> None:
    sample = shared_data / "samples" / "binance_spot_BTCUSDT_1h_2024-03.csv"
    assert main(["--data-dir", str(data_dir), "--quiet", "import", str(sample)]) == 0
    out = tmp_path / "out"
    assert main(["--data-dir", str(data_dir), "export", "--out", str(out), "--page", "liquidations", "--assets", "BTC",
                 "--format", "html", "--replay"]) == 0
    page = (out / "liquidations" / "index.html").read_text()
    assert "BTC liquidation map, replayed" in page and "Plotly.addFrames" in page and '"label":"Play"' in page
    assert '"name":"2024-03-31 23:00"' in page  # its last step: the last bar of the window

    assert main(["--data-dir", str(data_dir), "export", "--out", str(out), "--page", "liquidations", "--assets", "BTC",
                 "--format", "html", "--replay", "bars"]) == 0
    page = (out / "liquidations" / "index.html").read_text()
    assert "BTC liquidation map, replayed bar by bar to 2024-03-31 23:00 UTC" in page
    assert '"name":"2024-03-29 12:00"' in page and '"name":"2024-03-29 11:00"' not in page  # the last 60 bars
