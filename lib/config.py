"""Settings, declared once. The only module that reads environment variables.

Streamlit secrets are read by lib.ui and passed in here (as a dict), so nothing below imports
streamlit; this module is still the only one that interprets them.
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

# The data directory may be an object-storage URL (s3://bucket/prefix). Both s3fs and polars get
# its endpoint and credentials from these standard variables, under polars' option names.
S3_ENV = {
    "AWS_ENDPOINT_URL": "aws_endpoint_url",
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_REGION": "aws_region",
}

MODE_ENV = "CASCADE_MODE"
LOCAL, HOSTED = "local", "hosted"
SECRETS_SECTION = "cascade"  # [cascade] in .streamlit/secrets.toml: who may use a hosted instance
OIDC_SECTION = "auth"  # Streamlit's own [auth] section, read by st.login


@dataclass(frozen=True)
class Access:
    """Who may use the app. Keys of [cascade] in .streamlit/secrets.toml (see its .example)."""

    mode: str = LOCAL  # "hosted" turns on login; env CASCADE_MODE, when set, wins over the secrets
    password_hash: str = ""  # the desk's shared (viewer) password, scrypt: python -m lib hash-password
    admin_password_hash: str = ""  # a second password that signs in as admin
    allowed_emails: tuple[str, ...] = ()  # OIDC: these e-mails may sign in
    allowed_domains: tuple[str, ...] = ()  # OIDC: so may every e-mail at exactly these domains
    admins: tuple[str, ...] = ()  # OIDC e-mails that may also refresh, import and upload
    max_failures: int = 5  # wrong passwords per session within failure_window_s before it must wait
    failure_window_s: float = 300.0
    oidc_providers: tuple[str, ...] = ()  # from [auth]: "" is its default provider, else [auth.<name>]

    @property
    def hosted(self) -> bool:
        return self.mode == HOSTED


ACCESS_KEYS = tuple(f for f in Access.__dataclass_fields__ if f != "oidc_providers")  # read from [cascade]


@dataclass(frozen=True)
class Settings:
    """Everything the app and the command line can be configured with."""

    data_dir: Path | str = DEFAULT_DATA_DIR  # a Path, or an object-storage URL (see data_location)
    assets: tuple[str, ...] = ASSETS
    default_exchange: str = "binance"
    default_timeframe: str = "1h"
    upload_limit_mb: int = 200  # the Data page's upload import; matches server.maxUploadSize
    bootstrap_seconds: float = 180.0  # how long `make run` may fetch before serving what it has
    refresh_exchanges: tuple[str, ...] = field(default=("yfinance", "binance"))
    access: Access = field(default_factory=Access)

    @property
    def demo_dir(self) -> Path | str:
        return f"{self.data_dir}/{DEMO_SUBDIR}" if is_url(self.data_dir) else Path(self.data_dir) / DEMO_SUBDIR


def is_url(location: Path | str) -> bool:
    """True for an fsspec URL such as s3://bucket/prefix (a Path never is one)."""
    return isinstance(location, str) and "://" in location


def data_location(value: str | Path) -> Path | str:
    """A local data directory as a Path (with ~ expanded); an object-storage URL as written."""
    return value.rstrip("/") if is_url(value) else Path(value).expanduser()


def storage_options(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """polars' storage_options for an s3:// data directory, from the AWS variables in `env`
    (default os.environ); plain-http endpoints (a local S3-compatible server) must be allowed."""
    env = os.environ if env is None else env
    options = {key: env[name] for name, key in S3_ENV.items() if env.get(name)}
    if options.get("aws_endpoint_url", "").startswith("http://"):
        options["aws_allow_http"] = "true"
    return options


def load_settings(
    env: Mapping[str, str] | None = None,
    data_dir: str | Path | None = None,
    secrets: Mapping[str, object] | None = None,
) -> Settings:
    """Settings from `env` (default os.environ) and Streamlit `secrets` (a plain dict; lib.ui passes
    st.secrets); an explicit `data_dir` wins over CASCADE_DATA_DIR."""
    env = os.environ if env is None else env
    chosen = data_dir or env.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Settings(data_dir=data_location(chosen), access=load_access(env, secrets or {}))


def _strings(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(v for v in value if v.strip())
    raise ValueError(f"[{SECRETS_SECTION}] {key} must be a list of strings, got {value!r}")


def load_access(env: Mapping[str, str], secrets: Mapping[str, object]) -> Access:
    """Access settings from [cascade] and [auth] in `secrets`; CASCADE_MODE in `env` wins for the mode.

    Raises ValueError naming the key when a value has the wrong type or an unknown mode."""
    section = secrets.get(SECRETS_SECTION) or {}
    if not isinstance(section, Mapping):
        raise ValueError(f"[{SECRETS_SECTION}] in the secrets must be a table")
    mode = (env.get(MODE_ENV) or str(section.get("mode") or LOCAL)).strip().lower()
    if mode not in (LOCAL, HOSTED):
        raise ValueError(f"unknown mode {mode!r} ({MODE_ENV} or [{SECRETS_SECTION}] mode): use {LOCAL!r} or {HOSTED!r}")
    oidc = secrets.get(OIDC_SECTION) or {}
    providers = ("",) if isinstance(oidc, Mapping) and "client_id" in oidc else tuple(
        name for name, value in (oidc.items() if isinstance(oidc, Mapping) else ()) if isinstance(value, Mapping)
    )
    default = Access()
    try:
        max_failures = int(section.get("max_failures", default.max_failures))
        window_s = float(section.get("failure_window_s", default.failure_window_s))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"[{SECRETS_SECTION}] max_failures and failure_window_s must be numbers ({exc})") from exc
    return Access(
        mode=mode,
        password_hash=str(section.get("password_hash") or "").strip(),
        admin_password_hash=str(section.get("admin_password_hash") or "").strip(),
        allowed_emails=_strings("allowed_emails", section.get("allowed_emails", ())),
        allowed_domains=_strings("allowed_domains", section.get("allowed_domains", ())),
        admins=_strings("admins", section.get("admins", ())),
        max_failures=max(1, max_failures),
        failure_window_s=max(1.0, window_s),
        oidc_providers=providers,
    )
