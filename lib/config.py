"""Settings, declared once. The only module that reads environment variables.

Streamlit secrets are read by lib.ui and passed in here, so nothing below imports streamlit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lib.schema import ASSETS

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATA_DIR_ENV = "CASCADE_DATA_DIR"
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"

# The demo market lives in its own store beside the real cache, so the two never mix.
DEMO_SUBDIR = "_demo"


@dataclass(frozen=True)
class Settings:
    """Everything the app and the command line can be configured with."""

    data_dir: Path = DEFAULT_DATA_DIR
    assets: tuple[str, ...] = ASSETS
    default_exchange: str = "binance"
    default_timeframe: str = "1h"
    upload_limit_mb: int = 200  # the Data page's upload import; matches server.maxUploadSize
    bootstrap_seconds: float = 180.0  # how long `make run` may fetch before serving what it has
    refresh_exchanges: tuple[str, ...] = field(default=("yfinance", "binance"))

    @property
    def demo_dir(self) -> Path:
        return self.data_dir / DEMO_SUBDIR


def load_settings(env: Mapping[str, str] | None = None, data_dir: str | Path | None = None) -> Settings:
    """Settings from `env` (default os.environ); an explicit `data_dir` wins over CASCADE_DATA_DIR."""
    env = os.environ if env is None else env
    chosen = data_dir or env.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Settings(data_dir=Path(chosen).expanduser())
