# SPDX-License-Identifier: Apache-2.0
from potluck.cli.main import main

main()
