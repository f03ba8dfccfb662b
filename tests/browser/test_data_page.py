"""What a person sees on the Data page in Chromium: the demo banner, the cache table, an upload."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from lib.store import Store

SCREENSHOTS = Path(os.environ.get("CASCADE_SCREENSHOTS", "/tmp/cascade-screenshots"))
WAIT_MS = 90_000


def test_demo_then_upload_switches_to_real_data(served, page, tmp_path: Path, shared_data: Path) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{served.url}/data")
    page.get_by_text("Demo data (synthetic)").wait_for(timeout=WAIT_MS)
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=WAIT_MS)
    page.screenshot(path=SCREENSHOTS / "data_demo.png", full_page=True)

    upload = tmp_path / "binance_spot_SOLUSDT_1h_2024-03.csv"
    upload.write_bytes((shared_data / "samples" / upload.name).read_bytes())
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(upload)
    page.get_by_role("button", name="Import").click()
    page.get_by_text("744 rows read as bars").wait_for(timeout=WAIT_MS)
    page.screenshot(path=SCREENSHOTS / "data_uploaded.png", full_page=True)

    (entry,) = Store(served.data_dir).status()
    assert (entry["exchange"], entry["symbol"], entry["timeframe"], entry["rows"]) == ("binance", "SOL", "1h", 744)
    page.reload()
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=WAIT_MS)
    assert page.get_by_text("Demo data (synthetic)").count() == 0
    frame = Store(served.data_dir).scan("bars").collect()
    assert frame.height == 744 and frame["ts"].min().isoformat() == "2024-03-01T00:00:00+00:00"
    assert pl.Series(frame["close"]).null_count() == 0
