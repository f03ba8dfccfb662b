"""Is a weekend difference in liquidity real? Effect sizes, intervals and tests on `daily` frames.

The unit of observation is a day (a row of `lib.analytics.liquidity.daily`), never a bar: hours
within a day are strongly autocorrelated, so a test on 17 000 hourly bars would claim a precision
the data does not have. Even days are autocorrelated (volume regimes last weeks), hence:

- the headline effect is a ratio, ``mean(weekend days) / mean(weekday days)``, with a percentile
  block-bootstrap CI that resamples whole weeks (or days), keeping each block's days together
  (Künsch 1989, "The jackknife and the bootstrap for general stationary observations", Ann. Stat.
  17(3); Efron & Tibshirani 1993, ch. 13);
- Mann-Whitney U and Welch's t are reported, but they assume independent days: read them with the
  effective sample size next to them;
- OLS on day-of-week dummies uses Newey-West (1987) HAC standard errors, with the Newey-West (1994)
  lag rule ``floor(4 (n / 100)^(2/9))``;
- the 168 hour-of-week cells are each tested against the rest of the week and the p-values
  corrected with Benjamini-Hochberg (1995), controlling the false discovery rate.

numpy, scipy and statsmodels are used here only; the data work stays in polars.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import polars as pl
from scipy import stats
from statsmodels.regression.linear_model import OLS, RegressionResultsWrapper

from lib.analytics.liquidity import (
    BAR_MEASURES,
    DATE,
    HOUR,
    MEASURE,
    MEASURES,
    WEEK,
    WEEKDAY,
    WEEKEND,
    pooled,
)
from lib.schema import SYMBOL

CONFIDENCE = 0.95
N_RESAMPLES = 1000
SEED = 20240111  # fixed, so a page shows the same interval on every rerun
# Resample whole weeks: a weekend stays with the weekdays of its own week, so a level the week shares
# (a volume regime lasting weeks) cancels in the ratio instead of being counted as noise.
BOOTSTRAP_BLOCK = "week"
BLOCKS: dict[str, str] = {"day": DATE, "week": WEEK}
FDR = 0.05  # Benjamini-Hochberg false discovery rate over the hour-of-week cells
DAYS = (1, 2, 3, 4, 5, 6, 7)  # ISO weekdays, Monday first
SMALL_EFFECT = 0.05  # a verdict gives one decimal when the effect and its CI are all within ±5 %

EFFECT_COLUMNS: tuple[str, ...] = (
    "weekday_mean",
    "weekend_mean",
    "weekday_median",
    "weekend_median",
    "ratio",
    "ci_low",
    "ci_high",
    "p_mannwhitney",
    "p_welch",
    "p_hac",
    "n_weekday",
    "n_weekend",
    "n_eff_weekday",
    "n_eff_weekend",
)


# ---------------------------------------------------------------------------------------------
# Building blocks on numpy arrays


def newey_west_lags(n: int) -> int:
    """Newey-West (1994) automatic lag ``floor(4 (n / 100)^(2/9))``: 6 lags for two years of days."""
    return math.floor(4 * (n / 100) ** (2 / 9))


def effective_sample_size(x: np.ndarray) -> float:
    """``n (1 − ρ₁) / (1 + ρ₁)``, ρ₁ the lag-1 autocorrelation of `x` (in time order, NaN dropped).

    For an AR(1) series the variance of the mean equals that of ``n_eff`` independent draws
    (Bayley & Hammersley 1946; Wilks, *Statistical Methods in the Atmospheric Sciences*, eq. 5.12).
    ρ₁ <= 0 returns n: negative autocorrelation is not used to claim more than n observations.
    """
    x = x[~np.isnan(x)]
    n = len(x)
    if n < 3:
        return float(n)
    d = x - x.mean()
    denominator = float(d @ d)
    rho = float(d[1:] @ d[:-1]) / denominator if denominator > 0 else 0.0
    rho = min(max(rho, 0.0), 1.0)
    return n * (1 - rho) / (1 + rho)


def bootstrap_ratio_ci(
    values: np.ndarray,
    weekend: np.ndarray,
    blocks: np.ndarray,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> tuple[float, float]:
    """Percentile block-bootstrap CI of ``mean(values[weekend]) / mean(values[~weekend])``.

    Each resample draws as many blocks as there are, with replacement (a block's observations stay
    together), so the interval reflects dependence within a block. Vectorised: block sums times a
    (resamples × blocks) matrix of multinomial draw counts. NaN values are ignored; resamples with
    no weekend or no weekday value are dropped. Returns (nan, nan) with fewer than two blocks.
    """
    keep = ~np.isnan(values)
    values, weekend, blocks = values[keep], weekend[keep].astype(bool), blocks[keep]
    _, block = np.unique(blocks, return_inverse=True)
    n_blocks = int(block.max()) + 1 if len(block) else 0
    if n_blocks < 2:
        return math.nan, math.nan
    sums = np.column_stack(
        [
            np.bincount(block, weights=np.where(side, w, 0.0), minlength=n_blocks)
            for side in (weekend, ~weekend)
            for w in (values, np.ones_like(values))
        ]
    )
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_blocks, np.full(n_blocks, 1 / n_blocks), size=n_resamples)
    total = draws @ sums
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (total[:, 0] / total[:, 1]) / (total[:, 2] / total[:, 3])
    ratios = ratios[np.isfinite(ratios)]
    if not len(ratios):
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail])
    return float(low), float(high)


def mann_whitney_vs_rest(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Mann-Whitney U of each group against all the other values, for many groups at once.

    The ranks of one pooled sample serve every comparison (the "rest" of a group is the pool minus
    the group), so U₁ = R₁ − n₁(n₁ + 1)/2 for all groups from one ranking. Normal approximation with
    tie and continuity corrections, as ``scipy.stats.mannwhitneyu(method="asymptotic")``:
    ``z = (|U₁ − n₁n₂/2| − ½) / √(n₁n₂/12 · (n + 1 − Σ(t³ − t)/(n(n − 1))))``.
    Returns (group labels, p-values).
    """
    keep = ~np.isnan(values)
    values, groups = values[keep], groups[keep]
    labels, index = np.unique(groups, return_inverse=True)
    n = len(values)
    ranks = stats.rankdata(values)
    _, ties = np.unique(values, return_counts=True)
    tie_term = float(((ties**3 - ties).sum()) / (n * (n - 1))) if n > 1 else 0.0
    n1 = np.bincount(index, minlength=len(labels)).astype(float)
    n2 = n - n1
    u1 = np.bincount(index, weights=ranks, minlength=len(labels)) - n1 * (n1 + 1) / 2
    sigma = np.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.abs(u1 - n1 * n2 / 2) - 0.5) / sigma
    p = np.clip(2 * stats.norm.sf(np.maximum(z, 0)), 0, 1)
    return labels, np.where(sigma > 0, p, np.nan)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), ``min_{j>=i} m p_(j) / j`` capped at 1;
    a cell is a discovery at false discovery rate α when its q <= α. NaN stays NaN and is not
    counted in m. Benjamini & Hochberg (1995), JRSS B 57(1), 289-300."""
    q = np.full(len(p), np.nan)
    finite = ~np.isnan(p)
    if finite.any():
        q[finite] = stats.false_discovery_control(p[finite], method="bh")
    return q


# ---------------------------------------------------------------------------------------------
# Frames


def weekend_effect(
    days: pl.DataFrame,
    measures: Sequence[str] = BAR_MEASURES,
    *,
    block: str = BOOTSTRAP_BLOCK,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> pl.DataFrame:
    """One row per (symbol, measure) of a `daily` frame: weekend against weekday days.

    Columns: symbol, measure, first_date, last_date, confidence, then `EFFECT_COLUMNS`: means and
    medians of the daily values of each side; ratio (weekend mean / weekday mean) and its
    block-bootstrap CI (`block` "week" or "day"); p-values of Mann-Whitney U, Welch's t and the
    weekend dummy of an OLS with HAC errors; day counts and effective sample sizes (from the lag-1
    autocorrelation of the daily values less their side's mean).
    """
    if block not in BLOCKS:
        raise ValueError(f"unknown bootstrap block {block!r}; choose one of {sorted(BLOCKS)}")
    rows = []
    for (symbol,), group in days.sort(SYMBOL, DATE, maintain_order=True).group_by(SYMBOL, maintain_order=True):
        weekend = group[WEEKEND].to_numpy()
        blocks = group[BLOCKS[block]].to_physical().to_numpy()
        for measure in measures:
            values = group[measure].cast(pl.Float64).fill_null(np.nan).to_numpy()
            low, high = bootstrap_ratio_ci(
                values, weekend, blocks, n_resamples=n_resamples, confidence=confidence, seed=seed
            )
            rows.append(
                {
                    SYMBOL: symbol,
                    MEASURE: measure,
                    "first_date": group[DATE].min(),
                    "last_date": group[DATE].max(),
                    "confidence": confidence,
                    **_two_sample(values, weekend),
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    schema = {
        SYMBOL: pl.String,
        MEASURE: pl.String,
        "first_date": pl.Date,
        "last_date": pl.Date,
        "confidence": pl.Float64,
    }
    schema |= {c: pl.Int64 if c in ("n_weekday", "n_weekend") else pl.Float64 for c in EFFECT_COLUMNS}
    return pl.DataFrame(rows, schema=schema)


def day_of_week_means(
    days: pl.DataFrame, measure: str, *, confidence: float = CONFIDENCE, maxlags: int | None = None
) -> pl.DataFrame:
    """Per symbol and weekday of a `daily` frame: the mean of `measure` with a HAC CI, from OLS of
    the daily values on seven day dummies (no intercept, so each coefficient is that day's mean)
    with Newey-West errors (`maxlags` defaults to `newey_west_lags`). Columns: symbol, weekday,
    mean, ci_low, ci_high, confidence, n."""
    rows = []
    for symbol, fit, present, counts in _day_fits(days, measure, maxlags):
        low_high = fit.conf_int(alpha=1 - confidence)
        rows += [
            {
                SYMBOL: symbol,
                WEEKDAY: day,
                "mean": fit.params[i],
                "ci_low": low_high[i, 0],
                "ci_high": low_high[i, 1],
                "confidence": confidence,
                "n": counts[i],
            }
            for i, day in enumerate(present)
        ]
    schema = {
        SYMBOL: pl.String,
        WEEKDAY: pl.Int8,
        "mean": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "confidence": pl.Float64,
        "n": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def day_of_week_tests(days: pl.DataFrame, measure: str, *, maxlags: int | None = None) -> pl.DataFrame:
    """Per symbol of a `daily` frame: do the seven days differ in `measure`?

    Columns: symbol, kruskal_h and p_kruskal (Kruskal-Wallis across the days; assumes independent
    days), p_hac_wald (the Wald test that all day-dummy coefficients are equal, with Newey-West HAC
    covariance: robust to autocorrelation), n_days.
    """
    rows = []
    for symbol, fit, present, counts in _day_fits(days, measure, maxlags):
        samples = [fit.model.endog[fit.model.exog[:, i] == 1] for i in range(len(present))]
        h, p_kruskal = stats.kruskal(*samples) if len(samples) > 1 else (math.nan, math.nan)
        equal = np.eye(len(present))[1:] - np.eye(len(present))[:-1]
        p_wald = float(fit.f_test(equal).pvalue) if len(present) > 1 else math.nan
        rows.append(
            {
                SYMBOL: symbol,
                "kruskal_h": float(h),
                "p_kruskal": float(p_kruskal),
                "p_hac_wald": p_wald,
                "n_days": int(sum(counts)),
            }
        )
    schema = {
        SYMBOL: pl.String,
        "kruskal_h": pl.Float64,
        "p_kruskal": pl.Float64,
        "p_hac_wald": pl.Float64,
        "n_days": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def hour_of_week_tests(frame: pl.DataFrame | pl.LazyFrame, measure: str, *, fdr: float = FDR) -> pl.DataFrame:
    """Per symbol and hour-of-week cell of a `with_calendar` frame of measures: does the cell differ
    from the rest of the week?

    Each cell contributes one value per week (its bars' pooled mean, so 1-minute bars are not
    counted 60 times); each cell's weekly values are tested against all other cells' with a
    two-sided Mann-Whitney U (`mann_whitney_vs_rest`), and the p-values of a symbol's cells are
    adjusted with Benjamini-Hochberg. Columns: symbol, weekday, hour, p, q, significant (q <= `fdr`).
    """
    cells = (
        frame.lazy()
        .group_by(SYMBOL, WEEK, WEEKDAY, HOUR)
        .agg(pooled(measure).alias("_value"))
        .drop_nulls("_value")
        .sort(SYMBOL, WEEKDAY, HOUR, WEEK)
        .collect()
    )
    tables = []
    for (symbol,), group in cells.group_by(SYMBOL, maintain_order=True):
        cell = (group[WEEKDAY].cast(pl.Int32) * 24 + group[HOUR].cast(pl.Int32)).to_numpy()
        labels, p = mann_whitney_vs_rest(group["_value"].to_numpy(), cell)
        q = benjamini_hochberg(p)
        tables.append(
            pl.DataFrame(
                {SYMBOL: symbol, WEEKDAY: labels // 24, HOUR: labels % 24, "p": p, "q": q, "significant": q <= fdr}
            ).with_columns(pl.col(WEEKDAY).cast(pl.Int8), pl.col(HOUR).cast(pl.Int8))
        )
    schema = {
        SYMBOL: pl.String,
        WEEKDAY: pl.Int8,
        HOUR: pl.Int8,
        "p": pl.Float64,
        "q": pl.Float64,
        "significant": pl.Boolean,
    }
    return pl.concat(tables) if tables else pl.DataFrame(schema=schema)


def verdict(effect: Mapping[str, object]) -> str:
    """One plain sentence from a `weekend_effect` row, e.g. "Weekend BTC quote volume is 38 % lower
    than on weekdays (95 % CI 33-42 %), 2024-2025, significant at 5 %."

    Significant means the bootstrap CI of the ratio excludes 1 (at 1 − confidence).
    """
    symbol, measure = effect[SYMBOL], str(effect[MEASURE])
    noun = MEASURES[measure].short if measure in MEASURES else measure
    confidence = float(effect["confidence"])
    level, alpha = _pct(confidence), _pct(1 - confidence)
    first, last = effect["first_date"].year, effect["last_date"].year
    period = f"{first}" if first == last else f"{first}-{last}"
    ratio, low, high = (float(effect[k]) if effect[k] is not None else math.nan for k in ("ratio", "ci_low", "ci_high"))
    subject = f"Weekend {symbol} {noun}"
    if math.isnan(ratio):
        return f"{subject}: not enough data to compare with weekdays, {period}."
    if math.isnan(low) or math.isnan(high):
        return f"{subject} is {_size(ratio, 0)} than on weekdays ({period}); too few weeks for a confidence interval."
    digits = 1 if max(abs(x - 1) for x in (ratio, low, high)) < SMALL_EFFECT else 0
    change = (
        f"{_size(ratio, digits)} than on weekdays"
        if round(abs(ratio - 1) * 100, digits)
        else "about the same as on weekdays"
    )
    if low > 1 or high < 1:
        a, b = sorted(round(abs(x - 1) * 100, digits) for x in (low, high))
        interval = f"{level} CI {a:.{digits}f}-{b:.{digits}f} %"
        outcome = "significant"
    else:
        interval = f"{level} CI {_size(low, digits)} to {_size(high, digits)}"
        outcome = "not significant"
    return f"{subject} is {change} ({interval}), {period}, {outcome} at {alpha}."


# ---------------------------------------------------------------------------------------------
# Helpers


def _two_sample(values: np.ndarray, weekend: np.ndarray) -> dict[str, float]:
    """Means, medians, ratio, p-values and sample sizes of weekend against weekday values (NaN
    everywhere but the counts unless each side has at least two values)."""
    finite = ~np.isnan(values)
    we, wd = values[weekend & finite], values[~weekend & finite]
    counts = {"n_weekday": len(wd), "n_weekend": len(we)}
    if min(len(we), len(wd)) < 2:
        return dict.fromkeys(EFFECT_COLUMNS, math.nan) | counts
    residuals = values - np.where(weekend, we.mean(), wd.mean())
    shrink = effective_sample_size(residuals) / (len(we) + len(wd))
    return {
        "weekday_mean": float(wd.mean()),
        "weekend_mean": float(we.mean()),
        "weekday_median": float(np.median(wd)),
        "weekend_median": float(np.median(we)),
        "ratio": float(we.mean() / wd.mean()) if wd.mean() else math.nan,
        "p_mannwhitney": float(stats.mannwhitneyu(we, wd).pvalue),
        "p_welch": float(stats.ttest_ind(we, wd, equal_var=False).pvalue),
        "p_hac": _weekend_hac_p(values[finite], weekend[finite]),
        **counts,
        "n_eff_weekday": len(wd) * shrink,
        "n_eff_weekend": len(we) * shrink,
    }


def _weekend_hac_p(y: np.ndarray, weekend: np.ndarray) -> float:
    """p-value of the weekend dummy in ``y = a + b · weekend`` with Newey-West HAC errors."""
    x = weekend.astype(float)
    fit = OLS(y, np.column_stack([np.ones_like(x), x])).fit(
        cov_type="HAC", cov_kwds={"maxlags": newey_west_lags(len(y))}
    )
    return float(fit.pvalues[1])


def _day_fits(
    days: pl.DataFrame, measure: str, maxlags: int | None
) -> Iterator[tuple[str, RegressionResultsWrapper, list[int], list[int]]]:
    """Per symbol: the HAC OLS fit of the daily `measure` on the dummies of the weekdays present,
    with those weekdays and their day counts."""
    for (symbol,), group in (
        days.drop_nulls(measure).sort(SYMBOL, DATE, maintain_order=True).group_by(SYMBOL, maintain_order=True)
    ):
        weekday = group[WEEKDAY].to_numpy()
        present = [d for d in DAYS if (weekday == d).any()]
        dummies = np.column_stack([(weekday == d).astype(float) for d in present])
        lags = newey_west_lags(group.height) if maxlags is None else maxlags
        fit = OLS(group[measure].cast(pl.Float64).to_numpy(), dummies).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
        yield symbol, fit, present, [int(c) for c in dummies.sum(axis=0)]


def _size(ratio: float, digits: int) -> str:
    """0.62 → "38 % lower", 1.12 → "12 % higher" (with `digits` decimals)."""
    return f"{abs(ratio - 1) * 100:.{digits}f} % {'lower' if ratio < 1 else 'higher'}"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.0f} %"
