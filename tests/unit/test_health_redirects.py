"""The deployment health check does not follow redirects off the device (finding 11e).

Two real HTTP servers on 127.0.0.1: "the app" and "elsewhere". A redirect from the app to
elsewhere counts as the app answering 302 and elsewhere is never asked; a redirect within
the app is followed.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from marketplace.pipeline import StepFailed, wait_healthy


def _server(routes: dict[str, tuple[int, str | None]], hits: list[str]):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            code, location = routes.get(self.path, (404, None))
            self.send_response(code)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers():
    elsewhere_hits: list[str] = []
    elsewhere = _server({"/": (200, None)}, elsewhere_hits)
    app_hits: list[str] = []
    away = f"http://127.0.0.1:{elsewhere.server_port}/"
    app = _server(
        {
            "/away": (302, away),
            "/away-by-name": (302, f"http://localhost:{elsewhere.server_port}/"),
            "/login": (302, "/home"),
            "/home": (200, None),
        },
        app_hits,
    )
    yield app.server_port, app_hits, elsewhere_hits
    app.shutdown()
    elsewhere.shutdown()


def _check(port: int, path: str, expect: int = 200) -> str:
    return wait_healthy(
        address="127.0.0.1",
        port=port,
        kind="http",
        path=path,
        expect_status=expect,
        timeout_seconds=0.5,
        sleep=lambda _seconds: None,
    )


@pytest.mark.parametrize("path", ["/away", "/away-by-name"])
def test_a_redirect_off_the_device_is_not_followed(servers, path):
    port, _, elsewhere_hits = servers
    with pytest.raises(StepFailed, match="answered 302"):
        _check(port, path)
    assert elsewhere_hits == []
    assert "answered 302" in _check(port, path, expect=302)
    assert elsewhere_hits == []


def test_a_redirect_within_the_app_is_followed(servers):
    port, app_hits, _ = servers
    assert "answered 200" in _check(port, "/login")
    assert app_hits[:2] == ["/login", "/home"]
