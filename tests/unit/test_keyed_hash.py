"""A prepared HMAC gives HMAC-SHA256's own tags, for keys of every length around SHA-256's
block (a longer key is hashed first, a shorter one padded) and messages of every size."""

from __future__ import annotations

import hashlib
import hmac
import threading

import pytest

from orchestrator.keyed_hash import PreparedHmac


@pytest.mark.parametrize("key_length", [0, 1, 31, 32, 63, 64, 65, 128, 1000])
@pytest.mark.parametrize("message", [b"", b"x", bytes(range(256)) * 3, "山田".encode() * 5000])
def test_its_tag_is_hmac_sha256(key_length: int, message: bytes) -> None:
    key = bytes((7 * n + key_length) % 256 for n in range(key_length))
    prepared = PreparedHmac(key)
    expected = hmac.new(key, message, hashlib.sha256).digest()
    assert prepared.digest(message) == expected
    assert prepared.digest(message) == expected  # the prepared hashes were not fed


def test_threads_sharing_one_key_each_get_their_own_tags() -> None:
    prepared = PreparedHmac(b"shared key")
    wrong: list[bytes] = []

    def sign(worker: int) -> None:
        for n in range(300):
            message = f"{worker}:{n}".encode()
            if prepared.digest(message) != hmac.new(b"shared key", message, "sha256").digest():
                wrong.append(message)

    threads = [threading.Thread(target=sign, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
