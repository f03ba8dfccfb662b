"""The view every page reads (assets, exchange, timeframe, date range, weekend definition), and its
round trip through the URL query string. Pure: bad or hostile values fall back to defaults with a
note for the user; nothing here raises on input."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone

from lib.schema import ASSETS, TIMEFRAMES

WEEKENDS: dict[str, str] = {
    "utc": "UTC calendar weekend (Sat 00:00 to Mon 00:00 UTC)",
    "cme": "CME crypto futures closed (Fri 16:00 to Sun 17:00 Chicago time)",
}
MAX_PARAM_CHARS = 64  # longer values are refused unread
EARLIEST = date(2009, 1, 3)  # the Bitcoin genesis block: no market data before it
DEFAULT_DAYS = 365


@dataclass(frozen=True)
class View:
    """What a page shows. `start` and `end` are UTC calendar days, both included."""

    assets: tuple[str, ...]
    exchange: str
    timeframe: str
    start: date
    end: date
    weekend: str = "utc"


@dataclass(frozen=True)
class Choices:
    """What the cache can show: the allowed values and the defaults for a missing parameter."""

    assets: tuple[str, ...]
    exchanges: tuple[str, ...]
    timeframes: tuple[str, ...]
    first_day: date
    last_day: date

    def default(self) -> View:
        start = max(self.first_day, self.last_day - timedelta(days=DEFAULT_DAYS))
        return View(self.assets, self.exchanges[0], self.timeframes[0], start, self.last_day)


def _one(params: Mapping[str, object], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    return None if value is None else str(value)


def _day(text: str | None) -> date | None:
    try:
        return None if text is None else date.fromisoformat(text)
    except ValueError:
        return None


def parse_view(params: Mapping[str, object], choices: Choices) -> tuple[View, list[str]]:
    """The view a query string asks for, within `choices`; and one note per value that was refused."""
    view, notes = choices.default(), []
    raw = {name: _one(params, name) for name in ("assets", "exchange", "timeframe", "start", "end", "weekend")}
    for name, value in raw.items():
        if value is not None and len(value) > MAX_PARAM_CHARS:
            notes.append(f"ignored an overlong '{name}' value in the link")
            raw[name] = None
        elif value is not None and not value.replace(",", "").strip():  # `assets=` asks for nothing: say so
            notes.append(f"ignored an empty '{name}' value in the link")
            raw[name] = None
    if raw["assets"] is not None:
        asked = [a.strip().upper() for a in raw["assets"].split(",") if a.strip()]
        known = tuple(dict.fromkeys(a for a in asked if a in choices.assets))
        if known:
            view = replace(view, assets=known)
        if len(known) < len(asked):
            notes.append(f"ignored unknown asset(s) in the link; showing {', '.join(view.assets)}")
    for name, allowed in (("exchange", choices.exchanges), ("timeframe", choices.timeframes), ("weekend", tuple(WEEKENDS))):
        if raw[name] is not None:
            if raw[name] in allowed:
                view = replace(view, **{name: raw[name]})
            else:
                notes.append(f"ignored unknown {name} in the link; showing {getattr(view, name)}")
    start, end = _day(raw["start"]), _day(raw["end"])
    for name, value in (("start", start), ("end", end)):
        if raw[name] is not None and value is None:
            notes.append(f"ignored an unreadable {name} date in the link (use YYYY-MM-DD)")
    start = start or view.start
    end = end or view.end
    if start > end:
        notes.append("the link's dates were reversed; swapped them")
        start, end = end, start
    clamped = (max(start, choices.first_day), min(end, choices.last_day))
    if clamped != (start, end) and (raw["start"] or raw["end"]):
        notes.append(f"dates limited to the cached range {choices.first_day} .. {choices.last_day}")
    if clamped[0] > clamped[1]:
        clamped = (choices.default().start, choices.default().end)
    return replace(view, start=clamped[0], end=clamped[1]), notes


def view_params(view: View) -> dict[str, str]:
    """The query string of a view (the inverse of parse_view for values within the choices)."""
    return {
        "assets": ",".join(view.assets),
        "exchange": view.exchange,
        "timeframe": view.timeframe,
        "start": view.start.isoformat(),
        "end": view.end.isoformat(),
        "weekend": view.weekend,
    }


def choices_from_status(
    entries: list[dict], assets: tuple[str, ...] = ASSETS, preferred_exchange: str | None = None
) -> Choices | None:
    """What the cached bars allow (None when no bars are cached). The preferred exchange first,
    then those with the most rows."""
    bars = [e for e in entries if e["dataset"] == "bars"]
    if not bars:
        return None
    rows: dict[str, int] = {}
    for e in bars:
        rows[e["exchange"]] = rows.get(e["exchange"], 0) + e["rows"]
    order = list(TIMEFRAMES)
    timeframes = sorted({e["timeframe"] for e in bars if e["timeframe"] in TIMEFRAMES}, key=order.index)
    preferred = [tf for tf in ("1h", "1d") if tf in timeframes]
    return Choices(
        assets=tuple(a for a in assets if any(e["symbol"] == a for e in bars)) or assets,
        exchanges=tuple(sorted(rows, key=lambda ex: (ex != preferred_exchange, -rows[ex]))),
        timeframes=tuple(preferred + [tf for tf in timeframes if tf not in preferred]),
        first_day=min(date.fromisoformat(e["first_ts"][:10]) for e in bars),
        last_day=max(date.fromisoformat(e["last_ts"][:10]) for e in bars),
    )


def day_bounds(view: View) -> tuple[datetime, datetime]:
    """The view's days as [start 00:00, the day after end 00:00) in UTC."""
    return (datetime.combine(view.start, time(), timezone.utc),
            datetime.combine(view.end + timedelta(days=1), time(), timezone.utc))
