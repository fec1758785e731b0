# SPDX-License-Identifier: Apache-2.0
"""``potluck-demo``: a tiny Llama trained locally on Python's own documentation.

It needs no download, so every machine (CI included) has a real model to serve with
vLLM and to load with transformers. Building imports torch; importing this package
does not.
"""

from __future__ import annotations

from potluck.demo_model.build import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    MODEL_NAME,
    DemoModelError,
    build_demo_model,
    default_target_dir,
    read_manifest,
)

__all__ = ["FORMAT_VERSION", "MANIFEST_NAME", "MODEL_NAME", "DemoModelError",
           "build_demo_model", "default_target_dir", "read_manifest"]
