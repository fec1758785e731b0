# SPDX-License-Identifier: Apache-2.0
"""S3Storage keeps LocalStorage's contract against an S3 server (moto's, over HTTP):
all-or-nothing saves in one request or in parts, checked keys, streamed reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from file_samples import stored_files
from s3_buckets import PREFIX, MiB, blob, pieces, recorded, sha256

from potluck.errors import InvalidInput
from potluck.files.storage import Storage, get_storage
from potluck.files.storage_s3 import S3Storage

# The Storage contract


def test_save_returns_size_and_sha256_and_open_reads_it_back(bucket, file_storage):
    storage = get_storage()
    assert isinstance(storage, S3Storage) and isinstance(storage, Storage)
    size, digest = storage.save("org/file-1", [b"hello ", b"world"])
    assert (size, digest) == (11, sha256(b"hello world"))
    assert bucket.keys() == [f"{PREFIX}/org/file-1"]
    assert storage.exists("org/file-1") and not storage.exists("org/file-2")
    with storage.open("org/file-1") as handle:
        assert handle.read() == b"hello world"
    storage.delete("org/file-1")
    storage.delete("org/file-1")  # a missing key is not an error
    assert not storage.exists("org/file-1") and bucket.keys() == []
    assert stored_files(file_storage) == []  # nothing went to the local disk


def test_an_empty_file(bucket):
    storage = S3Storage()
    assert storage.save("org/empty", []) == (0, sha256(b""))
    with storage.open("org/empty") as handle:
        assert handle.read() == b"" and list(handle) == []


def test_without_a_prefix_keys_are_the_storage_keys(bucket, settings):
    settings.S3_PREFIX = ""
    S3Storage().save("org/file-1", [b"x"])
    assert bucket.keys() == ["org/file-1"]


def test_a_file_up_to_one_part_goes_in_one_request_a_bigger_one_in_parts(bucket, settings):
    settings.S3_PART_BYTES = 5 * MiB
    storage, recorder = recorded()
    one_part = blob(5 * MiB)
    assert storage.save("org/one", pieces(one_part)) == (len(one_part), sha256(one_part))
    assert recorder.calls == ["put_object"]

    recorder.calls.clear()
    big = blob(3 * 5 * MiB + 1, seed=1)
    assert storage.save("org/big", pieces(big, 3 * MiB)) == (len(big), sha256(big))
    assert recorder.calls == ["create_multipart_upload", *["upload_part"] * 4,
                              "complete_multipart_upload"]
    assert bucket.read(f"{PREFIX}/org/big") == big
    assert bucket.read(f"{PREFIX}/org/one") == one_part
    assert bucket.unfinished_uploads() == []


@pytest.mark.parametrize("size,calls", [
    (MiB, []),  # the iterator fails before a single request is made
    (16 * MiB, ["create_multipart_upload", *["upload_part"] * 3, "abort_multipart_upload"]),
], ids=["one request", "multipart"])
def test_a_failed_save_leaves_nothing_and_keeps_what_was_there(bucket, settings, size, calls):
    settings.S3_PART_BYTES = 5 * MiB
    storage, recorder = recorded()
    storage.save("org/file-1", [b"old"])
    recorder.calls.clear()

    def chunks() -> Iterator[bytes]:
        yield from pieces(blob(size))
        raise InvalidInput("too big")

    with pytest.raises(InvalidInput):
        storage.save("org/file-1", chunks())
    assert recorder.calls == calls
    with pytest.raises(InvalidInput):
        storage.save("org/file-2", chunks())
    assert bucket.keys() == [f"{PREFIX}/org/file-1"]
    assert bucket.read(f"{PREFIX}/org/file-1") == b"old"
    assert bucket.unfinished_uploads() == []


@pytest.mark.parametrize("fail", [("upload_part", 2), ("complete_multipart_upload", 1)])
def test_a_failed_request_aborts_the_upload(bucket, settings, fail):
    settings.S3_PART_BYTES = 5 * MiB
    storage, recorder = recorded(fail)
    with pytest.raises(ConnectionError, match="injected"):
        storage.save("org/file-1", pieces(blob(12 * MiB)))
    assert recorder.calls[-1] == "abort_multipart_upload"
    assert bucket.keys() == [] and bucket.unfinished_uploads() == []


def test_a_failed_abort_is_logged_and_the_first_error_raised(bucket, settings, caplog):
    settings.S3_PART_BYTES = 5 * MiB
    storage, _ = recorded(("abort_multipart_upload", 1))

    def chunks() -> Iterator[bytes]:
        yield from pieces(blob(6 * MiB))
        raise InvalidInput("bad")

    with pytest.raises(InvalidInput):
        storage.save("org/file-1", chunks())
    assert "could not abort multipart upload" in caplog.text
    assert "testing" not in caplog.text  # never the credentials
    for upload in bucket.unfinished_uploads():  # tidy the bucket
        bucket.server.client.abort_multipart_upload(
            Bucket=bucket.name, Key=upload["Key"], UploadId=upload["UploadId"])


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "org/../../x", "org/./x", "org//x",
                                 "org\\x"])
def test_keys_are_checked_as_local_storage_checks_them(bucket, key):
    storage = S3Storage()
    for call in (lambda: storage.save(key, [b"x"]), lambda: storage.open(key),
                 lambda: storage.exists(key), lambda: storage.delete(key)):
        with pytest.raises(ValueError, match="invalid storage key"):
            call()
    assert bucket.keys() == []


# Reading


LINES = b"".join(f"line {i} {'x' * (i % 997)}\n".encode() for i in range(12_000))


def test_reading_a_multi_mib_object_by_lines_and_by_size(bucket, settings):
    settings.S3_PART_BYTES = 5 * MiB
    assert len(LINES) > 5 * MiB
    storage = S3Storage()
    storage.save("org/lines", pieces(LINES))

    with storage.open("org/lines") as handle:
        assert handle.readable() and not handle.seekable()
        assert list(handle) == LINES.splitlines(keepends=True)
    assert handle.closed

    with storage.open("org/lines") as handle:
        read = list(iter(lambda: handle.read(100_000), b""))
    assert [len(piece) for piece in read[:-1]] == [100_000] * (len(read) - 1)
    assert b"".join(read) == LINES

    with storage.open("org/lines") as handle:
        assert handle.readline() == LINES[:LINES.index(b"\n") + 1]
        assert handle.read(10) == LINES[LINES.index(b"\n") + 1:][:10]
        assert handle.read() == LINES[LINES.index(b"\n") + 11:]
        assert handle.read() == b""

    handle = storage.open("org/lines")
    assert handle.read(5) == b"line "
    handle.close()  # before the end: the connection is dropped, not drained
    assert handle.closed


def test_a_missing_key_is_file_not_found(bucket):
    with pytest.raises(FileNotFoundError) as missing:
        S3Storage().open("org/missing")
    assert missing.value.filename == f"s3://{bucket.name}/{PREFIX}/org/missing"
