# SPDX-License-Identifier: Apache-2.0
"""Which validator checks the uploads of each file purpose: a registry the apps fill.

Files knows the JSONL framework (``potluck.files.jsonl``), not what a fine-tuning example
or a batch request is: the app that owns a purpose registers the factory of its schema's
validator from its ``AppConfig.ready()`` (``register("batch", ...)``), built with the
upload limits from settings. An upload of a purpose nobody registered is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from potluck.files.jsonl import JsonlValidator, ValidationReport, validate

ValidatorFactory = Callable[[], JsonlValidator]
_FACTORIES: dict[str, ValidatorFactory] = {}


def register(purpose: str, factory: ValidatorFactory) -> None:
    """Check uploads of ``purpose`` with a fresh ``factory()`` each (one per upload).
    Registering a purpose again replaces its factory (a reloaded app)."""
    _FACTORIES[purpose] = factory


def registered() -> list[str]:
    """The purposes whose uploads can be checked."""
    return sorted(_FACTORIES)


def validator_for(purpose: str) -> JsonlValidator:
    """A new validator for one upload of ``purpose``; ValueError when none is registered."""
    try:
        factory = _FACTORIES[purpose]
    except KeyError:
        raise ValueError(f"no validator for purpose {purpose!r}") from None
    return factory()


def validate_upload(purpose: str, chunks: Iterable[bytes]) -> ValidationReport:
    """Validate a whole stream as an upload of ``purpose`` (e.g. a file already stored)."""
    return validate(validator_for(purpose), chunks)
