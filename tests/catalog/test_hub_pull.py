"""`hf:OWNER/REPO/FILE` through huggingface_hub, against a local server that answers as the
Hub's resolve endpoint does (HEAD for the metadata, then GET for the bytes)."""

from __future__ import annotations

import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sfumato.catalog.download import DownloadError, pull_from_hub

FILES = {"someone/pixel-lora/pixel_v1.safetensors": os.urandom(200_000)}
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class Hub(BaseHTTPRequestHandler):
    lie_about_hash = False

    def _headers(self) -> bytes | None:
        repo_file = self.path.split("?")[0].lstrip("/").replace("/resolve/main/", "/")
        body = FILES.get(repo_file)
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        digest = hashlib.sha256(b"x" if self.lie_about_hash else body).hexdigest()
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("X-Linked-Etag", f'"{digest}"')
        self.send_header("X-Linked-Size", str(len(body)))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return body

    def do_HEAD(self):  # noqa: N802
        self._headers()

    def do_GET(self):  # noqa: N802
        if (body := self._headers()) is not None:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub():
    Hub.lie_about_hash = False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_a_file_from_the_hub_lands_under_its_name(hub, tmp_path):
    path = pull_from_hub("someone/pixel-lora/pixel_v1.safetensors", tmp_path, endpoint=hub)
    assert path == tmp_path / "pixel_v1.safetensors"
    assert path.read_bytes() == FILES["someone/pixel-lora/pixel_v1.safetensors"]


def test_hub_errors_and_bad_specs_are_sentences(hub, tmp_path):
    with pytest.raises(DownloadError, match="Cannot download nothing.safetensors from someone/"):
        pull_from_hub("someone/pixel-lora/nothing.safetensors", tmp_path, endpoint=hub)
    with pytest.raises(DownloadError, match="Name one file of the repository"):
        pull_from_hub("someone/pixel-lora", tmp_path, endpoint=hub)
    Hub.lie_about_hash = True
    with pytest.raises(DownloadError, match="does not match the Hub's sha256"):
        pull_from_hub("someone/pixel-lora/pixel_v1.safetensors", tmp_path, endpoint=hub)
    assert not (tmp_path / "pixel_v1.safetensors").exists()
