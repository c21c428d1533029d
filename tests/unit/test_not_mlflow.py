"""A tracking URI that points at some other web server: the status and a short excerpt of its
answer, never the whole HTML page."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.registry.rest import RestRegistryReader
from mlops_gitops.tracking import Tracking, excerpt

PAGE = ("<!DOCTYPE html><html><head><title>404 Not Found</title><style>body {color: red}"
        "</style></head><body><h1>Not Found</h1><p>The requested URL was not found on this "
        "server.</p>" + "<p>padding</p>" * 500 + "</body></html>")


@pytest.fixture
def web_server():
    """A plain web server on 127.0.0.1: 404 with an HTML page, or 200 with HTML under /ok."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            status = 200 if self.path.startswith("/ok/") else 404
            body = PAGE.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_excerpt_is_one_short_line_of_text():
    text = excerpt(PAGE)
    assert text.startswith("404 Not Found: Not Found The requested URL was not found")
    assert len(text) <= 120 and "<" not in text and "color" not in text
    assert excerpt('{"a": 1}') == '{"a": 1}'


@pytest.mark.parametrize("prefix,status", [("", "HTTP 404"),
                                           ("/ok", "a response that is not JSON")])
def test_rest_reader_names_the_status_and_shows_an_excerpt(web_server, prefix, status):
    uri = web_server + prefix
    with pytest.raises(DiagnosticError) as caught:
        RestRegistryReader(Tracking(uri), timeout=5).list_models()
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.message.startswith(f"registered-models/search failed: {status} from {uri}")
    assert "404 Not Found: Not Found" in diagnostic.message
    assert "<html" not in diagnostic.message.lower() and len(diagnostic.message) < 300
    assert "MLflow tracking server" in diagnostic.hint


def test_mlflow_client_errors_are_shortened_too(web_server):
    from mlflow.exceptions import MlflowException

    from mlops_gitops.registry.mlflow import MlflowRegistry

    registry = object.__new__(MlflowRegistry)  # only the error translation, no client
    registry.tracking = Tracking(web_server)
    message = ("API request to endpoint /api/2.0/mlflow/registered-models/search failed with "
               f"error code 404 != 200. Response body: '{PAGE}'")
    with pytest.raises(DiagnosticError) as caught, registry.errors("listing registered models"):
        raise MlflowException(message)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.message.startswith(f"listing registered models failed: HTTP 404 from "
                                         f"{web_server} ('404 Not Found")
    assert len(diagnostic.message) < 300
