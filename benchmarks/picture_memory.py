"""Peak memory of reading one small-but-huge picture: a 0.5 MB PNG of 8000x8000 16-bit RGBA
pixels (under the 64-megapixel cap), as an upload is kept and as image-info reads it.

Each path runs in a fresh process and reports the growth of its peak RSS (ru_maxrss) over the
process's own start, in MB.

    python benchmarks/picture_memory.py [--size 8000]
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def big_png(size: int) -> bytes:
    """size x size, 16-bit RGBA, all zero pixels, an A1111 text chunk after the pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    squeeze = zlib.compressobj(9)
    row = b"\0" * (1 + size * 8)
    pixels = b"".join(squeeze.compress(row) for _ in range(size)) + squeeze.flush()
    text = b"parameters\0a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42"
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 16, 6, 0, 0, 0))
        + chunk(b"IDAT", pixels)
        + chunk(b"tEXt", text)
        + chunk(b"IEND", b"")
    )


CHILD = """
import resource, sys
sys.path.insert(0, {root!r})
from pathlib import Path
import io
content = Path({path!r}).read_bytes()
from sfumato.engine.images import read_picture
from sfumato.metadata.read import read_info_bytes
start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if {what!r} == "upload":
    picture = read_picture(content, "The upload")  # what save_upload keeps, then encodes
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
else:
    read_info_bytes(content)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - start) / 1024)
"""


def measure(path: Path, what: str) -> float:
    code = CHILD.format(root=str(ROOT), path=str(path), what=what)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.png"
        path.write_bytes(big_png(args.size))
        mb = path.stat().st_size / 1e6
        print(f"{args.size}x{args.size} 16-bit RGBA PNG, {mb:.2f} MB on disk")
        for what in ("image-info", "upload"):
            print(f"{what:>10}: peak RSS +{measure(path, what):.0f} MB")


if __name__ == "__main__":
    main()
