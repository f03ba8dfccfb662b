"""Source registry: provider name -> the class that fetches from it.

Extending means one module plus one line here. Classes are named as "module:Class" and imported
on first use, so importing lib.sources does not import ccxt or yfinance.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from lib.sources.base import Source

CCXT_EXCHANGES: tuple[str, ...] = ("binance", "binanceusdm", "bybit", "okx")

SOURCES: dict[str, str] = {
    "yfinance": "lib.sources.yfinance:YahooSource",
    **{name: "lib.sources.ccxt:CcxtSource" for name in CCXT_EXCHANGES},
    "demo": "lib.sources.demo:DemoSource",
}


def get_source(name: str, **options: Any) -> Source:
    """An instance of the source registered as `name`; ccxt sources get the exchange id."""
    if name not in SOURCES:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
    module, cls = SOURCES[name].split(":")
    factory = getattr(import_module(module), cls)
    return factory(name, **options) if name in CCXT_EXCHANGES else factory(**options)
