"""Download a model file: resumable, verified, and never half-written under a model's name.

The bytes go to ``NAME.part`` beside the destination; an interrupted download resumes from
there with an HTTP range request; the file gets its real name only once it is whole and its
sha256 matches what the source said (``--sha256``, a ``#sha256=...`` on the URL, or the
server's ``Digest``/``Repr-Digest`` or Hugging Face's ``X-Linked-Etag`` header).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sfumato.catalog.hashes import sha256_file
from sfumato.errors import SfumatoError

CHUNK = 1 << 20
TIMEOUT_S = 60
# (bytes so far, total bytes or None)
Progress = Callable[[int, int | None], None]


class DownloadError(SfumatoError):
    pass


def _expected_sha256(url: str, headers: Message) -> str | None:
    if m := re.search(r"#sha256=([0-9a-fA-F]{64})$", url):
        return m.group(1).lower()
    for name in ("Repr-Digest", "Digest"):
        for part in (headers.get(name) or "").split(","):
            algo, _, value = part.strip().partition("=")
            if algo.lower() == "sha-256" and value:
                try:
                    return base64.b64decode(value.strip(":")).hex()
                except ValueError:
                    pass
    etag = (headers.get("X-Linked-Etag") or "").strip('"')
    return etag.lower() if re.fullmatch(r"[0-9a-fA-F]{64}", etag) else None


def file_name(url: str, headers: Message | None = None) -> str:
    """The name the server gives the file, else the last part of the URL's path."""
    if headers is not None and (name := headers.get_filename()):
        return Path(name).name
    name = Path(unquote(urlsplit(url).path)).name
    if not name:
        raise DownloadError(f"Cannot tell a file name from {url}; give one with --name.")
    return name


def _open(url: str, start: int):
    request = urllib.request.Request(url.split("#")[0], headers={"User-Agent": "sfumato"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 (the user's URL)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # the part file is already whole
            return None
        raise DownloadError(f"The server refused {url}: HTTP {e.code} {e.reason}.") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"Cannot reach {url}: {reason}.") from None


def download(
    url: str,
    folder: Path,
    name: str | None = None,
    sha256: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Fetch ``url`` into ``folder``; returns the finished file's path."""
    progress = progress or (lambda done, total: None)
    folder.mkdir(parents=True, exist_ok=True)
    response = _open(url, 0)
    name = name or file_name(url, response.headers)
    target = folder / name
    if target.exists():
        response.close()
        raise DownloadError(f"{target} already exists; remove it first to download it again.")
    expected = (sha256 or _expected_sha256(url, response.headers) or "").lower() or None
    part = folder / (name + ".part")
    start = part.stat().st_size if part.exists() else 0
    if start:  # resume: ask again for the rest only
        response.close()
        response = _open(url, start)
    if response is not None:
        with response:
            if start and response.status != 206:  # the server ignores ranges: start again
                start = 0
            length = response.headers.get("Content-Length")
            total = start + int(length) if length and length.isdigit() else None
            done = start
            progress(done, total)
            with open(part, "ab" if start else "wb") as f:
                try:
                    while block := response.read(CHUNK):
                        f.write(block)
                        done += len(block)
                        progress(done, total)
                except (OSError, urllib.error.URLError) as e:
                    raise DownloadError(
                        f"The download of {name} broke off after {done:,} bytes ({e}). Run the "
                        "same command again to resume it."
                    ) from None
            if total is not None and done < total:
                raise DownloadError(
                    f"The download of {name} stopped at {done:,} of {total:,} bytes. Run the "
                    "same command again to resume it."
                )
    if expected:
        actual = sha256_file(part)
        if actual != expected:
            part.unlink()
            raise DownloadError(
                f"{name} is not the file the source describes: its sha256 is {actual}, not "
                f"{expected}. The download was deleted."
            )
    os.replace(part, target)
    return target


@contextlib.contextmanager
def _hub_online():
    """sfumato keeps huggingface_hub offline (HF_HUB_OFFLINE); a pull is the user asking."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def pull_from_hub(spec: str, folder: Path, endpoint: str | None = None) -> Path:
    """``OWNER/REPO/FILE`` from the Hugging Face Hub, through huggingface_hub (which resumes,
    follows the Hub's storage backends and reads ``HF_TOKEN`` for gated repositories)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    parts = spec.strip("/").split("/")
    if len(parts) < 3:
        raise DownloadError(
            f"Name one file of the repository: hf:OWNER/REPO/FILE, for example "
            f"hf:ByteDance/SDXL-Lightning/sdxl_lightning_4step_lora.safetensors ('{spec}' names "
            "no file; whole diffusers repositories cannot be pulled yet)."
        )
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    target = folder / Path(filename).name
    if target.exists():
        raise DownloadError(f"{target} already exists; remove it first to download it again.")
    staging = folder / ".hub-downloads"  # huggingface_hub's partial files; the scan skips it
    try:
        with _hub_online():
            metadata = get_hf_file_metadata(hf_hub_url(repo, filename, endpoint=endpoint))
            fetched = Path(hf_hub_download(repo, filename, local_dir=staging, endpoint=endpoint))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as e:
        raise DownloadError(
            f"Cannot download {filename} from {repo} on the Hugging Face Hub: "
            f"{str(e).splitlines()[0]}"
        ) from None
    expected = (metadata.etag or "").lower()
    if re.fullmatch(r"[0-9a-f]{64}", expected) and sha256_file(fetched) != expected:
        fetched.unlink()
        raise DownloadError(f"{filename} from {repo} does not match the Hub's sha256; deleted.")
    os.replace(fetched, target)
    return target
