"""AppTest: the app starts on the demo market and on a cache built from ../shared/data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from streamlit.runtime.state.common import user_key_from_element_id
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Node

from lib import export, ui
from lib.cli import main
from lib.config import PROJECT_ROOT, load_settings
from lib.provenance import DEMO_PREFIX, ESTIMATED, MEASURED
from lib.store import Store
from lib.ui import DEMO_BANNER
from lib.views import PageExport, badge_maker, page_exports
from lib.viewstate import choices_from_status, parse_view

APP = str(PROJECT_ROOT / "app.py")
TIMEOUT = 120


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data not found at {SHARED_DATA}")
    root = tmp_path_factory.mktemp("real")
    files = [  # the REST files (to May 2026) first, then the richer archive files over them
        *sorted((SHARED_DATA / "ohlcv").glob("binance_spot_*USDT_1h_ohlcv.parquet")),
        *sorted((SHARED_DATA / "ohlcv").glob("binance_spot_*USDT_1h.parquet")),
        SHARED_DATA / "liquidations" / "coinglass_BTC_liquidations_agg_1h.parquet",
        SHARED_DATA / "liquidations" / "coinglass_liquidations_agg_1d.parquet",
        SHARED_DATA / "derivatives" / "binance_usdm_BTCUSDT_funding_rate.parquet",
    ]
    assert main(["--data-dir", str(root), "--quiet", "import", *map(str, files)]) == 0
    return root


def run_app(monkeypatch: pytest.MonkeyPatch, data_dir: Path, page: str = "pages/data.py", **query: str) -> AppTest:
    monkeypatch.setenv("CASCADE_DATA_DIR", str(data_dir))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def charts(at: AppTest) -> dict[str, dict]:
    return {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def banners(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def in_page_order(node: Node) -> Iterator[Node]:
    yield node
    for index in sorted(getattr(node, "children", {})):
        yield from in_page_order(node.children[index])


def badges(at: AppTest) -> dict[str, str | None]:
    """Each chart's key -> the caption right under it (its provenance badge), or None if there is none."""
    leaves = [node for node in in_page_order(at.main) if not isinstance(node, Block)]
    return {user_key_from_element_id(chart.proto.id): under.value if under.type == "caption" else None
            for chart, under in pairwise(leaves) if chart.type == "plotly_chart"}


def test_empty_cache_shows_the_demo_market_with_its_banner(monkeypatch, data_dir: Path) -> None:
    at = run_app(monkeypatch, data_dir)
    assert DEMO_BANNER in banners(at)
    table = at.dataframe[0].value
    assert set(table["exchange"]) == {"demo"}
    assert {"bars", "liquidations", "funding", "open_interest", "depth"} <= set(table["dataset"])


def test_a_data_directory_that_cannot_be_made_says_so_on_every_page(monkeypatch, a_file: Path) -> None:
    for page in ANALYTICS_PAGES:
        at = run_app(monkeypatch, a_file / "cache", page)  # no exception on the way
        assert [e.value for e in at.error if f"No bars are cached in {a_file / 'cache'}" in e.value
                and "Not a directory" in e.value], page
        assert not at.get("plotly_chart")


def test_real_cache_has_no_demo_banner_and_lists_every_series(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache)
    assert DEMO_BANNER not in banners(at)
    table = at.dataframe[0].value
    btc = table[(table["dataset"] == "bars") & (table["symbol"] == "BTC")].iloc[0]
    assert btc["rows"] == 73_266  # 2018-01 .. 2026-05 (the 43 off-grid 2018 archive bars give way to the REST's)
    assert btc["gaps"] == 27
    assert btc["first"] == "2018-01-01 00:00"
    assert "liquidation_totals" in set(table["dataset"])
    assert json.loads(at.dataframe[0].proto.columns)["rows"]["type_config"]["format"] == "%,d"  # 73,266


def test_gaps_are_listed_for_each_series_with_holes(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache)
    labels = [e.label for e in at.expander]
    assert any("bars binance BTC 1h: 27 gaps" in label for label in labels)


def test_corrupt_cache_file_is_reported_not_fatal(monkeypatch, tmp_path: Path, real_cache: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(real_cache, copy)
    victim = next(copy.glob("dataset=bars/exchange=binance/symbol=ETH/timeframe=1h/year=2020/data.parquet"))
    victim.write_bytes(b"garbage")
    at = run_app(monkeypatch, copy)
    at.run()  # the first run's scan moved the file; the page reports it on the next run too
    assert any("quarantine" in e.value for e in at.error)


def test_a_page_the_legacy_pages_mode_started_late_is_routed_through_app_py(monkeypatch, data_dir: Path) -> None:
    """Two links opened at once on a fresh server: Streamlit picks its legacy pages/ mode for the
    second run, then the first run switches that mode off before the second's page checks it.
    The page must still rerun through app.py (its navigation, not one with "app" and "login")."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import script_runner

    registered: list[set[str]] = []
    register = PagesManager.set_pages_and_resolve
    legacy_run = script_runner._mpa_v1

    def recorded(self: PagesManager, pages: dict, *args: object, **kwargs: object) -> object:
        registered.append({page["url_pathname"] for page in pages.values()})
        return register(self, pages, *args, **kwargs)

    def switched_off_meanwhile(main_script_path: str) -> None:
        PagesManager.uses_pages_directory = False  # by the other session's run of app.py
        legacy_run(main_script_path)

    monkeypatch.setattr(PagesManager, "set_pages_and_resolve", recorded)
    monkeypatch.setattr(script_runner, "_mpa_v1", switched_off_meanwhile)
    monkeypatch.setenv("CASCADE_DATA_DIR", str(data_dir))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).switch_page("pages/liquidity.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert "login" in registered[0]  # the legacy run started...
    assert registered[-1] == {"", "drawdowns", "liquidity", "liquidations", "data", "overview"}  # ...app.py ended it
    assert [t.value for t in at.title] == ["Weekend vs weekday liquidity"]


def test_drawdowns_page_on_demo_data(monkeypatch, data_dir: Path) -> None:
    at = run_app(monkeypatch, data_dir, "pages/drawdowns.py")
    assert DEMO_BANNER in banners(at)
    assert len(charts(at)) == 5  # one per asset, the episode scatter, the comparison
    episodes = at.dataframe[1].value
    assert set(episodes["Asset"]) == {"BTC", "ETH", "SOL"}
    assert (episodes["Depth (%)"] < 0).all()
    shown_as = json.loads(at.dataframe[1].proto.columns)  # "-70.0" beside "-63.2", not "-70"
    assert shown_as["Depth (%)"]["type_config"]["format"] == "%.1f"


def test_drawdowns_page_finds_the_oct_2025_to_feb_2026_episode(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache, "pages/drawdowns.py", assets="BTC", exchange="binance", timeframe="1h",
                 start="2025-06-01", end="2026-05-16")
    assert DEMO_BANNER not in banners(at)
    deepest = at.dataframe[1].value.iloc[0]
    assert deepest["Peak (UTC)"] == "2025-10-06 18:00"  # the highest close, checked by hand
    assert deepest["Trough (UTC)"] == "2026-02-24 13:00"  # the lowest close after it, 62,900
    assert deepest["Recovered (UTC)"] == "still under water"
    assert "In liquidation bursts (%)" in at.dataframe[1].value.columns


def test_selecting_an_episode_zooms_the_chart(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache, "pages/drawdowns.py", assets="BTC", start="2025-06-01", end="2026-05-16")
    before = [spec for spec in charts(at).values() if "drawdown from the running peak" in json.dumps(spec["layout"].get("title"))]
    whole = before[0]["layout"]["xaxis"]["range"]  # the data's span, first bar to last
    assert whole[0].startswith("2025-06-01T00:00:00")
    at.session_state[ui.PICKED_EPISODE] = "BTC 2025-10-06 18:00"  # what a click on its row or its marker leaves
    at.run()
    after = [spec for spec in charts(at).values() if "drawdown from the running peak" in json.dumps(spec["layout"].get("title"))]
    assert after[0]["layout"]["xaxis"]["range"][0].startswith("2025-09")
    at.session_state[ui.PICKED_EPISODE] = None  # the zoom was made on a copy: the figures shared by sessions are whole
    at.run()
    again = [spec for spec in charts(at).values() if "drawdown from the running peak" in json.dumps(spec["layout"].get("title"))]
    assert again[0]["layout"]["xaxis"]["range"] == whole


def test_an_episode_whose_label_gave_way_is_labelled_when_picked(monkeypatch, real_cache: Path) -> None:
    # ETH from Oct 2025: four small episodes in the first ten days, too close to label them all.
    at = run_app(monkeypatch, real_cache, "pages/drawdowns.py", assets="ETH", start="2025-10-01", end="2026-05-16")

    def chart() -> dict:
        return next(spec for spec in charts(at).values() if "drawdown from the running peak" in json.dumps(spec["layout"]))

    def troughs() -> dict:
        return next(trace for trace in chart()["data"] if trace.get("name") == "Episode troughs")

    whole = troughs()
    hidden = [episode for episode, text in zip(whole["customdata"], whole["text"]) if not text]
    assert hidden and len(hidden) < len(whole["text"])
    at.session_state[ui.PICKED_EPISODE] = hidden[0]
    at.run()
    zoomed = troughs()
    assert zoomed["text"][zoomed["customdata"].index(hidden[0])].startswith("#")
    # the axes fit the episode (-1.8 %, ETH near 4,500), not the year's -62 % and 1,800-4,900
    low, high = chart()["layout"]["yaxis"]["range"]
    assert 4_300 < low < high < 4_700
    assert -0.05 < chart()["layout"]["yaxis2"]["range"][0] < -0.018
    at.toggle(key="dd_log").set_value(True).run()
    assert 3.6 < chart()["layout"]["yaxis"]["range"][0] < 3.66  # log10(4,450): a log axis ranges in powers of ten


def test_hostile_query_string_falls_back_with_a_note(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache, "pages/drawdowns.py", assets="<script>alert(1)</script>",
                 timeframe="1h; DROP TABLE", start="2999-99-99")
    assert not at.exception
    assert at.query_params["assets"] == ["BTC,ETH,SOL"] or at.query_params["assets"] == "BTC,ETH,SOL"
    notes = [c.value for c in at.sidebar.caption if "Link:" in c.value]
    assert any("unknown asset" in n for n in notes) and any("unknown timeframe" in n for n in notes)


def test_an_empty_link_value_falls_back_with_a_note(monkeypatch, data_dir: Path) -> None:
    at = run_app(monkeypatch, data_dir, "pages/drawdowns.py", assets="", weekend=" ")
    assert at.query_params["assets"] in ("BTC,ETH,SOL", ["BTC,ETH,SOL"])
    notes = [c.value for c in at.sidebar.caption if "Link:" in c.value]
    assert any("empty 'assets'" in n for n in notes) and any("empty 'weekend'" in n for n in notes)


def test_liquidations_page_on_demo_data_says_so(monkeypatch, data_dir: Path) -> None:
    at = run_app(monkeypatch, data_dir, "pages/liquidations.py")
    assert DEMO_BANNER in banners(at)
    titles = [json.dumps(spec["layout"]["title"]) for spec in charts(at).values()]
    assert len(titles) == 4  # realised, estimated, map, scorecard
    assert any("estimated liquidation levels" in t and "Estimated, not measured" in t for t in titles)


def estimated_heatmap(at: AppTest) -> dict:
    spec = next(s for s in charts(at).values() if "estimated liquidation levels" in json.dumps(s["layout"]["title"]))
    return next(trace for trace in spec["data"] if trace["type"] == "heatmap")


def test_the_estimated_colour_scale_is_shared_by_the_views_assets(monkeypatch, data_dir: Path) -> None:
    def shown(symbol: str, **choices: str) -> dict:
        return estimated_heatmap(run_app(monkeypatch, data_dir, "pages/liquidations.py", liq_symbol=symbol, **choices))

    own = {symbol: shown(symbol, assets=symbol) for symbol in ("BTC", "SOL")}  # alone: each its own maximum
    assert "shared" not in own["BTC"]["colorbar"]["title"]["text"]
    together = {symbol: shown(symbol, assets="BTC,SOL") for symbol in ("BTC", "SOL")}
    top = max(trace["zmax"] for trace in own.values())
    assert together["BTC"]["zmax"] == together["SOL"]["zmax"] == pytest.approx(top)
    assert own["SOL"]["zmax"] < top / 2  # SOL's levels are far smaller: the shared scale shows it
    assert "scale shared by SOL, BTC" in together["SOL"]["colorbar"]["title"]["text"]
    relative = shown("SOL", assets="BTC,SOL", liq_relative="true")
    assert relative["zmax"] == 1 and "shared" not in relative["colorbar"]["title"]["text"]


def test_liquidations_preset_replays_the_jan_feb_2026_cascades(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache, "pages/liquidations.py", assets="BTC", exchange="binance", timeframe="1h")
    at.sidebar.button(key="liq_preset").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.query_params["start"] in ("2026-01-24", ["2026-01-24"])
    bursts = at.dataframe[0].value
    assert bursts.iloc[0]["Window start (UTC)"] == "2026-02-05 20:00"
    assert "2026-01-31" in " ".join(bursts["Window start (UTC)"])
    realised = next(s for s in charts(at).values() if "realised" in json.dumps(s["layout"]["title"]))
    assert "Measured" in json.dumps(realised["layout"]["title"])


def test_liquidations_page_names_the_timeframes_that_hold_an_assets_totals(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache, "pages/liquidations.py", assets="ETH", exchange="binance", timeframe="1h",
                 start="2025-05-17", end="2026-05-17")
    (info,) = [i.value for i in at.info if "liquidation totals for ETH" in i.value]
    assert "Other timeframes have some (1d: 2025-05-17 to 2025-09-08): pick one in the sidebar." in info, info
    later = run_app(monkeypatch, real_cache, "pages/liquidations.py", assets="ETH", exchange="binance", timeframe="1h",
                    start="2026-01-20", end="2026-02-12")
    assert not [i.value for i in later.info if "Other timeframes" in i.value]  # none holds ETH in 2026


def test_a_timeframe_without_bars_names_the_ones_with_some(monkeypatch, tmp_path: Path, shared_data: Path) -> None:
    """Binance's daily bars end in 2025: a 1d view of the 2026 selloff says the hourly bars hold it."""
    files = [shared_data / "ohlcv" / f"binance_spot_BTCUSDT_{name}.parquet" for name in ("1d", "1h_ohlcv")]
    assert main(["--data-dir", str(tmp_path), "--quiet", "import", *map(str, files)]) == 0
    for page in ("pages/liquidations.py", "pages/drawdowns.py"):
        at = run_app(monkeypatch, tmp_path, page, assets="BTC", exchange="binance", timeframe="1d",
                     start="2026-01-30", end="2026-02-07")
        (warning,) = [w.value for w in at.warning]
        assert warning.startswith("No 1d bars from binance for BTC between 2026-01-30 and 2026-02-07."), warning
        assert "Other timeframes have some (1h: 2026-01-30 to 2026-02-07): pick one in the sidebar." in warning


def test_a_range_outside_the_series_says_where_it_is_and_moves_there(monkeypatch, tmp_path: Path,
                                                                     shared_data: Path) -> None:
    """Binance's daily BTC bars run 2018 to 2025 (its hourly ones into 2026): a 1d view of February
    2026 names that span, and its button moves the view to as many days at the end of it."""
    files = [shared_data / "ohlcv" / f"binance_spot_BTCUSDT_{name}.parquet" for name in ("1d", "1h_ohlcv")]
    assert main(["--data-dir", str(tmp_path), "--quiet", "import", *map(str, files)]) == 0
    at = run_app(monkeypatch, tmp_path, "pages/drawdowns.py", assets="BTC", exchange="binance", timeframe="1d",
                 start="2026-01-30", end="2026-02-07")
    (warning,) = [w.value for w in at.warning]
    assert "Its 1d bars cover 2018-01-01 to 2025-12-31." in warning, warning
    at.button(key="to_cached_span").click().run()
    assert not at.warning and not at.exception
    assert (at.query_params["start"], at.query_params["end"]) in (("2025-12-23", "2025-12-31"),
                                                                  (["2025-12-23"], ["2025-12-31"]))
    assert charts(at)


def test_liquidation_map_replays_a_past_step(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache, "pages/liquidations.py", assets="BTC", exchange="binance", timeframe="1h",
                 start="2026-01-24", end="2026-02-12")
    at.slider(key="liq_step").set_value(datetime(2026, 1, 31, 6, tzinfo=UTC)).run()
    assert not at.exception, [e.message for e in at.exception]
    titles = [json.dumps(spec["layout"]["title"]) for spec in charts(at).values()]
    assert any("liquidation map at 2026-01-31 06:00 UTC" in t for t in titles)


def test_a_link_can_play_the_window(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache, "pages/liquidations.py", assets="BTC", exchange="binance", timeframe="1h",
                 start="2026-01-24", end="2026-02-12", liq_play="true")
    assert not at.exception, [e.message for e in at.exception]
    (replayed,) = [s for s in charts(at).values() if "liquidation map, replayed" in json.dumps(s["layout"]["title"])]
    names = [frame["name"] for frame in replayed["frames"]]
    assert len(names) == 60 and names[-1] == "2026-02-12 23:00"  # 480 bars: every 8th, ending at the last
    assert names[0] == "2026-01-24 07:00" and "2026-01-31 07:00" in names  # Saturday morning, before the cascade
    assert [step["label"] for step in replayed["layout"]["sliders"][0]["steps"]] == names
    marked = [trace.get("name") for trace in replayed["data"][-2:]]
    assert marked == ["Longs liquidated", "Shorts liquidated"]  # BTC's hourly totals are cached
    assert all(len(frame["data"]) == len(replayed["data"]) for frame in replayed["frames"])
    assert all("range over 9 assumption sets" in frame["layout"]["title"]["subtitle"]["text"]  # 1,920 bars: shaded
               for frame in replayed["frames"])

    at.radio(key="liq_play_steps").set_value("bars").run()  # bar by bar up to the map's time
    at.slider(key="liq_step").set_value(datetime(2026, 1, 31, 23, tzinfo=UTC)).run()
    assert not at.exception, [e.message for e in at.exception]
    (by_bar,) = [s for s in charts(at).values() if "replayed bar by bar" in json.dumps(s["layout"]["title"])]
    names = [frame["name"] for frame in by_bar["frames"]]
    assert (len(names), names[0], names[-1]) == (60, "2026-01-29 12:00", "2026-01-31 23:00")

    exported: dict[str, dict] = {}  # what goes into the zip (export.bundle draws each frame: tests/test_export.py)
    monkeypatch.setattr(export, "bundle", lambda figures, footer, title, **_: exported.update(
        {name: (len(fig.frames), footer[name]) for name, fig in figures.items()}) or {})
    build = next(b for b in at.button if b.label == "Build the zip")
    build.click().run()
    assert "replay" not in exported  # a minute of PNGs, only when asked
    at.checkbox(key="liquidations_BTC_export_optional").check().run()
    next(b for b in at.button if b.label == "Build the zip").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert exported["replay"] == (60, exported["map"][1])  # animated, with the map's badge as its footer


def test_the_fragility_table_gives_the_range_over_other_assumptions(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache, "pages/liquidations.py", assets="BTC", exchange="binance", timeframe="1h",
                 start="2026-01-24", end="2026-02-12")
    table = next(frame.value for frame in at.dataframe if "Move" in frame.value.columns)
    ranges = table["Range over 9 assumption sets"].to_list()
    assert len(ranges) == len(table) and all("–" in text for text in ranges), ranges
    assert any(c.value.startswith("Range: the model re-run under each split rule") for c in at.caption)
    mapped = next(s for s in charts(at).values() if "liquidation map" in json.dumps(s["layout"]["title"]))
    assert sum(trace.get("fill") == "tonexty" for trace in mapped["data"]) == 2  # a band per curve
    made = export_of(real_cache, {"assets": "BTC", "start": "2026-01-24", "end": "2026-02-12"}, "liquidations")
    assert sum(trace.type == "scatter" and trace.fill == "tonexty" for trace in made.figures["map_BTC"].data) == 2  # the export's map too


def test_a_view_of_too_many_bars_for_the_range_says_so(monkeypatch, data_dir: Path) -> None:
    from lib.analytics import liquidation_levels

    monkeypatch.setattr(liquidation_levels, "SPREAD_MAX_BARS", 100)
    at = run_app(monkeypatch, data_dir, "pages/liquidations.py", liq_split="direction")  # its own cache entry
    table = next(frame.value for frame in at.dataframe if "Move" in frame.value.columns)
    assert not [column for column in table.columns if column.startswith("Range")]
    assert any(c.value.startswith("No range over other assumptions: the re-runs stop at 100 bars") for c in at.caption)


def test_liquidity_page_on_demo_data(monkeypatch, data_dir: Path) -> None:
    at = run_app(monkeypatch, data_dir, "pages/liquidity.py")
    assert DEMO_BANNER in banners(at)
    verdicts = [m.value for m in at.markdown if m.value.startswith("**")]
    assert len(verdicts) == 3 and all("weekday" in v for v in verdicts)
    assert "cascades" in " ".join(charts(at))  # the synthetic Jan 31 / Feb 5 events are compared too


def test_the_edge_measure_is_computed_when_picked_without_the_toggle(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache, "pages/liquidity.py", assets="BTC", exchange="binance", timeframe="1h",
                 start="2025-11-01", end="2026-03-01", lq_measure="EDGE spread estimate")
    assert not at.toggle(key="lq_edge").value
    (verdict,) = [m.value for m in at.markdown if m.value.startswith("**BTC")]
    assert "Weekend BTC EDGE spread is" in verdict and "not enough data" not in verdict, verdict


def test_both_cascades_have_their_share_of_the_week(monkeypatch, real_cache: Path) -> None:
    """The Feb 5-6 cascade's UTC week runs to Monday 9 Feb: the bars read for the comparison must
    reach it, or its share of the week (90 % of the week's bars needed) is missing."""
    at = run_app(monkeypatch, real_cache, "pages/liquidity.py", assets="BTC", exchange="binance", timeframe="1h",
                 start="2025-11-01", end="2026-03-01")
    (cascades,) = [spec for key, spec in charts(at).items() if "cascades" in key]
    shares = {trace["name"]: dict(zip(trace["y"], trace["x"], strict=True)).get("Share of the week's volume per bar")
              for trace in cascades["data"]}
    assert set(shares) == {"Sat 31 Jan 2026 cascade", "Thu-Fri 5-6 Feb 2026 cascade"}
    assert all(share is not None for share in shares.values()), shares


def test_the_one_asset_charts_show_the_first_asset_and_name_only_its_files(monkeypatch, real_cache: Path) -> None:
    """With three assets the cascades chart is the first one's (it was whichever a hash group-by put
    first), and its badge and the share of the week's name that asset's files only."""
    at = run_app(monkeypatch, real_cache, "pages/liquidity.py", exchange="binance", timeframe="1h",
                 start="2026-01-19", end="2026-02-15")
    (cascades,) = [spec for key, spec in charts(at).items() if "cascades" in key]
    assert cascades["layout"]["title"]["text"].startswith("BTC liquidity in the cascades")
    shown = badges(at)
    for name in ("lq_chart_cascades", "lq_chart_share_of_week"):
        assert "BTCUSDT" in shown[name] and "ETHUSDT" not in shown[name] and "SOLUSDT" not in shown[name], shown[name]


def test_liquidity_page_verdict_on_real_btc(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache, "pages/liquidity.py", assets="BTC", exchange="binance", timeframe="1h",
                 start="2024-01-01", end="2025-12-31")
    (verdict,) = [m.value for m in at.markdown if m.value.startswith("**BTC")]
    assert "Weekend BTC quote volume is 51 % lower than on weekdays" in verdict
    assert "significant at 5 %" in verdict and "not significant" not in verdict


def test_liquidity_page_on_daily_bars_has_no_hour_of_week_heatmaps(monkeypatch, tmp_path: Path,
                                                                   shared_data: Path) -> None:
    """Daily bars would fill the 00:00 column of each day and nothing else."""
    assert main(["--data-dir", str(tmp_path), "--quiet", "import",
                 str(shared_data / "ohlcv" / "binance_spot_BTCUSDT_1d.parquet")]) == 0
    at = run_app(monkeypatch, tmp_path, "pages/liquidity.py", assets="BTC", exchange="binance", timeframe="1d",
                 start="2024-01-01", end="2025-12-31")
    assert not at.exception and [m.value for m in at.markdown if m.value.startswith("**BTC")]
    assert any("need bars shorter than a day" in i.value for i in at.info)
    titles = [json.dumps(spec["layout"]["title"]) for spec in charts(at).values()]
    assert titles and not [t for t in titles if "by hour of the week" in t]  # the day-of-week charts and the rest


def test_liquidity_page_estimates_the_2026_quote_volume_the_rest_bars_lack(monkeypatch, real_cache: Path) -> None:
    """The REST bars of 2026 carry base volume only: the quote-volume charts of the selloff are
    estimated, and each one's badge says so; turned off, the page has no quote volume to show."""
    window = {"assets": "BTC", "exchange": "binance", "timeframe": "1h", "start": "2026-01-05", "end": "2026-02-27"}
    at = run_app(monkeypatch, real_cache, "pages/liquidity.py", **window)
    (verdict,) = [m.value for m in at.markdown if m.value.startswith("**BTC")]
    assert "Weekend BTC quote volume is" in verdict and "lower than on weekdays" in verdict
    badges = [c.value for c in at.caption if c.value.startswith("Data: ")]
    assert len(badges) == 7
    # 2026's rows come from the REST file (base volume only), not from the archive imported after it
    assert "(from file:binance_spot_BTCUSDT_1h_ohlcv.parquet)" in badges[0], badges[0]
    # 54 days of hourly bars: the heatmap, day-of-week bars, boxes, daily series and share of the week
    assert sum("Measured. Quote volume estimated for 1,296 of 1,296 bars as volume × (high" in b for b in badges) == 5
    assert "Quote volume estimated for 936 of 1,056 bars" in badges[-1]  # the cascades' own window, to Mon 9 Feb
    assert "estimated" not in badges[-2]  # Friday close to Monday open: prices only
    off = run_app(monkeypatch, real_cache, "pages/liquidity.py", **window, lq_qv_estimate="false")
    (verdict,) = [m.value for m in off.markdown if m.value.startswith("**BTC")]
    assert "Weekend BTC quote volume is" not in verdict, verdict
    assert not [c.value for c in off.caption if "estimated for" in c.value]


def test_the_view_follows_the_user_across_pages_and_into_the_link(monkeypatch, data_dir: Path) -> None:
    at = run_app(monkeypatch, data_dir, "pages/drawdowns.py")
    at.sidebar.multiselect(key="view_assets").set_value(["ETH"]).run()
    assert at.query_params["assets"] in ("ETH", ["ETH"])
    at.switch_page("pages/liquidity.py").run()
    assert not at.exception
    assert [m.value[:8] for m in at.markdown if m.value.startswith("**")] == ["**ETH:**"]
    assert at.query_params["assets"] in ("ETH", ["ETH"])


def test_data_page_says_when_a_collector_is_down(monkeypatch, data_dir: Path) -> None:
    from lib.store import Store

    Store(data_dir).heartbeat("bybit-liquidations", {"last_seen": "2026-01-31T18:00:00+00:00", "state": "running",
                                                     "heartbeat_seconds": 10})
    at = run_app(monkeypatch, data_dir)
    assert any("bybit-liquidations: collector down: last seen" in c.value for c in at.caption)


ANALYTICS_PAGES = ("pages/overview.py", "pages/drawdowns.py", "pages/liquidity.py", "pages/liquidations.py")


@pytest.mark.parametrize("page", ANALYTICS_PAGES)
def test_every_chart_has_its_provenance_badge_and_exports_it_as_its_footer(monkeypatch, data_dir: Path, page: str) -> None:
    footers: dict[str, str] = {}
    monkeypatch.setattr(export, "bundle", lambda figures, footer, title, **_: footers.update(footer) or {})  # no Chromium
    at = run_app(monkeypatch, data_dir, page)
    next(b for b in at.button if b.label == "Build the zip").click().run()
    assert not at.exception, [e.message for e in at.exception]
    shown = badges(at)
    assert footers and len(shown) == len(footers)
    for name, footer in footers.items():
        (key,) = [key for key in shown if key.endswith(f"_{name}")]
        assert shown[key] == footer, name
        assert footer.startswith(DEMO_PREFIX.strip()) and "Data: demo " in footer
        assert (ESTIMATED in footer) == (page == "pages/liquidations.py" and name != "realised")


@pytest.mark.timeout(120)  # kaleido's own sync server waited forever here
def test_export_all_without_chromium_says_so_and_the_page_stays(monkeypatch, data_dir: Path, no_chromium) -> None:
    at = run_app(monkeypatch, data_dir, "pages/drawdowns.py")
    charts = len(at.get("plotly_chart"))
    next(b for b in at.button if b.label == "Build the zip").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert [e.value for e in at.error if "PNG export failed (No browser found" in e.value]
    assert len(at.get("plotly_chart")) == charts
    assert "drawdowns_export_download" not in [b.key for b in at.get("download_button")]  # no zip offered


def test_each_asset_chart_names_its_own_series_and_gaps(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache, "pages/drawdowns.py", assets="BTC,ETH", start="2018-01-01", end="2026-05-16")
    shown = badges(at)
    btc, eth = shown["dd_chart_drawdown_BTC"], shown["dd_chart_drawdown_ETH"]
    assert "binance bars 1h" in btc and btc.endswith(MEASURED) and DEMO_PREFIX.strip() not in btc
    gaps = {name: int(text.split(" gap(s) in range")[0].rsplit(" ", 1)[-1]) for name, text in shown.items()}
    assert gaps["dd_chart_drawdown_BTC"] == 27  # BTC's own holes (the Data page lists 27)
    assert gaps["dd_chart_episodes"] == gaps["dd_chart_drawdown_BTC"] + gaps["dd_chart_drawdown_ETH"]
    assert "2018-01-01 00:00 to 2026-05-1" in eth


def export_of(real_cache: Path, query: dict[str, str], page: str) -> PageExport:
    """What `python -m lib export` draws of `page` for the link `query` on the real cache."""
    store = Store(real_cache)
    status = store.status()
    view, notes = parse_view(query, choices_from_status(status, load_settings(data_dir=real_cache).assets))
    assert not notes
    return page_exports(store.read, badge_maker(status, view, is_demo=False), page, view)


@pytest.mark.parametrize(("page", "key"), [("drawdowns", "dd_chart_{}"), ("liquidity", "lq_chart_{}"),
                                           ("liquidations", "liq_{}")])
def test_the_command_line_export_footers_are_the_badges_the_page_shows(monkeypatch, real_cache: Path, page: str,
                                                                      key: str) -> None:
    query = {"assets": "BTC", "start": "2026-01-01", "end": "2026-03-31"}
    shown = badges(run_app(monkeypatch, real_cache, f"pages/{page}.py", **query))
    made = export_of(real_cache, query, page)
    assert made.footers.keys() == made.figures.keys()
    assert made.assumptions.keys() == ({"BTC"} if page == "liquidations" else set())
    for name, footer in made.footers.items():  # the export draws every asset's liquidation charts: names end in _BTC
        assert footer == shown[key.format(name.removesuffix("_BTC") if page == "liquidations" else name)], name


def test_the_export_shares_the_estimated_colour_scale_as_the_page_does(monkeypatch, real_cache: Path) -> None:
    query = {"assets": "BTC,ETH", "start": "2026-01-01", "end": "2026-03-31"}
    made = export_of(real_cache, query, "liquidations")
    exported = {symbol: next(t for t in made.figures[f"estimated_{symbol}"].data if t.type == "heatmap")
                for symbol in ("BTC", "ETH")}
    assert exported["BTC"].zmax == exported["ETH"].zmax
    assert all("scale shared by" in trace.colorbar.title.text for trace in exported.values())
    page = estimated_heatmap(run_app(monkeypatch, real_cache, "pages/liquidations.py", liq_symbol="ETH", **query))
    assert page["zmax"] == pytest.approx(exported["ETH"].zmax)


# --- a new tab's first screen (AppTest sends no request headers: `browser_like` makes it look like a browser)

CONTROLS = ("multiselect", "selectbox", "date_input", "radio", "slider", "checkbox", "toggle", "number_input", "button")
FIRST_SCREEN_LINKS = {  # each page's own choices away from their defaults, with the controls that show them
    "pages/overview.py": ({"ov_limit_drop_24h": "2.5"}, {"ov_limit_drop_24h": 2.5}),
    "pages/drawdowns.py": ({"dd_top": "3", "dd_threshold": "35", "dd_log": "true"},
                           {"dd_top": 3, "dd_threshold": 35, "dd_log": True}),
    "pages/liquidity.py": ({"lq_tz": "Asia/Tokyo", "lq_stat": "median", "lq_qv_estimate": "false"},
                           {"lq_tz": "Asia/Tokyo", "lq_stat": "median", "lq_qv_estimate": False}),
    "pages/liquidations.py": ({"liq_bucket": "500", "liq_relative": "true", "liq_decay": "12", "liq_split": "half long, half short",
                               "liq_step": "2026-02-05T03:00"},
                              {"liq_bucket": 500.0, "liq_relative": True, "liq_decay": 12.0, "liq_split": "even",
                               "liq_step": datetime(2026, 2, 5, 3, tzinfo=UTC)}),
}


@pytest.fixture
def browser_like(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui, "has_browser", lambda: True)


def controls(node: AppTest | Block) -> list[str]:
    return [kind for kind in CONTROLS for _ in node.get(kind)]


@pytest.mark.parametrize("page", list(FIRST_SCREEN_LINKS))
def test_a_first_screen_draws_the_links_first_chart_then_the_page_with_its_controls(
        monkeypatch, real_cache: Path, browser_like, page: str) -> None:
    link, shown = FIRST_SCREEN_LINKS[page]
    at = run_app(monkeypatch, real_cache, page, assets="BTC,ETH", exchange="binance", timeframe="1h",
                 start="2026-01-24", end="2026-02-12", **link)
    assert not controls(at.sidebar) and not at.slider and len(at.get("plotly_chart")) == 1  # the chart first
    first = at.get("plotly_chart")[0].proto.spec
    at.session_state[ui.FIRST_SCREEN_DRAWN] = True  # what the first-screen component's callback does
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert {"multiselect", "date_input", "radio"} <= set(controls(at.sidebar))
    assert "Export all charts (PNG + HTML)" in [e.label for e in at.expander]  # the page's last element
    assert at.get("plotly_chart")[0].proto.spec == first  # the first screen showed the link's view
    assert {key: at.session_state[key] for key in shown} == shown
    assert not [c.value for c in at.caption if "Link: ignored" in c.value]


def test_a_first_screen_that_stops_before_a_chart_reruns_whole_with_the_controls(
        monkeypatch, tmp_path: Path, shared_data: Path, browser_like) -> None:
    """No bars for the view: the page's answer comes with the sidebar to change the view."""
    files = [shared_data / "ohlcv" / f"binance_spot_BTCUSDT_{name}.parquet" for name in ("1d", "1h_ohlcv")]
    assert main(["--data-dir", str(tmp_path), "--quiet", "import", *map(str, files)]) == 0
    for page in ("pages/overview.py", "pages/liquidations.py", "pages/drawdowns.py", "pages/liquidity.py"):
        at = run_app(monkeypatch, tmp_path, page, assets="BTC", exchange="binance", timeframe="1d",
                     start="2026-01-30", end="2026-02-07")
        assert [w.value for w in at.warning if w.value.startswith("No 1d bars")], page
        assert {"multiselect", "date_input"} <= set(controls(at.sidebar)) and at.session_state[ui.FIRST_SCREEN_DRAWN], page
