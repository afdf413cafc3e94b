"""Downloads against a real HTTP server on 127.0.0.1 that honours ranges and can break off."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sfumato.catalog.download import DownloadError, download

PAYLOAD = os.urandom(3 * 1024 * 1024 + 123)
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(BaseHTTPRequestHandler):
    cut_after: int | None = None  # bytes of the body to send before dropping the connection
    ranges = True
    digest: str | None = None
    requests: list[str | None] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).requests.append(self.headers.get("Range"))
        start = 0
        if self.ranges and (r := self.headers.get("Range")):
            start = int(r.removeprefix("bytes=").rstrip("-"))
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Disposition", 'attachment; filename="style_v2.safetensors"')
        if self.digest:
            self.send_header("Digest", self.digest)
        self.end_headers()
        cut = type(self).cut_after
        if cut is not None:
            type(self).cut_after = None  # only the first time
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.cut_after, Handler.ranges, Handler.digest, Handler.requests = None, True, None, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/files/download?id=1"
    httpd.shutdown()


def test_downloads_under_the_servers_file_name(server, tmp_path):
    seen = []
    path = download(server, tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "style_v2.safetensors"
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert list(tmp_path.iterdir()) == [path]  # no .part left behind


def test_a_cut_connection_leaves_no_file_under_the_name_and_resumes(server, tmp_path):
    Handler.cut_after = 1_000_000
    with pytest.raises(DownloadError, match="Run the same command again to resume"):
        download(server, tmp_path)
    assert not (tmp_path / "style_v2.safetensors").exists()
    assert (tmp_path / "style_v2.safetensors.part").stat().st_size == 1_000_000
    path = download(server, tmp_path, sha256=SHA256)
    assert path.read_bytes() == PAYLOAD
    assert Handler.requests[-1] == "bytes=1000000-"  # only the rest was asked for


def test_a_server_that_ignores_ranges_starts_over(server, tmp_path):
    (tmp_path / "style_v2.safetensors.part").write_bytes(b"stale bytes")
    Handler.ranges = False
    assert download(server, tmp_path).read_bytes() == PAYLOAD


def test_a_wrong_hash_is_refused_and_nothing_is_kept(server, tmp_path):
    with pytest.raises(DownloadError, match=f"its sha256 is {SHA256}, not 0000"):
        download(server, tmp_path, sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_the_servers_digest_header_and_a_url_hash_are_checked(server, tmp_path):
    Handler.digest = "sha-256=" + base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(DownloadError, match="not the file the source describes"):
        download(server, tmp_path)
    Handler.digest = None
    with pytest.raises(DownloadError, match="not the file the source describes"):
        download(server + "#sha256=" + "1" * 64, tmp_path)
    assert download(server + "#sha256=" + SHA256, tmp_path).read_bytes() == PAYLOAD


def test_an_existing_file_is_never_replaced(server, tmp_path):
    (tmp_path / "style_v2.safetensors").write_bytes(b"mine")
    with pytest.raises(DownloadError, match="already exists"):
        download(server, tmp_path)
    assert (tmp_path / "style_v2.safetensors").read_bytes() == b"mine"


def test_an_unreachable_server_is_a_sentence(tmp_path):
    with pytest.raises(DownloadError, match="Cannot reach http://127.0.0.1:9/x.safetensors"):
        download("http://127.0.0.1:9/x.safetensors", tmp_path)
