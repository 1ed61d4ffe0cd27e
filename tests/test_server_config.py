"""The dashboard's server settings (security probe s9, finding 4): localhost names only, no tracebacks in the page."""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_config_names_the_hosts_and_hides_tracebacks():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost"
    assert config["server"]["allowedHosts"] == ["localhost", "127.0.0.1", "::1"]
    assert config["client"]["showErrorDetails"] in ("type", "none")


def websocket_status(port: int, host: str) -> str:
    """The status line of a WebSocket upgrade to Streamlit's stream with this Host header (Origin the same)."""
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Protocol: streamlit\r\nOrigin: http://{host}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request.encode())
        return connection.recv(4096).split(b"\r\n", 1)[0].decode()


@pytest.mark.slow
def test_a_page_that_rebinds_its_name_to_this_machine_cannot_open_the_app(tmp_path):
    # A site the user visits points evil.example at 127.0.0.1; its scripts then are same-origin with the app.
    from tests.browser import harness

    server = harness.start_streamlit(tmp_path)
    try:
        port = int(server.url.rsplit(":", 1)[1])
        assert " 101 " in websocket_status(port, f"localhost:{port}") + " "
        assert " 101 " in websocket_status(port, f"127.0.0.1:{port}") + " "
        assert " 403 " in websocket_status(port, f"evil.example:{port}") + " "
    finally:
        server.stop()
