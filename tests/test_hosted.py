"""AppTest of hosted mode: the login view, password and OIDC sign-in, viewers against admins,
and local mode left alone. Also the hosting files: config.toml, .gitignore, deploy/, packages.txt."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib import ui
from lib.auth import hash_password
from lib.config import PROJECT_ROOT, Settings

APP = str(PROJECT_ROOT / "app.py")
TIMEOUT = 120
FAST_N = 2**10  # cheap hashes for tests; the app reads the cost from the hash string
VIEWER_PASSWORD = "viewer password for the desk"
ADMIN_PASSWORD = "admin password for the desk"
OIDC = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a test cookie secret that is long enough",
    "client_id": "cascade-test",
    "client_secret": "not a secret",
    "server_metadata_url": "https://idp.desk.example/.well-known/openid-configuration",
}
WRITE_WIDGETS = ("refresh_source", "upload", "import_kind")  # keys of the Data page's write forms


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    return {"password_hash": hash_password(VIEWER_PASSWORD, n=FAST_N),
            "admin_password_hash": hash_password(ADMIN_PASSWORD, n=FAST_N)}


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One empty cache for the module, so the demo market is generated once."""
    return tmp_path_factory.mktemp("hosted")


@pytest.fixture
def hosted(monkeypatch: pytest.MonkeyPatch, shared_dir: Path) -> None:
    monkeypatch.setenv("CASCADE_MODE", "hosted")
    monkeypatch.setenv("CASCADE_DATA_DIR", str(shared_dir))
    ui._limiters.clear()  # the attempt limits are process-wide: start each test afresh


def start(secrets: dict, user: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets.update(secrets)  # also keeps a developer's own .streamlit/secrets.toml out of the test
    if user is not None:
        at.user = user
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="login_password").set_value(password)
    next(b for b in at.button if b.label == "Sign in").click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def on_login_view(at: AppTest) -> bool:
    return [t.value for t in at.title] == ["Cascade"]


def shows_data(at: AppTest) -> bool:
    """Anything a signed-in user would see: tables, charts, the demo banner, the sidebar controls."""
    return bool(at.dataframe or at.get("plotly_chart") or at.warning or at.sidebar.multiselect)


def data_page(at: AppTest) -> AppTest:
    at.switch_page("pages/data.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert [t.value for t in at.title] == ["Data"]
    return at


def write_forms(at: AppTest) -> list[str]:
    keys = {w.key for kind in ("selectbox", "file_uploader") for w in at.get(kind)}
    return [k for k in WRITE_WIDGETS if k in keys]


# --- password login ------------------------------------------------------------------------------


def test_signed_out_sees_the_login_view_and_no_data(hosted, hashes) -> None:
    at = start({"cascade": hashes})
    assert on_login_view(at) and not shows_data(at)
    assert at.text_input(key="login_password").proto.type == at.text_input(key="login_password").proto.PASSWORD
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/data.py")  # the pages do not exist until someone signs in


def test_a_page_asked_for_by_url_still_shows_the_login(hosted, hashes) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets.update({"cascade": hashes})
    at.query_params.update({"assets": "BTC"})
    at.run()
    assert on_login_view(at) and not shows_data(at)


def test_wrong_password_is_refused(hosted, hashes) -> None:
    at = sign_in(start({"cascade": hashes}), "not the password")
    assert "Wrong password." in [e.value for e in at.error]
    assert on_login_view(at) and not shows_data(at)
    assert at.text_input(key="login_password").value == ""  # not kept in the session


def test_right_password_opens_the_pages_read_only(hosted, hashes) -> None:
    at = sign_in(start({"cascade": hashes}), VIEWER_PASSWORD)
    assert [t.value for t in at.title] == ["Overview"] and at.get("plotly_chart")
    assert any("desk (viewer)" in c.value for c in at.sidebar.caption)
    at = data_page(at)
    assert at.dataframe, "viewers browse the cache's status"
    assert ui.READ_ONLY_NOTE in [i.value for i in at.info]
    assert write_forms(at) == []
    assert not [b for b in at.button if b.label in ("Refresh", "Import")]


def test_admin_password_shows_the_write_forms(hosted, hashes) -> None:
    at = data_page(sign_in(start({"cascade": hashes}), ADMIN_PASSWORD))
    assert any("desk admin (admin)" in c.value for c in at.sidebar.caption)
    assert write_forms(at) == list(WRITE_WIDGETS)
    assert ui.READ_ONLY_NOTE not in [i.value for i in at.info]


def test_too_many_attempts_make_the_session_wait(hosted, hashes) -> None:
    at = start({"cascade": {**hashes, "max_failures": 2, "failure_window_s": 60}})
    for _ in range(2):
        sign_in(at, "guess")
    at = sign_in(at, VIEWER_PASSWORD)  # even the right password waits: it is not even checked
    errors = [e.value for e in at.error]
    assert any(re.fullmatch(r"Too many attempts: wait (60|59) s and try again\.", e) for e in errors), errors
    assert on_login_view(at) and not shows_data(at)


def test_changing_the_password_signs_everyone_out(hosted, hashes) -> None:
    at = sign_in(start({"cascade": hashes}), VIEWER_PASSWORD)
    assert not on_login_view(at)
    at.secrets["cascade"] = {**hashes, "password_hash": hash_password("the new password", n=FAST_N)}
    at.run()
    assert on_login_view(at) and not shows_data(at)


def test_sign_out_returns_to_the_login(hosted, hashes) -> None:
    at = sign_in(start({"cascade": hashes}), VIEWER_PASSWORD)
    at.sidebar.button(key="sign_out").click().run()
    assert on_login_view(at) and not shows_data(at)


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ({"cascade": {}}, "no way to sign in is configured"),
        ({"cascade": {"password_hash": "scrypt$not-a-hash"}}, "not a valid scrypt hash"),
    ],
)
def test_misconfigured_hosted_mode_refuses_everyone(hosted, secrets: dict, message: str) -> None:
    at = start(secrets)
    assert any(message in e.value for e in at.error)
    assert on_login_view(at) and not shows_data(at)


# --- OIDC login ----------------------------------------------------------------------------------

DESK = {"allowed_domains": ["desk.example"], "admins": ["alice@desk.example"]}


def test_oidc_signed_out_sees_the_sign_in_button_only(hosted) -> None:
    at = start({"auth": OIDC, "cascade": DESK}, user={"is_logged_in": False})
    assert [b.label for b in at.button] == ["Sign in with your organisation's account"]
    assert on_login_view(at) and not shows_data(at)


@pytest.mark.parametrize(
    ("email", "role"),
    [
        ("bob@desk.example", "viewer"),
        ("Bob@Desk.Example", "viewer"),
        ("alice@desk.example", "admin"),
        ("eve@evil.test", None),
        ("eve@desk.example.evil.test", None),
        ("eve@eu.desk.example", None),
    ],
)
def test_oidc_allowlist(hosted, email: str, role: str | None) -> None:
    at = start({"auth": OIDC, "cascade": DESK}, user={"is_logged_in": True, "email": email})
    if role is None:
        assert on_login_view(at) and not shows_data(at)
        assert any("is not allowed here" in e.value for e in at.error)
        assert at.button(key="oidc_sign_out")
        return
    assert [t.value for t in at.title] == ["Overview"] and shows_data(at)
    assert any(f"{email.lower()} ({role})" in c.value for c in at.sidebar.caption)
    at = data_page(at)
    assert write_forms(at) == (list(WRITE_WIDGETS) if role == "admin" else [])


def test_oidc_user_without_an_auth_section_is_not_trusted(hosted, hashes) -> None:
    """A host may name its viewer in st.user; without [auth] that is not a sign-in here."""
    at = start({"cascade": {**hashes, **DESK}}, user={"is_logged_in": True, "email": "alice@desk.example"})
    assert on_login_view(at) and not shows_data(at)


# --- local mode ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_mode", "secrets_mode", "login"),
    [
        (None, None, False),  # the default: no login, nothing changed
        ("local", "hosted", False),  # the environment wins
        (None, "hosted", True),
        ("hosted", None, True),
    ],
)
def test_mode_switch(
    monkeypatch, shared_dir: Path, hashes, env_mode: str | None, secrets_mode: str | None, login: bool,
) -> None:
    monkeypatch.setenv("CASCADE_DATA_DIR", str(shared_dir))
    if env_mode is None:
        monkeypatch.delenv("CASCADE_MODE", raising=False)
    else:
        monkeypatch.setenv("CASCADE_MODE", env_mode)
    cascade = {**hashes, **({"mode": secrets_mode} if secrets_mode else {})}
    at = start({"cascade": cascade})
    assert on_login_view(at) is login
    if not login:
        at = data_page(at)
        assert write_forms(at) == list(WRITE_WIDGETS)
        assert not at.sidebar.button, "no sign-out button in local mode"


# --- hosting files -------------------------------------------------------------------------------


def test_config_toml_is_hardened() -> None:
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["maxUploadSize"] == Settings().upload_limit_mb
    assert config["client"]["showErrorDetails"] == "none"
    assert config["browser"]["gatherUsageStats"] is False


def test_secrets_are_git_ignored_and_only_the_example_is_kept() -> None:
    ignored = (PROJECT_ROOT / ".gitignore").read_text().splitlines()
    assert ".streamlit/secrets.toml" in ignored
    assert (PROJECT_ROOT / ".streamlit" / "secrets.toml.example").is_file()


def test_nginx_example_proxies_the_websocket_over_tls() -> None:
    conf = (PROJECT_ROOT / "deploy" / "nginx.conf").read_text()
    for needed in ("listen 443 ssl", "ssl_certificate ", "proxy_pass http://127.0.0.1:8501",
                   "location /_stcore/stream", "proxy_set_header Upgrade $http_upgrade",
                   'proxy_set_header Connection "upgrade"', "proxy_read_timeout", "return 301 https://"):
        assert needed in conf, needed


def test_refresh_timer_runs_the_default_set() -> None:
    service = (PROJECT_ROOT / "deploy" / "cascade-refresh.service").read_text()
    timer = (PROJECT_ROOT / "deploy" / "cascade-refresh.timer").read_text()
    assert re.search(r"-m lib (--quiet )?refresh --default-set", service)
    assert "OnCalendar=" in timer and "Unit=cascade-refresh.service" in timer


def test_packages_txt_installs_chromium_for_streamlit_cloud() -> None:
    assert "chromium" in (PROJECT_ROOT / "packages.txt").read_text().split()


@pytest.mark.parametrize(("text", "problem"), [
    ('[cascade\npassword_hash = "x"\n', "secrets.toml does not parse: Expected ']'"),
    ('[cascade]\npassword_hash = "x"\n', None),
])
def test_a_secrets_file_that_does_not_parse_is_said_so(monkeypatch, tmp_path: Path, text: str, problem: str | None) -> None:
    """Streamlit reads an unparsable secrets.toml as no secrets at all: the login page would say no
    sign-in is configured, and send the deployer looking for a key that is there."""
    import streamlit as st
    from streamlit import config
    from streamlit.runtime.secrets import Secrets

    from lib import ui

    (path := tmp_path / "secrets.toml").write_text(text)
    get_option = config.get_option
    monkeypatch.setattr(config, "get_option", lambda key: [str(path)] if key == "secrets.files" else get_option(key))
    monkeypatch.setattr(st, "secrets", Secrets())
    found = ui.secrets_problem()
    assert found == problem if problem is None else found.startswith(problem) and str(tmp_path) not in found
