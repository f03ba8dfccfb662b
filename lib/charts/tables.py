"""Tables for display: analytics frames with units formatted (percent, UTC dates, "3 d 4 h").

Pure polars, like the chart builders: numbers stay numbers where a table is sorted by them, and
the column names carry the unit.
"""

from __future__ import annotations

import polars as pl

from lib.analytics import drawdowns as dd
from lib.analytics import liquidity as liq
from lib.analytics.liquidation_levels import Spread
from lib.analytics.sessions import SESSIONS
from lib.charts.liquidity import display
from lib.charts.theme import duration_text
from lib.schema import SYMBOL, TS

DATE_FORMAT = "%Y-%m-%d %H:%M"
SESSION_LABELS = {"asia": "Asia", "europe": "Europe", "us": "US", "late_us": "Late US"}


def _pct(column: str, digits: int = 1) -> pl.Expr:
    return (pl.col(column) * 100).round(digits)


def _signed_pct(column: str, digits: int) -> pl.Expr:
    """A fraction as a signed percent, e.g. "+0.16 %" and "-4.12 %" (null stays null)."""
    value = _pct(column, digits)
    text = value.cast(pl.Int64) if digits == 0 else value
    return pl.format("{}{} %", pl.when(value > 0).then(pl.lit("+")).otherwise(pl.lit("")), text)


def _when(column: str, missing: str = "") -> pl.Expr:
    return pl.col(column).dt.strftime(DATE_FORMAT).fill_null(missing)


def episodes_with_attribution(top: pl.DataFrame, attribution: pl.DataFrame) -> pl.DataFrame:
    """`top_episodes` rows in their order, with the attribution shares of each episode."""
    shares = [c for c in attribution.columns if c.endswith("_share") or c == "liquidation_coverage"]
    return top.join(
        attribution.select(SYMBOL, dd.EPISODE, *shares), on=[SYMBOL, dd.EPISODE], how="left", maintain_order="left"
    )


# `episode_table`'s decimal columns, as a page shows them: a grid drops a trailing ".0" (-70 beside -63.2)
EPISODE_FORMATS = {"Depth (%)": "%.1f", "Under water (days)": "%.1f"}


def episode_table(episodes: pl.DataFrame) -> pl.DataFrame:
    """One row per episode (of `episodes_with_attribution`), for reading and sorting."""
    bursts = "burst_share" in episodes.columns
    optional = [_pct("burst_share", 0).alias("In liquidation bursts (%)")] if bursts else []
    return episodes.select(
        pl.col(SYMBOL).alias("Asset"),
        _pct(dd.DEPTH).alias("Depth (%)"),
        _when(dd.PEAK_TS).alias("Peak (UTC)"),
        _when(dd.TROUGH_TS).alias("Trough (UTC)"),
        _when(dd.RECOVERY_TS, "still under water").alias("Recovered (UTC)"),
        duration_text(pl.col(dd.PEAK_TO_TROUGH_HOURS)).alias("Peak to trough"),
        duration_text(pl.col(dd.TROUGH_TO_RECOVERY_HOURS)).fill_null("-").alias("Trough to recovery"),
        (pl.col(dd.UNDERWATER_HOURS) / 24).round(1).alias("Under water (days)"),
        _pct("weekend_share", 0).alias("Decline on weekends (%)"),
        _pct("weekend_time_share", 0).alias("Time on weekends (%)"),
        *(_pct(f"{name}_share", 0).alias(f"{SESSION_LABELS[name]} (%)") for name in SESSIONS),
        *optional,
    )


METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    # (label, column, kind): kind is pct, ratio, count, hours, date or recovery
    ("Current drawdown", "current_drawdown", "pct"),
    ("Off the 30-day high", "drawdown_from_30d_high", "pct"),
    ("Off the 90-day high", "drawdown_from_90d_high", "pct"),
    ("Max drawdown", "max_drawdown", "pct"),
    ("Max drawdown peak (UTC)", "max_drawdown_peak_ts", "date"),
    ("Max drawdown trough (UTC)", "max_drawdown_trough_ts", "date"),
    ("Max drawdown recovered (UTC)", "max_drawdown_recovery_ts", "recovery"),
    ("Average drawdown", "average_drawdown", "pct"),
    ("Deep drawdowns (count)", "deep_drawdowns", "count"),
    ("Longest under water", "longest_underwater_hours", "hours"),
    ("Total return", "total_return", "pct"),
    ("CAGR (365-day year)", "cagr", "pct"),
    ("Calmar", "calmar", "ratio"),
    ("Ulcer index", "ulcer_index", "pct"),
    ("Ulcer performance index", "ulcer_performance_index", "ratio"),
    ("Pain index", "pain_index", "pct"),
    ("Conditional drawdown at risk (95 %)", "cdar", "pct"),
    ("Recovery factor", "recovery_factor", "ratio"),
)


def _formatted(kind: str, column: str) -> pl.Expr:
    """A metric as text: ratios with two decimals ("-0.20"), and a max drawdown not yet recovered
    says so."""
    value = pl.col(column)
    text = {
        "pct": pl.format("{} %", (value * 100).round(1)),
        "ratio": value.fill_nan(None).round(2).cast(pl.String).str.replace(r"\.(\d)$", ".${1}0"),
        "count": value.cast(pl.String),
        "hours": duration_text(value),
        "date": value.dt.strftime(DATE_FORMAT),
        "recovery": value.dt.strftime(DATE_FORMAT).fill_null(
            pl.when(pl.col("max_drawdown") < 0).then(pl.lit("still under water"))),
    }[kind]
    return text.fill_null("n/a")


def metrics_table(metrics: pl.DataFrame) -> pl.DataFrame:
    """`desk_metrics` turned on its side: one row per metric, one column per asset."""
    rows = [
        metrics.select(pl.lit(label).alias("Metric"), pl.col(SYMBOL), _formatted(kind, column).alias("value"))
        for label, column, kind in METRIC_ROWS
        if column in metrics.columns
    ]
    long = pl.concat(rows)
    return long.pivot(on=SYMBOL, index="Metric", values="value", maintain_order=True)


def _usd(column: str) -> pl.Expr:
    """USD with a K/M/B suffix, as the charts write it."""
    value = pl.col(column)
    return (
        pl.when(value.abs() >= 1e9).then(pl.format("${}B", (value / 1e9).round(2)))
        .when(value.abs() >= 1e6).then(pl.format("${}M", (value / 1e6).round(1)))
        .when(value.abs() >= 1e3).then(pl.format("${}K", (value / 1e3).round(0).cast(pl.Int64)))
        .otherwise(pl.format("${}", value.round(0).cast(pl.Int64)))
    )


def bursts_table(bursts: pl.DataFrame) -> pl.DataFrame:
    """`largest_bursts` for reading: rank, time, long / short / total USD, the price move over the
    window (signed, or "no price bar" where the bars have none)."""
    moves = [_signed_pct("move", 2).fill_null("no price bar").alias("Price move")] if "move" in bursts.columns else []
    return bursts.select(
        pl.col("rank").alias("#"),
        _when(TS).alias("Window start (UTC)"),
        _usd("long_usd").alias("Longs liquidated"),
        _usd("short_usd").alias("Shorts liquidated"),
        _usd("total_usd").alias("Total"),
        *moves,
    )


def fragility_table(fragility: pl.DataFrame, spread: Spread | None = None) -> pl.DataFrame:
    """`fragility_by_weekend` for reading: which move liquidates how much, against 1 % depth; with
    a `spread`, also the lowest to highest estimate over its assumption sets."""
    ranged = [] if spread is None else [
        pl.format("{}–{}", _usd("low_usd"), _usd("high_usd")).alias(f"Range over {spread.runs} assumption sets")]
    rows = fragility if spread is None else spread.beside(fragility)
    return rows.select(
        pl.col("period").fill_null("-").alias("Book"),
        _signed_pct("band", 0).alias("Move"),
        _usd("liquidation_usd").alias("Est. liquidations"),
        *ranged,
        _usd("depth_usd").fill_null("no depth data").alias("1 % depth"),
        pl.col("depth_multiple").round(2).alias("x depth"),
    )


# weekend_effect's columns and the headings the page shows them under
EFFECT_HEADINGS: dict[str, str] = {
    SYMBOL: "Asset", "measure": "Measure", "first_date": "From", "last_date": "To", "confidence": "CI level",
    "weekday_mean": "Weekday mean", "weekend_mean": "Weekend mean", "weekday_median": "Weekday median",
    "weekend_median": "Weekend median", "ratio": "Weekend / weekday", "ci_low": "CI low", "ci_high": "CI high",
    "p_mannwhitney": "p (Mann-Whitney)", "p_welch": "p (Welch)", "p_hac": "p (HAC)", "n_weekday": "Weekdays",
    "n_weekend": "Weekend days", "n_eff_weekday": "Effective weekdays", "n_eff_weekend": "Effective weekend days",
}
SIGNIFICANT = 4  # digits kept of a mean or median, whatever its scale (USD millions or spreads of 1e-4)


def effects_table(effects: pl.DataFrame) -> pl.DataFrame:
    """`weekend_effect` rows for reading: measures by their label and unit, dates as days, values in
    that unit to 4 significant digits (`_in_units`), ratios and CIs to 3 decimals, p-values to 3
    significant digits, headings in words."""
    level = [c for c in effects.columns if c.endswith(("_mean", "_median"))]
    return _in_units(effects, level).with_columns(
        pl.col("first_date", "last_date").dt.strftime("%Y-%m-%d"),  # ISO text: a date, and still sorts
        pl.col("ratio", "ci_low", "ci_high").round(3),
        pl.col("p_mannwhitney", "p_welch", "p_hac").round_sig_figs(3),
        pl.col("n_eff_weekday", "n_eff_weekend").round(1),
    ).select([pl.col(c).alias(h) for c, h in EFFECT_HEADINGS.items() if c in effects.columns])


def regimes_table(regimes: pl.DataFrame) -> pl.DataFrame:
    """`aggregate` by (regime, weekend) for reading: one row per asset, regime and side of the week."""
    return _in_units(regimes, [liq.MEAN, liq.MEDIAN]).select(
        pl.col(SYMBOL).alias("Asset"),
        pl.col(liq.REGIME).cast(pl.String).alias("Regime"),
        pl.when(pl.col(liq.WEEKEND)).then(pl.lit("weekend")).otherwise(pl.lit("weekday")).alias("Days"),
        pl.col(liq.MEASURE).alias("Measure"),
        pl.col(liq.MEAN).alias("Mean"),
        pl.col(liq.MEDIAN).alias("Median"),
        pl.col(liq.N).alias("Bars"),
    )


def _in_units(frame: pl.DataFrame, values: list[str]) -> pl.DataFrame:
    """`frame` (one measure per row) with its `values` columns in the unit that row's charts use,
    to `SIGNIFICANT` digits, and the unit after the measure's label: "Quote volume per bar ($M)"
    beside 83.79, "Roll spread (bp)" beside 12.4, where raw values run from 1e-5 to 1e9. Still
    numbers: a column sorts by them within one measure."""
    scales, labels = [], []
    for name, *row in frame.select(liq.MEASURE, *values).iter_rows():
        measure = liq.MEASURES.get(name)
        if measure is None:  # not one of ours: as it came
            scales.append(1.0)
            labels.append(str(name))
            continue
        look = display(measure.unit, row)
        unit = f"{look.prefix}{look.suffix}".strip()
        scales.append(look.scale)
        labels.append(f"{measure.label} ({unit})" if unit else measure.label)
    scale = pl.Series(scales, dtype=pl.Float64)
    return frame.with_columns(
        pl.Series(liq.MEASURE, labels, dtype=pl.String),
        *((pl.col(c) * scale).round_sig_figs(SIGNIFICANT) for c in values),
    )
