"""Min-max decimation: bounded rows, extremes kept, small series untouched."""

from datetime import datetime, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from lib.charts.downsample import minmax

T0 = datetime(2024, 1, 1)


def series(values: list[float], symbol: str = "BTC") -> pl.DataFrame:
    return pl.DataFrame({"symbol": symbol, "ts": [T0 + timedelta(minutes=i) for i in range(len(values))], "v": values})


def test_a_series_that_fits_is_returned_whole() -> None:
    small = series([3.0, 1.0, 2.0])
    assert_frame_equal(minmax(small, "v", max_points=4), small)


def test_each_bucket_keeps_its_minimum_and_maximum() -> None:
    # 8 rows, 4 points -> 2 buckets of 4 rows: [5, 1, 9, 5] and [4, 0, 8, 4]
    got = minmax(series([5.0, 1.0, 9.0, 5.0, 4.0, 0.0, 8.0, 4.0]), "v", max_points=4)
    assert got["v"].to_list() == [1.0, 9.0, 0.0, 8.0]
    assert got["ts"].is_sorted()


def test_groups_are_thinned_separately() -> None:
    both = pl.concat([series([float(i % 7) for i in range(100)], "BTC"), series([1.0, 2.0], "ETH")])
    got = minmax(both, "v", max_points=10)
    assert got.filter(pl.col("symbol") == "BTC").height <= 10
    assert got.filter(pl.col("symbol") == "ETH")["v"].to_list() == [1.0, 2.0]
