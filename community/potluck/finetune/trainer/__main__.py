# SPDX-License-Identifier: Apache-2.0
"""``python -m potluck.finetune.trainer SPEC_PATH``: train one job, exit 0, 2 or 3."""

from __future__ import annotations

import sys

from potluck.finetune.trainer.runner import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
