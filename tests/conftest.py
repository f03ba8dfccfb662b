"""Shared fixtures: the real data in ../shared/data, and a guard that fails any non-local socket."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}


def pytest_configure(config: pytest.Config) -> None:
    # The app hides error details from users (.streamlit/config.toml); tests want to read them.
    os.environ["STREAMLIT_CLIENT_SHOW_ERROR_DETAILS"] = "full"
    if os.environ.get("CI") == "true" and not SHARED_DATA.is_dir():
        raise pytest.UsageError(f"CI=true but the real test data is missing: {SHARED_DATA}")


@pytest.fixture
def shared_data() -> Path:
    """../shared/data; tests that need it skip where it is absent (a user's fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data not found at {SHARED_DATA} (it sits beside the project)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any connection outside localhost fail the test, with the address in the message."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in LOCAL_HOSTS:
            raise AssertionError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(autouse=True)
def main_module_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest leaves the script it ran as `__main__`, which multiprocessing's spawn would re-run in
    each child (a script of AppTest.from_function then fails there): put pytest's back after each test."""
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    """A regular file: no folder can be made under it (an unwritable place that root cannot bypass)."""
    path = tmp_path / "a file"
    path.write_text("not a folder")
    return path


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Kaleido finds no browser: BROWSER_PATH (where it looks first) names nothing, and the process
    has not started one yet."""
    from lib import export

    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chromium"))
    monkeypatch.setattr(export, "_renderer", {})


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data directory for one test."""
    path = tmp_path / "data"
    path.mkdir()
    return path
