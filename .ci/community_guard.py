# SPDX-License-Identifier: Apache-2.0
"""Proves the community edition needs none of the ``enterprise`` extra's libraries.

``.ci/run`` copies this module into the community-only phase's virtualenv and calls
``install(...)`` from that venv's ``sitecustomize.py``, so it runs first in every Python
process of the phase: pytest, and every process the tests start with that interpreter
(web workers, node agents, trainers, vLLM replicas), whatever environment they were given.

From then on an import of one of those libraries made by first-party code (any file under
the checked tree: ``community/``, ``tests/``) fails with an ``ImportError`` that says why,
and is written to a log that ``.ci/run`` reads after the tests, so an import a caller
swallowed (``try: import stripe except ImportError``) still fails the run. Third-party
code may import them (moto and vLLM's stack need cryptography, requests, dnspython): that
is their dependency, installed with them in a community install too; the claim is about
Potluck's own code.

The libraries stay installed (installing a second venv with vLLM is too slow for CI);
they are only unreachable for Potluck's code. Imports are caught both ways a module is
imported: ``import`` statements (``builtins.__import__``, which sees the importer's
globals) and ``importlib.import_module`` (a meta-path finder that looks at the caller's
frame).
"""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Iterable
from typing import Any

_ORIGINAL_IMPORT = builtins.__import__


class CommunityImportRefused(ImportError):
    pass


class _Guard:
    def __init__(self, root: str, blocked: Iterable[str], log: str) -> None:
        self.root = os.path.realpath(root) + os.sep
        self.blocked = frozenset(blocked)
        self.log = log

    def first_party(self, filename: str | None) -> bool:
        return bool(filename) and os.path.realpath(filename).startswith(self.root)

    def refuse(self, name: str, importer: str) -> CommunityImportRefused:
        line = f"{importer} imports {name} (pid {os.getpid()})\n"
        fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        return CommunityImportRefused(
            f"community-only run: {importer} imports {name!r}, a library of the "
            "`enterprise` extra; the community edition must not need it")

    # ``import x`` / ``from x import y`` anywhere: the importer's globals are at hand.
    def import_hook(self, name: str, globals: Any = None, locals: Any = None,
                    fromlist: Any = (), level: int = 0) -> Any:
        if level == 0 and name.partition(".")[0] in self.blocked and globals:
            importer = globals.get("__file__")
            if self.first_party(importer):
                raise self.refuse(name, os.path.relpath(importer, self.root))
        return _ORIGINAL_IMPORT(name, globals, locals, fromlist, level)

    # importlib.import_module("x"): the first frame outside the import machinery.
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if path is not None or fullname not in self.blocked:
            return None
        frame = sys._getframe(1)
        while frame is not None:
            filename = frame.f_code.co_filename
            if not (filename.startswith("<frozen importlib") or filename == __file__
                    or os.sep + "importlib" + os.sep in filename):
                break
            frame = frame.f_back
        if frame is not None and self.first_party(frame.f_code.co_filename):
            raise self.refuse(fullname, os.path.relpath(frame.f_code.co_filename, self.root))
        return None


def install(*, root: str, blocked: Iterable[str], log: str) -> None:
    """Refuse imports of ``blocked`` top-level modules by code under ``root``; each refusal
    is also appended to ``log``."""
    guard = _Guard(root, blocked, log)
    builtins.__import__ = guard.import_hook
    sys.meta_path.insert(0, guard)  # type: ignore[arg-type]  # a finder needs find_spec only
