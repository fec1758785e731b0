# SPDX-License-Identifier: Apache-2.0
"""moto's S3 server on a free port of 127.0.0.1: the fake sits at S3's HTTP boundary, and
everything on our side (boto3, botocore, the HTTP requests) is real."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"


class S3Server:
    """One server in a thread of the test process; each test makes a bucket of its own."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def start(self) -> S3Server:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=self.url, region_name=REGION, **CREDENTIALS)
        return self

    def stop(self) -> None:
        self._server.stop()

    def new_bucket(self) -> str:
        name = f"potluck-test-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def unfinished_uploads(self, bucket: str) -> list[dict[str, Any]]:
        return self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
