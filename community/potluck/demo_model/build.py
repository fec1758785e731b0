# SPDX-License-Identifier: Apache-2.0
"""Build ``potluck-demo`` into a directory that transformers and vLLM load, once.

The build writes into a temporary sibling directory and renames it into place, so a
reader sees either no model or a whole one. A finished build records what made it in
``potluck-demo.json``; asking again for the same seed, steps and corpus returns it.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from potluck import env
from potluck.demo_model.corpus import corpus_documents, corpus_sha256

MODEL_NAME = "potluck-demo"
FORMAT_VERSION = 1
MANIFEST_NAME = f"{MODEL_NAME}.json"
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors",
               "tokenizer.json", "tokenizer_config.json", MANIFEST_NAME)


class DemoModelError(RuntimeError):
    """The demo model cannot be built where it was asked for."""


def default_target_dir() -> Path:
    return env.data_dir() / "models" / MODEL_NAME


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a build in ``directory``, or None if there is none readable."""
    try:
        data = json.loads((directory / MANIFEST_NAME).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _is_current(directory: Path, *, seed: int, steps: int, corpus_digest: str) -> bool:
    manifest = read_manifest(directory)
    return (manifest is not None
            and manifest.get("format_version") == FORMAT_VERSION
            and manifest.get("seed") == seed and manifest.get("steps") == steps
            and manifest.get("corpus_sha256") == corpus_digest
            and all((directory / name).is_file() for name in MODEL_FILES))


def build_demo_model(target_dir: Path | None = None, *, seed: int = 0, steps: int = 250,
                     force: bool = False, progress: bool = True) -> Path:
    """Build the demo model into ``target_dir`` (default: <data dir>/models/potluck-demo).

    Returns the directory at once when it already holds a build of the same seed, steps,
    corpus and format; ``force`` builds again. Takes a few minutes on two cores at the
    default 250 steps.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    target = Path(target_dir if target_dir is not None else default_target_dir())
    target = target.expanduser().absolute()
    documents = corpus_documents()
    digest = corpus_sha256(documents)
    if not force and _is_current(target, seed=seed, steps=steps, corpus_digest=digest):
        return target
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        _build_into(staging, documents, digest, seed=seed, steps=steps, progress=progress)
        _publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _check_replaceable(target: Path) -> None:
    """Refuse to overwrite anything but an empty directory or an earlier build."""
    if not target.exists():
        return
    if not target.is_dir():
        raise DemoModelError(f"{target} exists and is not a directory")
    if any(target.iterdir()) and read_manifest(target) is None:
        raise DemoModelError(f"{target} is not empty and holds no {MODEL_NAME} build; "
                             "choose another directory")


def _publish(staging: Path, target: Path) -> None:
    """Move the finished build into place, replacing an earlier build."""
    try:
        staging.rename(target)  # an absent target, or an empty directory
        return
    except OSError:
        if not target.exists():
            raise
    retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


def _build_into(directory: Path, documents: list[str], digest: str, *, seed: int,
                steps: int, progress: bool) -> None:
    import tokenizers
    import torch
    import transformers

    from potluck.demo_model import tokenizer as tok
    from potluck.demo_model import train

    started = time.monotonic()
    tokenizer = tok.train_tokenizer(documents)
    tok.save_tokenizer(tokenizer, directory)
    tokens = train.token_stream(tokenizer, documents)
    model = train.init_model(train.model_config(tokenizer), seed)
    result = train.pretrain(model, tokens, steps=steps, seed=seed, progress=progress)
    # Weights are written as model.safetensors (the only format in transformers 5, and
    # the default in 4.x).
    bar_was_on = transformers.utils.logging.is_progress_bar_enabled()
    if not progress:
        transformers.utils.logging.disable_progress_bar()
    try:
        model.save_pretrained(directory)
    finally:
        if bar_was_on:
            transformers.utils.logging.enable_progress_bar()
    manifest = {
        "name": MODEL_NAME,
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "steps": steps,
        "initial_loss": round(result.initial_loss, 4),
        "final_loss": round(result.final_loss, 4),
        "parameters": train.parameter_count(model),
        "tokens_seen": result.tokens_seen,
        "corpus": "pydoc_data.topics (the Python documentation)",
        "corpus_sha256": digest,
        "corpus_characters": sum(len(d) for d in documents),
        "corpus_tokens": int(tokens.numel()),
        "vocab_size": len(tokenizer),
        "threads": result.threads,
        "train_seconds": round(result.seconds, 1),
        "build_seconds": round(time.monotonic() - started, 1),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
    }
    # The manifest comes last: a directory with one is a complete build.
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    # mkdtemp makes the directory 0700 and the weights come out 0600: let an engine that
    # runs as another user read them.
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)
