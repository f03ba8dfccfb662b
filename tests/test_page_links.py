"""Each page's own choices live in the link (Streamlit's query-param binding, `ui.linked`): a link
opened directly on a page restores them, and a bad or hostile value falls back to the widget's
default with a visible note and never raises (hypothesis). Runs on the demo market."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from lib import ui
from lib.config import PROJECT_ROOT
from tests.test_viewstate_fuzz import HOSTILE

APP = str(PROJECT_ROOT / "app.py")

# page -> {its linked widget key: a valid value as a link writes it (a select box: its option's label)}
VALID = {
    "pages/drawdowns.py": {"dd_top": "3", "dd_threshold": "30", "dd_intrabar": "true", "dd_log": "true"},
    "pages/liquidity.py": {"lq_measure": "Amihud illiquidity (|r| per USD 1 M)", "lq_tz": "Asia/Tokyo",
                           "lq_edge": "true", "lq_regime": "2025-01-01", "lq_stat": "median", "lq_qv_estimate": "false"},
    "pages/liquidations.py": {"liq_symbol": "ETH", "liq_bucket": "500", "liq_relative": "true",
                              "liq_split": "half long, half short", "liq_decay": "48"},
}
EXPECTED = {
    "pages/drawdowns.py": {"dd_top": 3, "dd_threshold": 30, "dd_intrabar": True, "dd_log": True},
    "pages/liquidity.py": {"lq_measure": "amihud", "lq_tz": "Asia/Tokyo", "lq_edge": True,
                           "lq_regime": date(2025, 1, 1), "lq_stat": "median", "lq_qv_estimate": False},
    "pages/liquidations.py": {"liq_symbol": "ETH", "liq_bucket": 500.0, "liq_relative": True, "liq_split": "even",
                              "liq_decay": 48},
}


def visit(page: str, query: dict[str, str]) -> AppTest:
    """A link opened straight on `page` (its first run reads the link, as a browser's would)."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query)
    at.switch_page(page).run()
    return at


def link_notes(at: AppTest) -> list[str]:
    return [c.value for c in at.sidebar.caption if "Link:" in c.value]


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Path:
    monkeypatch.setenv("CASCADE_DATA_DIR", str(data_dir))
    return data_dir


def test_the_split_label_in_the_table_is_the_one_the_link_uses() -> None:
    from lib.analytics.liquidation_levels import SPLIT_RULES

    assert SPLIT_RULES["even"] == VALID["pages/liquidations.py"]["liq_split"]


@pytest.mark.parametrize("page", list(VALID))
def test_a_link_restores_the_pages_own_choices(demo: Path, page: str) -> None:
    at = visit(page, {"assets": "BTC,ETH", **VALID[page]})
    assert not at.exception, [e.message for e in at.exception]
    assert {key: at.session_state[key] for key in EXPECTED[page]} == EXPECTED[page]
    assert link_notes(at) == []


EXPECTED_DEFAULT = {"liq_decay": 0, "dd_top": 5}


# each spelling once, on one of the two pages (the page's code path is the same for all four)
@pytest.mark.parametrize("page, key, number", [
    ("pages/liquidations.py", "liq_decay", "inf"), ("pages/liquidations.py", "liq_decay", "nan"),
    ("pages/drawdowns.py", "dd_top", "-Infinity"), ("pages/drawdowns.py", "dd_top", "1e999"),
])
def test_a_number_no_integer_can_hold_gets_the_default_and_a_note(demo: Path, page: str, key: str,
                                                                  number: str) -> None:
    at = visit(page, {key: number})  # Streamlit's integer box raised OverflowError on int(inf)
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state[key] == EXPECTED_DEFAULT[key] and key not in at.query_params
    assert any(f"'{key}'" in note for note in link_notes(at))


def test_the_replay_step_is_in_the_link(demo: Path) -> None:
    last = visit("pages/liquidations.py", {}).session_state["liq_step"]
    asked = last - timedelta(days=1)
    at = visit("pages/liquidations.py", {"liq_step": f"{asked:%Y-%m-%dT%H:%M}"})
    assert at.session_state["liq_step"] == asked and link_notes(at) == []
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]
    assert any(f"liquidation map at {asked:%Y-%m-%d %H:%M}" in title for title in titles), titles


def test_the_replay_and_its_steps_are_in_the_link(demo: Path) -> None:
    from lib.views import REPLAY_MODES

    at = visit("pages/liquidations.py", {"liq_play": "true", "liq_play_steps": REPLAY_MODES["bars"]})
    assert not at.exception and link_notes(at) == []
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]
    assert any("liquidation map, replayed bar by bar to" in title for title in titles), titles
    at = visit("pages/liquidations.py", {"liq_play": "true", "liq_play_steps": "<script>alert(1)</script>"})
    assert not at.exception and at.session_state["liq_play_steps"] == "window"
    assert any("'liq_play_steps'" in note for note in link_notes(at))


def test_the_hour_of_week_colour_follows_the_linked_statistic(demo: Path) -> None:
    for stat in ("mean", "median"):
        at = visit("pages/liquidity.py", {"lq_stat": stat})
        titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]
        hours = [title for title in titles if "by hour of the week" in title]
        assert hours and all(f"({stat}, UTC)" in title for title in hours), titles


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(page=st.sampled_from(list(VALID)), data=st.data())
def test_any_value_of_a_pages_own_choice_is_shown_or_refused_with_a_note(demo: Path, page: str,
                                                                         data: st.DataObject) -> None:
    keys = data.draw(st.lists(st.sampled_from(list(VALID[page])), min_size=1, max_size=3, unique=True))
    query = {key: data.draw(st.one_of(HOSTILE, st.text(max_size=20), st.just(VALID[page][key]))) for key in keys}
    query = {key: text for key, text in query.items()  # what a URL can carry
             if "\x00" not in text and "\ud800" not in text and len(text) < 10_000}
    at = visit(page, query)
    assert not at.exception, [e.message for e in at.exception]
    notes = link_notes(at)
    for key, text in query.items():
        value = at.session_state[key]
        shown = ui._same(text, value) or text == EXPECTED_LABEL.get(key, {}).get(value)
        assert shown or any(f"'{key}'" in note for note in notes), (key, text, value)
    assert all(len(note) < 200 for note in notes)  # nothing of the link is echoed


EXPECTED_LABEL = {key: {EXPECTED[page][key]: text} for page in VALID for key, text in VALID[page].items()}


def test_same_reads_what_links_write() -> None:
    assert ui._same("true", True) and not ui._same("maybe", False)
    assert ui._same("3", 3) and ui._same("500", 500.0) and not ui._same("abc", 5)
    assert ui._same("2025-01-01", date(2025, 1, 1)) and not ui._same("2025-13-45", date(2024, 1, 11))
    assert ui._same("2026-02-05T12:00", datetime(2026, 2, 5, 12)) and ui._same("ETH", "ETH")


def test_a_picked_episode_is_in_the_link(demo: Path) -> None:
    at = visit("pages/drawdowns.py", {"assets": "BTC"})
    whole = charts_by_title(at)["BTC drawdown from the running peak"]["layout"]["xaxis"].get("range")
    picked = next(point for trace in charts_by_title(at)["BTC drawdown from the running peak"]["data"]
                  for point in (trace.get("customdata") or []) if isinstance(point, str))
    at = visit("pages/drawdowns.py", {"assets": "BTC", ui.EPISODE_PARAM: picked})
    zoomed = charts_by_title(at)["BTC drawdown from the running peak"]["layout"]["xaxis"]["range"]
    assert zoomed != whole and at.query_params[ui.EPISODE_PARAM] == picked
    at.session_state[ui.PICKED_EPISODE] = None  # a click elsewhere lets the episode go, and the link with it
    at.run()
    assert ui.EPISODE_PARAM not in at.query_params


def test_an_unknown_episode_in_the_link_shows_the_whole_range_and_says_so(demo: Path) -> None:
    title = "BTC drawdown from the running peak"
    whole = visit("pages/drawdowns.py", {"assets": "BTC"})  # the same view without an episode
    for asked in ["BTC 1999-01-01 00:00", "<script>alert(1)</script>", "x" * 5_000]:
        at = visit("pages/drawdowns.py", {"assets": "BTC", ui.EPISODE_PARAM: asked})
        assert not at.exception, [e.message for e in at.exception]
        noted = any("not among this view's episodes" in c.value for c in at.caption)
        assert noted == (len(asked) < 100), asked  # an overlong id is refused unread
        assert charts_by_title(at)[title]["layout"]["xaxis"]["range"] == charts_by_title(whole)[title]["layout"]["xaxis"]["range"]


def charts_by_title(at: AppTest) -> dict[str, dict]:
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def test_a_charts_file_name_says_its_page_assets_source_and_range() -> None:
    from lib.viewstate import View

    view = View(("BTC", "ETH"), "binance", "1h", date(2025, 1, 1), date(2025, 6, 30), "utc")
    assert ui.export_name("drawdowns_drawdown_ETH", view) == "cascade_drawdowns_drawdown_ETH_binance_1h_2025-01-01_2025-06-30"
    assert ui.export_name("drawdowns_episodes", view) == "cascade_drawdowns_episodes_BTC-ETH_binance_1h_2025-01-01_2025-06-30"


def test_the_leverage_tiers_are_in_the_link(demo: Path) -> None:
    at = visit("pages/liquidations.py", {"liq_tiers": "10:0.5:0.005,20:0.5:0.005"})
    assert not at.exception and link_notes(at) == []
    subtitles = [spec["layout"]["title"].get("subtitle", {}).get("text", "") for spec in charts_by_title(at).values()]
    assert any("tiers 10× 50%, 20× 50%" in text for text in subtitles), subtitles
    assert at.query_params["liq_tiers"] == "10:0.5:0.005,20:0.5:0.005"  # kept while it differs from the default


# which tables are refused is tests/analytics/test_liquidation_levels.py's; here, what the page does with one
@pytest.mark.parametrize("asked", ["<script>", "10:0.9:0.005"])
def test_leverage_tiers_the_model_cannot_use_fall_back_with_a_note(demo: Path, asked: str) -> None:
    at = visit("pages/liquidations.py", {"liq_tiers": asked})
    assert not at.exception, [e.message for e in at.exception]
    assert link_notes(at) == [":material/info: Link: ignored an invalid 'liq_tiers' value in the link; showing the default"]
    assert "liq_tiers" not in at.query_params  # the default table: nothing to keep


def test_edited_leverage_tiers_go_into_the_link_while_the_model_can_use_them(demo: Path) -> None:
    at = visit("pages/liquidations.py", {})
    assert "liq_tiers" not in at.query_params  # the default table
    at.session_state["liq_tiers"] = {"edited_rows": {0: {"mmr": 0.02}}, "added_rows": [], "deleted_rows": []}
    at.run()
    edited = "5:0.35:0.02,10:0.3:0.005,25:0.2:0.005,50:0.1:0.004,100:0.05:0.004"
    assert at.query_params["liq_tiers"] == edited
    at.session_state["liq_tiers"] = {"edited_rows": {0: {"weight": 0.5}}, "added_rows": [], "deleted_rows": []}
    at.run()  # weights summing to 1.15: the page says so, the link keeps the last table the model ran on
    assert any("weights must sum to 1" in e.value for e in at.error)
    assert at.query_params["liq_tiers"] == edited
    at.session_state["liq_tiers"] = {"edited_rows": {}, "added_rows": [], "deleted_rows": []}
    at.run()  # back to the default table: nothing to keep
    assert "liq_tiers" not in at.query_params


@pytest.mark.parametrize("bucket", ["0.01", "1e300"])
def test_a_linked_bucket_the_model_cannot_use_is_said_not_crashed_on(demo: Path, bucket: str) -> None:
    at = visit("pages/liquidations.py", {"liq_bucket": bucket})  # valid for the widget, absurd for the model
    assert not at.exception, [e.message for e in at.exception]
    if bucket == "0.01":
        assert any("too fine for the level model" in e.value for e in at.error)
