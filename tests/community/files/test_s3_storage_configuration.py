# SPDX-License-Identifier: Apache-2.0
"""S3Storage is configured by settings (POTLUCK_S3_*, read once by potluck.settings); a
missing bucket or a bad value is named."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from s3_buckets import MiB

from potluck.files.storage import get_storage
from potluck.files.storage_s3 import S3Storage

# Configuration


def test_the_bucket_is_required(bucket, settings):
    del settings.S3_BUCKET
    with pytest.raises(ImproperlyConfigured, match="POTLUCK_S3_BUCKET is not set"):
        get_storage()


def test_the_environment_configures_it_through_settings(bucket):
    """``potluck.settings`` reads POTLUCK_FILE_STORAGE and POTLUCK_S3_* once, in a process
    that starts with them; nothing reads the environment afterwards."""
    code = ("import django; django.setup(); "
            "from potluck.files.storage import get_storage; s = get_storage(); "
            "print(type(s).__name__, s.bucket, repr(s.prefix), s.part_bytes)")
    env = {**os.environ, "POTLUCK_FILE_STORAGE": "potluck.files.storage_s3.S3Storage",
           "POTLUCK_S3_BUCKET": bucket.name, "POTLUCK_S3_PART_BYTES": str(6 * MiB),
           "DJANGO_SETTINGS_MODULE": "potluck.settings"}
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.split() == ["S3Storage", bucket.name, "''", str(6 * MiB)]


@pytest.mark.parametrize("name,value,message", [
    ("S3_PART_BYTES", 5 * MiB - 1, "POTLUCK_S3_PART_BYTES must be between 5242880"),
    ("S3_PART_BYTES", "8M", "POTLUCK_S3_PART_BYTES must be an integer, got '8M'"),
    ("S3_ADDRESSING_STYLE", "sideways", "POTLUCK_S3_ADDRESSING_STYLE must be one of auto, "
                                        "path, virtual, got 'sideways'"),
])
def test_bad_settings_are_named(bucket, settings, name, value, message):
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        S3Storage()


def test_one_client_per_configuration(bucket, settings):
    first = S3Storage().client
    assert S3Storage().client is first
    settings.S3_REGION = "eu-west-1"
    other = S3Storage().client
    assert other is not first and other.meta.region_name == "eu-west-1"
