"""Calendar masks for a market that never closes: weekends and trading sessions, in UTC.

Crypto trades 24/7, so "weekend" and "session" are conventions about *who* is awake, not about
whether the market is open. Both are declared here once and shared by the drawdown attribution and
the liquidity pages.

Weekend definitions (`WEEKENDS`):

- ``"utc"``: the calendar weekend in UTC, Saturday 00:00 to Monday 00:00 (ISO weekday 6 and 7).
- ``"cme"``: the hours CME's crypto futures are shut for the weekend, Friday 16:00 to Sunday 17:00
  in Chicago time (CME Group, "Bitcoin futures contract specs": trading Sunday-Friday 17:00-16:00
  CT). It follows US daylight saving; CME holidays and the daily 16:00-17:00 CT break are not
  included.

Sessions (`SESSION_STARTS`), fixed in UTC all year (no daylight saving), each running until the
next one starts, so every minute of the day belongs to exactly one session:

====================  ===============  =============================================================
session               UTC              why
====================  ===============  =============================================================
``asia``              00:00-08:00      Tokyo 09:00-17:00 JST; Hong Kong and Singapore mornings
``europe``            08:00-13:30      London open (08:00 GMT) to the New York cash open
``us``                13:30-21:00      NYSE 09:30 ET (13:30 UTC in summer) to 16:00 EST (21:00 UTC)
``late_us``           21:00-24:00      after the US cash close, before Asia opens
====================  ===============  =============================================================

A bar is assigned by its open time, so the boundaries are exact for bars of 30 minutes or finer;
a 1-hour bar opening at 13:00 counts as Europe, and daily bars all fall in Asia.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl

# Weekend, UTC calendar: ISO weekday 6 (Saturday) and 7 (Sunday).
UTC_WEEKEND_FIRST_DAY = 6

# CME crypto futures weekend close, in Chicago local time.
CME_TIMEZONE = "America/Chicago"
CME_CLOSE = time(16, 0)  # Friday
CME_REOPEN = time(17, 0)  # Sunday
FRIDAY, SATURDAY, SUNDAY = 5, 6, 7

SESSION_STARTS: tuple[tuple[str, time], ...] = (
    ("asia", time(0, 0)),
    ("europe", time(8, 0)),
    ("us", time(13, 30)),
    ("late_us", time(21, 0)),
)
SESSIONS: tuple[str, ...] = tuple(name for name, _ in SESSION_STARTS)
SESSION_TYPE = pl.Enum(SESSIONS)


def is_utc_weekend(ts: pl.Expr) -> pl.Expr:
    """True on Saturday and Sunday in UTC (ts must be UTC or naive UTC)."""
    return ts.dt.weekday() >= UTC_WEEKEND_FIRST_DAY


def is_cme_weekend(ts: pl.Expr) -> pl.Expr:
    """True between CME's Friday 16:00 CT close and its Sunday 17:00 CT reopen."""
    local = ts.dt.convert_time_zone(CME_TIMEZONE)
    day, clock = local.dt.weekday(), local.dt.time()
    return (
        ((day == FRIDAY) & (clock >= CME_CLOSE))
        | (day == SATURDAY)
        | ((day == SUNDAY) & (clock < CME_REOPEN))
    )


WEEKENDS: dict[str, Callable[[pl.Expr], pl.Expr]] = {"utc": is_utc_weekend, "cme": is_cme_weekend}


def is_weekend(ts: pl.Expr, definition: str = "utc") -> pl.Expr:
    """Weekend mask under one of `WEEKENDS` ("utc" or "cme")."""
    try:
        return WEEKENDS[definition](ts)
    except KeyError:
        raise ValueError(f"unknown weekend definition {definition!r}; choose one of {sorted(WEEKENDS)}") from None


def session(ts: pl.Expr) -> pl.Expr:
    """The UTC trading session a timestamp falls in, as an ordered `SESSION_TYPE` enum."""
    clock = ts.dt.time()
    label = pl.lit(SESSIONS[0])
    for name, start in SESSION_STARTS[1:]:
        label = pl.when(clock >= start).then(pl.lit(name)).otherwise(label)
    return label.cast(SESSION_TYPE)


def weekend_windows(start: datetime, end: datetime, definition: str = "utc") -> list[tuple[datetime, datetime]]:
    """The weekend spans (UTC-aware start, end) that overlap [start, end], for shading charts.

    Naive datetimes are taken as UTC. Spans are not clipped to the window.
    """
    start, end = (d if d.tzinfo else d.replace(tzinfo=UTC) for d in (start, end))
    if definition not in WEEKENDS:
        raise ValueError(f"unknown weekend definition {definition!r}; choose one of {sorted(WEEKENDS)}")
    windows = []
    # Step one week at a time from the Friday on or before `start`, so the span covering it is kept.
    friday = (start - timedelta(days=(start.weekday() - 4) % 7 + 7)).date()
    while True:
        span = _weekend_after(friday, definition)
        if span[0] > end:
            return windows
        if span[1] > start:
            windows.append(span)
        friday += timedelta(weeks=1)


def _weekend_after(friday: date, definition: str) -> tuple[datetime, datetime]:
    """The weekend that starts on or after `friday` (a date), in UTC."""
    if definition == "cme":
        chicago = ZoneInfo(CME_TIMEZONE)
        opens = datetime.combine(friday, CME_CLOSE, tzinfo=chicago)
        closes = datetime.combine(friday + timedelta(days=2), CME_REOPEN, tzinfo=chicago)
        return opens.astimezone(UTC), closes.astimezone(UTC)
    saturday = datetime.combine(friday + timedelta(days=1), time(0), tzinfo=UTC)
    return saturday, saturday + timedelta(days=2)
