# SPDX-License-Identifier: Apache-2.0
"""File bytes in an S3 bucket, or any store that speaks its API (MinIO, Ceph, R2).

Selected with ``POTLUCK_FILE_STORAGE=potluck.files.storage_s3.S3Storage`` and configured
through ``potluck.files.s3_conf``. A save streams: one ``put_object`` for a file smaller
than a part, else a multipart upload that becomes visible only when it completes, so a
failed save never replaces what was under the key. Memory holds about two parts at
most: the one being sent and what has arrived since.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import logging
from collections.abc import Iterable
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from potluck.files import s3_conf

log = logging.getLogger(__name__)

# Line iteration fills this much at a time; larger reads go to the body directly.
READ_BUFFER_BYTES = 256 * 1024


class S3Storage:
    """The ``Storage`` protocol on boto3; keys become ``<prefix>/<org id>/<file id>``."""

    def __init__(self) -> None:
        self.bucket = s3_conf.bucket()
        self.prefix = s3_conf.prefix()
        self.part_bytes = s3_conf.part_bytes()
        self.client = s3_client(s3_conf.endpoint_url(), s3_conf.region(),
                                s3_conf.addressing_style())

    def object_key(self, key: str) -> str:
        """The bucket's key for a storage key (checked as LocalStorage checks its paths)."""
        parts = key.split("/")
        if any(part in ("", ".", "..") or "\\" in part for part in parts):
            raise ValueError(f"invalid storage key {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def save(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        object_key = self.object_key(key)
        digest = hashlib.sha256()
        size = 0
        pending = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                pending += chunk
                # Strictly more than a part: what is left at the end is never empty,
                # and a file of exactly one part still goes in one request.
                while len(pending) > self.part_bytes:
                    if upload_id is None:
                        upload_id = self.client.create_multipart_upload(
                            Bucket=self.bucket, Key=object_key)["UploadId"]
                    with memoryview(pending) as view:  # one copy, not two
                        part = bytes(view[:self.part_bytes])
                    del pending[:self.part_bytes]
                    parts.append(self._upload_part(object_key, upload_id, len(parts) + 1,
                                                   part))
            if upload_id is None:
                self.client.put_object(Bucket=self.bucket, Key=object_key, Body=bytes(pending))
            else:
                parts.append(self._upload_part(object_key, upload_id, len(parts) + 1,
                                               bytes(pending)))
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id,
                    MultipartUpload={"Parts": parts})
        except BaseException:
            if upload_id is not None:
                self._abort(object_key, upload_id)
            raise
        return size, digest.hexdigest()

    def open(self, key: str) -> BinaryIO:
        object_key = self.object_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                raise FileNotFoundError(errno.ENOENT, "no such object in the bucket",
                                        f"s3://{self.bucket}/{object_key}") from None
            raise
        return io.BufferedReader(_BodyReader(response["Body"]), buffer_size=READ_BUFFER_BYTES)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            # S3 answers 204 for a missing key; some compatible stores answer 404.
            if _error_code(exc) not in ("NoSuchKey", "404"):
                raise

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True

    def _upload_part(self, object_key: str, upload_id: str, number: int,
                     body: bytes) -> dict[str, Any]:
        response = self.client.upload_part(Bucket=self.bucket, Key=object_key,
                                           UploadId=upload_id, PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _abort(self, object_key: str, upload_id: str) -> None:
        """Drops an unfinished upload's parts; a failure here must not hide the first one."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=object_key,
                                               UploadId=upload_id)
        except Exception as exc:
            # Its parts stay billed until a lifecycle rule removes them.
            log.warning("could not abort multipart upload %s of s3://%s/%s: %s",
                        upload_id, self.bucket, object_key, exc)


class _BodyReader(io.RawIOBase):
    """A botocore StreamingBody as a raw binary stream, for ``io.BufferedReader``."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        # StreamingBody.read checks the length against Content-Length at the end, so a
        # cut connection raises instead of reading as a short file.
        data = self._body.read(len(buffer))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


@functools.cache
def s3_client(endpoint_url: str | None, region: str | None, addressing_style: str) -> Any:
    """One client per configuration and process (boto3 clients are thread-safe).

    Credentials come from boto3's default chain. Stores other than AWS often refuse the
    checksums boto3 adds to every upload since 1.36, so with an endpoint URL they are
    sent only where S3 requires them.
    """
    checksums = "when_required" if endpoint_url else "when_supported"
    config = Config(s3={"addressing_style": addressing_style},
                    retries={"mode": "standard"},
                    request_checksum_calculation=checksums,
                    response_checksum_validation=checksums)
    # A session of its own: creating clients from boto3's default session is not thread-safe.
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url,
                                          region_name=region, config=config)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
