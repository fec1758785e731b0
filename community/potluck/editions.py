# SPDX-License-Identifier: Apache-2.0
"""Which edition this installation runs: community, or community plus enterprise.

The enterprise edition is the ``potluck_enterprise`` package, and its libraries (Stripe,
SSO, DNS, cryptography) are the ``enterprise`` extra of the ``potluck`` distribution
(``pip install 'potluck[enterprise]'``; ``make`` installs it). A community install
(``pip install 'potluck[gpu]'``) may still carry the package without that extra: the
enterprise app then stays off, and ``potluck doctor`` says which libraries it lacks,
instead of every process failing on an import. Ground floor: imports nothing of Potluck
(it names the enterprise package only to look for it).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re

DISTRIBUTION = "potluck"
ENTERPRISE_PACKAGE = "potluck_enterprise"
ENTERPRISE_EXTRA = "enterprise"
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']enterprise["']""")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def enterprise_package_present() -> bool:
    return importlib.util.find_spec(ENTERPRISE_PACKAGE) is not None


def missing_enterprise_requirements() -> list[str]:
    """The distributions of the ``enterprise`` extra that are not installed, by the
    installed ``potluck`` distribution's own metadata; [] when that metadata is absent
    (a source tree on PYTHONPATH: nothing to check against)."""
    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    missing = []
    for requirement in requirements:
        name = _NAME.match(requirement)
        if not name or not _EXTRA_MARKER.search(requirement.partition(";")[2]):
            continue
        try:
            importlib.metadata.version(name.group(1))
        except importlib.metadata.PackageNotFoundError:
            missing.append(name.group(1))
    return sorted(missing)


def enterprise_installed() -> bool:
    """The enterprise package is here and so is every library of its extra."""
    return enterprise_package_present() and not missing_enterprise_requirements()
