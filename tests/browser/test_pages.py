"""What a person sees in Chromium on a real cache built from ../shared/data: every page draws its
charts without an error, the modebar camera saves a 2x PNG named cascade_..., a shared link
restores its view (and the link follows the widgets), and hosted mode shows only the login until
the right password is given.

Screenshots land in $CASCADE_SCREENSHOTS (default /tmp/cascade-screenshots): look at them.
"""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from PIL import Image

from lib.analytics.liquidation_levels import SPLIT_RULES
from lib.analytics.liquidations import PLACEMENTS
from lib.auth import hash_password
from lib.charts.theme import EXPORT_HEIGHT, EXPORT_SCALE, EXPORT_WIDTH
from lib.cli import main
from lib.config import PROJECT_ROOT
from lib.ui import DEMO_BANNER, GIVE_UP_S
from tests.browser.conftest import (
    EXPORT_ALL,
    TRACES,
    WAIT_MS,
    App,
    Runs,
    launch_app,
    no_exception,
    stop_app,
    wait_for_page,
    wait_ready,
)
from tests.conftest import SHARED_DATA

SCREENSHOTS = Path(os.environ.get("CASCADE_SCREENSHOTS", "/tmp/cascade-screenshots"))
MIN_COLOURS = 64  # a blank screenshot has a handful of colours; a page of text alone has hundreds
MIN_CHART_COLOURS = 500  # empty axes and titles have a few hundred; the charts drawn here 1,900 to 4,900
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PASSWORD = "a long desk password for the browser test"

CONTROLS = {"multiselect", "selectbox", "date_input", "radio", "slider", "checkbox", "number_input", "button"}  # element kinds
# page -> (its URL path, what shows it has finished: analytics pages end with the export expander).
# The default page (Overview) lives at "/"; "/overview" forwards there (test_overview_by_name).
PAGES = {"overview": ("", EXPORT_ALL), "drawdowns": ("drawdowns", EXPORT_ALL), "liquidity": ("liquidity", EXPORT_ALL),
         "liquidations": ("liquidations", EXPORT_ALL), "data": ("data", None)}
if not (PROJECT_ROOT / "pages" / "overview.py").exists():
    del PAGES["overview"]


@pytest.fixture(scope="module")
def real_cache(browser, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1h Binance spot bars, BTC's realised liquidations and BTC funding, imported as a user
    would. Asks for the browser first, so a machine without Chromium skips before the import."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data not found at {SHARED_DATA} (it sits beside the project)")
    root = tmp_path_factory.mktemp("browser-real") / "data"
    files = [  # the REST files (to May 2026) first, then the richer archive files over them
        *sorted((SHARED_DATA / "ohlcv").glob("binance_spot_*USDT_1h_ohlcv.parquet")),
        *sorted((SHARED_DATA / "ohlcv").glob("binance_spot_*USDT_1h.parquet")),
        SHARED_DATA / "liquidations" / "coinglass_BTC_liquidations_agg_1h.parquet",
        SHARED_DATA / "derivatives" / "binance_usdm_BTCUSDT_funding_rate.parquet",
    ]
    assert main(["--data-dir", str(root), "--quiet", "import", *map(str, files)]) == 0
    return root


@pytest.fixture(scope="module")
def servers(real_cache: Path) -> Iterator[dict[str, tuple[subprocess.Popen, App]]]:
    """Two servers on the real cache, launched together so the hosted one boots while the local
    one is tested: local mode (no secrets at all), and hosted mode with a desk password in a
    secrets file outside the repo. One of each for the module, so their caches stay warm."""
    folder = real_cache.parent
    secrets = folder / "secrets.toml"
    secrets.write_text(f'[cascade]\npassword_hash = "{hash_password(PASSWORD, n=2**10)}"\n')
    launched = {
        "local": launch_app(real_cache, {"CASCADE_MODE": "local"}, folder / "no-secrets.toml", folder / "local.log"),
        "hosted": launch_app(real_cache, {"CASCADE_MODE": "hosted"}, secrets, folder / "hosted.log"),
    }
    yield launched
    for process, _ in launched.values():
        stop_app(process)


@pytest.fixture(scope="module")
def app(servers) -> App:
    return wait_ready(*servers["local"])


@pytest.fixture(scope="module")
def hosted_app(servers) -> App:
    return wait_ready(*servers["hosted"])


def shot(target, name: str) -> Image.Image:
    """Screenshot a page or an element to SCREENSHOTS/name.png; return the image."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    png = target.screenshot(path=SCREENSHOTS / f"{name}.png")
    return Image.open(BytesIO(png))


def colours(image: Image.Image) -> int:
    return len(image.convert("RGB").getcolors(maxcolors=1 << 24))


def query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def under_charts(page) -> list[str | None]:
    """The text of the element right under each chart (its provenance badge)."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')].map(chart => {
        const under = chart.closest('[data-testid=stElementContainer]').nextElementSibling;
        return under && under.querySelector('[data-testid=stCaptionContainer]') ? under.innerText : null;
    })""")


X_RANGE = """() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')]
    .find(b => b.textContent.includes('BTC drawdown from the running peak'))
    ?.querySelector('.js-plotly-plot')?.layout?.xaxis?.range"""  # the price chart's, found by its title
DATE_RANGE = f"() => {{ const r = ({X_RANGE})(); return Array.isArray(r) && typeof r[0] === 'string'; }}"


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_its_charts(app: App, page, name: str) -> None:
    path, done = PAGES[name]
    page.goto(f"{app.url}/{path}")
    wait_for_page(page, done)
    no_exception(page)
    assert page.get_by_text(DEMO_BANNER[:30]).count() == 0, "the real cache was not used"
    assert colours(shot(page, f"page_{name}")) > MIN_COLOURS
    charts = page.locator(".js-plotly-plot")
    if done is None:
        return  # the Data page: its tables, no charts
    assert charts.count() >= 1
    for i in range(charts.count()):  # each chart drew data (traces), not just empty axes
        assert charts.nth(i).locator(TRACES).count() > 0, f"chart {i} on {name} has no traces"
    top = charts.first.evaluate("e => e.getBoundingClientRect().top")
    assert 0 <= top < page.viewport_size["height"], f"{name}: the first chart starts {top:.0f} px down, below the first screen"
    first = shot(charts.first, f"chart_{name}")
    assert first.width > 300 and colours(first) > MIN_CHART_COLOURS
    badges = under_charts(page)  # every chart says where its data comes from, right under it
    assert len(badges) == charts.count() and all(b and b.startswith("Data: ") for b in badges), badges


def test_overview_by_name_forwards_to_the_default_page_with_its_view(app: App, page) -> None:
    page.goto(f"{app.url}/overview?assets=ETH&start=2025-01-01&end=2025-03-31")
    wait_for_page(page, EXPORT_ALL)
    no_exception(page)  # no "Page not found"
    assert page.get_by_role("heading", name="Overview").count() == 1
    assert urlsplit(page.url).path == "/"
    assert {k: query(page).get(k) for k in ("assets", "start", "end")} == {"assets": "ETH", "start": "2025-01-01",
                                                                          "end": "2025-03-31"}


def test_clicking_an_episode_on_the_scatter_zooms_the_charts_to_it(app: App, page) -> None:
    page.goto(f"{app.url}/drawdowns?assets=BTC&start=2025-06-01&end=2026-05-16")
    wait_for_page(page, EXPORT_ALL)
    page.wait_for_function(DATE_RANGE, timeout=WAIT_MS)
    assert page.evaluate(X_RANGE)[0].startswith("2025-06-01")  # the whole view, from its first bar
    scatter = page.locator("[data-testid=stPlotlyChart]").filter(has_text="Depth against time under water")
    scatter.scroll_into_view_if_needed()
    points = scatter.locator(".scatterlayer .points path").all()
    deepest = max(points, key=lambda p: p.bounding_box()["y"])  # depth is down: the lowest bubble
    box = deepest.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(f"() => ({DATE_RANGE})() && ({X_RANGE})()[0] >= '2025-09'", timeout=WAIT_MS)
    wait_for_page(page, EXPORT_ALL)
    no_exception(page)
    start, end = page.evaluate(X_RANGE)
    assert start.startswith("2025-09") and end > "2026-05-16"  # the Oct 2025 peak, still under water at the end
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    shot(page, "episode_clicked")


def test_a_new_tab_gets_its_first_screen_first_then_the_whole_page(app: App, page) -> None:
    """ui.first_screen_end: the first run stops after the chart in view; once the browser drew it,
    the page reruns whole. The session's later pages come whole at once."""
    runs = Runs()
    page.on("websocket", lambda socket: socket.on("framereceived", runs.frame))
    page.goto(f"{app.url}/drawdowns?assets=BTC,ETH&start=2025-06-01&end=2026-05-16")
    wait_for_page(page, EXPORT_ALL)
    no_exception(page)
    first, *rest = [run for run in runs.kinds() if run]  # (the navigation's own run sends no element)
    assert first.count("plotly_chart") == 1 and first[-1] == "bidi_component", first
    assert not CONTROLS & set(first), first  # the controls come after the first chart
    charts = page.locator(".js-plotly-plot").count()
    assert rest and "bidi_component" not in rest[-1] and rest[-1].count("plotly_chart") == charts > 1, rest
    assert {"multiselect", "date_input", "slider", "checkbox"} <= set(rest[-1]), rest[-1]
    assert page.get_by_text("Drawing the rest of the page").count() == 0
    finished = len(runs.runs)
    page.wait_for_timeout((GIVE_UP_S + 1) * 1000)
    assert len(runs.runs) == finished  # the fallback's timer went with the first screen: no run after

    runs.runs.clear()
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Weekend liquidity").click()
    page.get_by_role("heading", name="Weekend vs weekday liquidity").wait_for(timeout=WAIT_MS)
    wait_for_page(page, EXPORT_ALL)
    no_exception(page)
    kinds = runs.kinds()
    assert any(kinds) and all("bidi_component" not in run for run in kinds), kinds
    assert kinds[-1].count("plotly_chart") == page.locator(".js-plotly-plot").count() > 1


def test_a_first_screen_draws_the_links_choices_before_their_controls(app: App, page) -> None:
    """A new tab's first chart, drawn before the sidebar, is the one the link asks for: the whole
    page's run resends it by hash (the same chart), and its controls show the link's values."""
    from playwright.sync_api import expect

    runs = Runs()
    page.on("websocket", lambda socket: socket.on("framereceived", runs.frame))
    choices = {"assets": "BTC", "start": "2026-01-24", "end": "2026-02-12", "liq_bucket": "500",
               "liq_placement": PLACEMENTS["close"], "liq_relative": "true", "liq_split": SPLIT_RULES["even"],
               "liq_decay": "12", "liq_step": "2026-02-05T03:00"}
    page.goto(f"{app.url}/liquidations?{urlencode(choices)}")
    wait_for_page(page, EXPORT_ALL)
    no_exception(page)
    first, *rest = [run for run in runs.runs if run]
    assert [e.kind for e in first].count("plotly_chart") == 1 and not CONTROLS & {e.kind for e in first}, first
    chart = next(e for e in first if e.kind == "plotly_chart")
    assert chart == next(e for e in rest[-1] if e.kind == "plotly_chart")  # the same chart, not a new one
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_label("Price bucket (USD)")).to_have_value("500.00")  # its default for a moment: 200
    assert sidebar.get_by_test_id("stCheckbox").filter(has_text="Relative colour scale").locator("input").is_checked()
    assert choices.items() <= query(page).items()
    assert page.get_by_text("Link: ignored").count() == 0


def test_the_rest_of_the_page_comes_even_when_no_chart_can_draw(app: App, page) -> None:
    """plotly.js never arrives (blocked): the first screen gives up waiting after GIVE_UP_S and the
    tables, captions and export come all the same."""
    page.route("**/PlotlyChart.*.js", lambda route: route.abort())
    page.goto(f"{app.url}/drawdowns?assets=BTC&start=2025-06-01&end=2026-05-16")
    page.get_by_text(EXPORT_ALL).wait_for(timeout=WAIT_MS)
    assert page.get_by_text("Worst episodes").count() == 1
    assert page.get_by_text("Drawing the rest of the page").count() == 0


@contextmanager
def colleague(browser, url: str) -> Iterator:
    """A colleague opening a shared link: a new browser context (no session yet), the page drawn."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(url)
        wait_for_page(page, EXPORT_ALL)
        no_exception(page)
        yield page
    finally:
        context.close()


def test_a_pages_own_choices_live_in_the_link(app: App, browser) -> None:
    link = "/drawdowns?assets=BTC&start=2025-01-01&end=2025-06-30&dd_top=3&dd_log=true"
    with colleague(browser, app.url + link) as page:
        sidebar = page.get_by_test_id("stSidebar")
        episodes = sidebar.get_by_test_id("stSlider").filter(has_text="Episodes per asset")
        assert episodes.get_by_test_id("stSliderThumbValue").inner_text() == "3"
        y_type = X_RANGE.replace("xaxis?.range", "yaxis?.type")
        page.wait_for_function(f"() => ({y_type})() === 'log'", timeout=WAIT_MS)  # the price chart may redraw late
        assert {"dd_top": "3", "dd_log": "true", "assets": "BTC"}.items() <= query(page).items()
        sidebar.get_by_text("Intrabar (low against running high)").click()
        page.wait_for_url("**dd_intrabar=true**", timeout=WAIT_MS)
        wait_for_page(page, EXPORT_ALL)
        assert {"dd_top": "3", "dd_log": "true", "dd_intrabar": "true"}.items() <= query(page).items()
        shot(page, "page_choices_link")


def test_modebar_camera_downloads_a_2x_png(app: App, page, tmp_path: Path) -> None:
    page.goto(f"{app.url}/drawdowns?assets=BTC&start=2025-01-01&end=2025-01-31")  # a small view: quick
    wait_for_page(page, EXPORT_ALL)
    chart = page.locator(".js-plotly-plot").first
    chart.hover()
    with page.expect_download(timeout=WAIT_MS) as download:
        chart.locator(".modebar-btn[data-title='Download plot as a PNG']").click()
    name = download.value.suggested_filename
    assert name == "cascade_drawdowns_drawdown_BTC_binance_1h_2025-01-01_2025-01-31.png", name  # page, asset, range
    path = tmp_path / name
    download.value.save_as(path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (EXPORT_SCALE * EXPORT_WIDTH, EXPORT_SCALE * EXPORT_HEIGHT)
    image = Image.open(path)
    image.load()  # the whole file decodes
    assert colours(image) > MIN_CHART_COLOURS
    (SCREENSHOTS / "download.png").write_bytes(data)


def test_shared_link_restores_the_view_and_follows_the_widgets(app: App, browser) -> None:
    link = "/drawdowns?assets=ETH&exchange=binance&timeframe=1h&start=2025-01-01&end=2025-06-30"
    with colleague(browser, app.url + link) as page:
        sidebar = page.get_by_test_id("stSidebar")
        assets = sidebar.get_by_test_id("stMultiSelect")
        assert [tag.get_attribute("aria-label") for tag in assets.locator("[data-tag]").all()] == ["ETH"]
        dates = sidebar.get_by_test_id("stDateInput")
        assert [i.input_value() for i in dates.locator("input[type=date]").all()] == ["2025-01-01", "2025-06-30"]
        assert "".join(dates.get_by_test_id("stDateInputField").inner_text().split()) == "2025/01/01–2025/06/30"
        assert "ETH" in page.get_by_text("Data: binance bars 1h").first.inner_text()  # the ETH chart's badge
        assert query(page) == {"assets": "ETH", "exchange": "binance", "timeframe": "1h",
                               "start": "2025-01-01", "end": "2025-06-30", "weekend": "utc"}
        shot(page, "shared_link")

        sidebar.get_by_test_id("stRadio").get_by_text("CME crypto futures closed").click()
        page.wait_for_url("**weekend=cme**", timeout=WAIT_MS)
        assets.get_by_role("combobox").click()
        page.get_by_role("option", name="SOL").click()
        page.wait_for_url("**assets=ETH%2CSOL**", timeout=WAIT_MS)
        wait_for_page(page, EXPORT_ALL)
        no_exception(page)
        assert query(page) == {"assets": "ETH,SOL", "exchange": "binance", "timeframe": "1h",
                               "start": "2025-01-01", "end": "2025-06-30", "weekend": "cme"}


def test_hosted_mode_shows_only_the_login_until_the_right_password(hosted_app: App, page) -> None:
    page.goto(f"{hosted_app.url}/liquidity?assets=ETH&start=2025-01-01&end=2025-03-31")
    password = page.get_by_label("Desk password")
    password.wait_for(timeout=WAIT_MS)
    shot(page, "hosted_login")

    def shows_no_data() -> None:
        no_exception(page)
        for hidden in (".js-plotly-plot", "[data-testid=stDataFrame]", "[data-testid=stSidebarNav]",
                       "[data-testid=stMultiSelect]"):
            assert page.locator(hidden).count() == 0, f"{hidden} shown before sign-in"
        assert page.get_by_text("liquidity").count() == 0 and page.get_by_text("binance").count() == 0

    shows_no_data()
    password.fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong password.").wait_for(timeout=WAIT_MS)
    shows_no_data()

    page.get_by_label("Desk password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("stSidebarNav").wait_for(timeout=WAIT_MS)
    wait_for_page(page, EXPORT_ALL)
    no_exception(page)
    assert page.get_by_text("desk (viewer)").count() == 1
    assert page.get_by_label("Desk password").count() == 0
    # the link's page and view survive the sign-in
    assert urlsplit(page.url).path == "/liquidity"
    assert page.get_by_role("heading", name="Weekend vs weekday liquidity").count() == 1
    assert {k: query(page).get(k) for k in ("assets", "start", "end")} == \
        {"assets": "ETH", "start": "2025-01-01", "end": "2025-03-31"}
    assert colours(shot(page, "hosted_signed_in")) > MIN_COLOURS
