"""deploy/nginx.conf for real: nginx (Debian's) runs the example, with only its ports, certificate
and upstream changed, in front of a served app; Chromium and httpx go through it over TLS."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lib.config import PROJECT_ROOT
from tests.browser.conftest import EXPORT_ALL, App, cannot_run, free_port, no_exception, wait_for_page

EXAMPLE = PROJECT_ROOT / "deploy" / "nginx.conf"


@dataclass(frozen=True)
class Front:
    """nginx's two addresses."""

    http: str
    https: str


def local_config(example: str, folder: Path, upstream: str, http: int, https: int) -> str:
    """The example's server blocks on loopback ports, a throwaway certificate and `upstream`,
    inside the few main-context lines a Debian nginx.conf would give them."""
    servers = (example.replace("listen 80;", f"listen 127.0.0.1:{http};")
               .replace("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;")
               .replace("http://127.0.0.1:8501", upstream))
    servers = re.sub(r"\n\s*listen \[::\]:\d+( ssl)?;", "", servers)
    servers = re.sub(r"ssl_certificate(_key)? +\S+;", lambda m: f"ssl_certificate{m[1] or ''} "
                     f"{folder / ('key.pem' if m[1] else 'cert.pem')};", servers)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in kinds)
    return (f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\nevents {{}}\nhttp {{\n"
            f"    include /etc/nginx/mime.types;\n    access_log off;\n{temp}\n{servers}\n}}\n")


@pytest.fixture
def front(served: App) -> Iterator[Front]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        cannot_run("nginx is not installed (apt-get install -y nginx)")
    # not pytest's tmp_path, whose parents only their owner may enter: under root, nginx's workers run as nobody
    with tempfile.TemporaryDirectory(prefix="cascade-nginx-") as name:
        folder = Path(name)
        folder.chmod(0o755)
        yield from running(nginx, folder, served)


def running(nginx: str, folder: Path, served: App) -> Iterator[Front]:
    """nginx with the example in front of `served`, until the generator is closed."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True)
    http, https = free_port(), free_port()
    conf = folder / "nginx.conf"
    conf.write_text(local_config(EXAMPLE.read_text(), folder, served.url, http, https))
    command = [nginx, "-p", str(folder), "-c", str(conf)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr  # the example is valid nginx
    process = subprocess.Popen([*command, "-g", "daemon off;"], stderr=subprocess.DEVNULL)  # errors: error.log
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{http}/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield Front(f"http://127.0.0.1:{http}", f"https://127.0.0.1:{https}")
    finally:
        process.terminate()
        process.wait(10)


def test_plain_http_goes_to_https(front: Front) -> None:
    answer = httpx.get(f"{front.http}/drawdowns?assets=BTC", timeout=10)
    assert answer.status_code == 301 and answer.headers["location"] == "https://127.0.0.1/drawdowns?assets=BTC"


def test_the_frontend_is_sent_gzipped(front: Front) -> None:
    page = httpx.get(front.https + "/", verify=False, timeout=10)
    bundle = re.search(r'src="\./(static/js/index\.[^"]+\.js)"', page.text)
    assert page.status_code == 200 and bundle, page.text[:500]
    with httpx.stream("GET", f"{front.https}/{bundle[1]}", verify=False, timeout=10,
                      headers={"Accept-Encoding": "gzip"}) as answer:
        sent = b"".join(answer.iter_raw())
        assert answer.headers["content-encoding"] == "gzip" and "Accept-Encoding" in answer.headers["vary"]
    whole = httpx.get(f"{front.https}/{bundle[1]}", verify=False, timeout=10,
                      headers={"Accept-Encoding": "identity"}).content
    assert gzip.decompress(sent) == whole and len(sent) < 0.5 * len(whole), (len(sent), len(whole))


def test_the_app_runs_through_nginx_with_a_compressed_websocket(front: Front, browser) -> None:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        extensions = []
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.webSocketHandshakeResponseReceived",
               lambda event: extensions.append(event["response"]["headers"].get("Sec-WebSocket-Extensions", "")))
        page.goto(f"{front.https}/liquidations")
        wait_for_page(page, EXPORT_ALL)
        no_exception(page)
        assert extensions and extensions[0].startswith("permessage-deflate"), extensions
    finally:
        context.close()
