import hashlib
import os

from sfumato.catalog.hashes import HashCache


def test_autov2_is_the_first_ten_hex_digits_of_sha256(tmp_path):
    model = tmp_path / "model.safetensors"
    model.write_bytes(os.urandom(3 << 20))
    expected = hashlib.sha256(model.read_bytes()).hexdigest()
    cache = HashCache(tmp_path / "hashes.json")
    assert cache.sha256(model) == expected
    assert cache.autov2(model) == expected[:10]


def test_hash_is_cached_by_path_size_and_mtime(tmp_path):
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"a" * 1000)
    first = HashCache(tmp_path / "hashes.json").sha256(model)
    stat = model.stat()
    # same size and mtime: a new cache object trusts the stored hash without reading the file
    model.write_bytes(b"b" * 1000)
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert HashCache(tmp_path / "hashes.json").sha256(model) == first
    # a changed file (new mtime) is hashed again
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert (
        HashCache(tmp_path / "hashes.json").sha256(model) == hashlib.sha256(b"b" * 1000).hexdigest()
    )


def test_a_damaged_cache_file_is_ignored(tmp_path):
    (tmp_path / "hashes.json").write_text("{not json")
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    assert HashCache(tmp_path / "hashes.json").sha256(model) == hashlib.sha256(b"x").hexdigest()
