# SPDX-License-Identifier: Apache-2.0
"""One run from spec to result: the phases, their events, and the exit code.

The cheap checks (spec, dataset shape, checkpoint state) come before torch is imported,
so a bad job fails in a fraction of a second. Every way out writes one ``result`` event
and ``result.json``, except SIGKILL, after which the last checkpoint is whole.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import IO, Any

from potluck.finetune.dataset import Conversation, DatasetInvalid, read_conversations
from potluck.finetune.trainer import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_PAUSED,
    EXIT_SUCCEEDED,
    modeling,
)
from potluck.finetune.trainer.batches import Schedule, sequential_batches
from potluck.finetune.trainer.cancellation import CancellationFlag, Cancelled, Paused
from potluck.finetune.trainer.checkpoints import (
    CheckpointState,
    make_readable,
    read_state,
    remove_partial_checkpoints,
    restore_training_state,
    save_checkpoint,
)
from potluck.finetune.trainer.events import EventLog
from potluck.finetune.trainer.failures import (
    INTERNAL_ERROR,
    INVALID_CHECKPOINT,
    INVALID_TRAINING_FILE,
    INVALID_VALIDATION_FILE,
    NO_TRAINABLE_TOKENS,
    OUT_OF_MEMORY,
    TrainingFailed,
)
from potluck.finetune.trainer.spec import TrainingSpec
from potluck.finetune.trainer.training import LoopParts, Progress, build_optimizer, run_loop

RESULT_FILE = "result.json"
FINAL_DIR = "final"
LOCK_FILE = ".trainer.lock"


def main(argv: list[str]) -> int:
    flag = CancellationFlag()
    flag.install()  # before the slow imports: SIGTERM or SIGUSR1 during them still counts
    if len(argv) != 1:
        print("usage: python -m potluck.finetune.trainer SPEC_PATH", file=sys.stderr)
        return EXIT_FAILED
    try:
        spec = TrainingSpec.read(argv[0])
    except TrainingFailed as failure:
        return _report_bad_spec(argv[0], failure)
    return TrainingRun(spec, flag).execute()


def _read_dataset(path: str, code: str) -> list[Conversation]:
    """The dataset through the upload's own reader (``potluck.finetune.dataset``): a file
    the upload accepted reads alike here; ``TrainingFailed(code, ...)`` names bad lines."""
    try:
        return read_conversations(path)
    except DatasetInvalid as invalid:
        raise TrainingFailed(code, invalid.report.describe()) from None
    except OSError as exc:
        raise TrainingFailed(code, f"cannot read {Path(path).name}: {exc.strerror}") from exc


def _report_bad_spec(path: str, failure: TrainingFailed) -> int:
    """Fail into the spec's output_dir when it names one, else on stderr only."""
    print(f"potluck trainer: {failure.message}", file=sys.stderr)
    try:
        output_dir = json.loads(Path(path).read_text())["output_dir"]
    except (OSError, ValueError, TypeError, KeyError):
        return EXIT_FAILED
    if isinstance(output_dir, str) and output_dir:
        directory = Path(output_dir)
        directory.mkdir(parents=True, exist_ok=True)
        events = EventLog(directory)
        _finish(directory, events, _result("failed", steps=0, trained_tokens=0,
                                           error=failure.as_dict()))
        events.close()
    return EXIT_FAILED


class TrainingRun:
    def __init__(self, spec: TrainingSpec, flag: CancellationFlag) -> None:
        self.spec = spec
        self.flag = flag
        self.output_dir = Path(spec.output_dir).absolute()
        self.progress = Progress()
        self.max_seq_len = spec.max_seq_len

    def execute(self) -> int:
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self._lock = _lock_output_dir(self.output_dir)
        except OSError as exc:
            print(f"potluck trainer: cannot write to {self.output_dir}: {exc}",
                  file=sys.stderr)
            return EXIT_FAILED
        if self._lock is None:
            # Writing a result here would clobber the running trainer's: stderr only.
            print(f"potluck trainer: another trainer is running in {self.output_dir}",
                  file=sys.stderr)
            return EXIT_FAILED
        for stale in (RESULT_FILE, f".{RESULT_FILE}.tmp-*", f".{FINAL_DIR}.tmp-*"):
            for path in self.output_dir.glob(stale):  # an earlier attempt's
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        self.events = EventLog(self.output_dir)
        try:
            output_path = self._train()
        except Cancelled:
            self._end("cancelled", f"Cancelled after step {self.progress.step}")
            return EXIT_CANCELLED
        except Paused:
            # The loop checkpointed the step it finished; before training, nothing to save.
            self._end("paused", f"Paused after step {self.progress.step}")
            return EXIT_PAUSED
        except TrainingFailed as failure:
            self._end("failed", f"Failed: {failure.message}", failure)
            return EXIT_FAILED
        except MemoryError:
            self._end("failed", "Failed: out of memory", TrainingFailed(
                OUT_OF_MEMORY, "the machine ran out of memory; try a smaller batch_size or "
                               "max_seq_len"))
            return EXIT_FAILED
        except Exception as exc:
            traceback.print_exc()
            failure = _classify(exc)
            self._end("failed", f"Failed: {failure.message}", failure)
            return EXIT_FAILED
        self._end("succeeded", f"Training succeeded after {self.progress.step} steps",
                  output_path=str(output_path))
        return EXIT_SUCCEEDED

    def _end(self, status: str, message: str, failure: TrainingFailed | None = None, *,
             output_path: str | None = None) -> None:
        data = _result(status, steps=self.progress.step,
                       trained_tokens=self.progress.trained_tokens,
                       error=failure.as_dict() if failure else None, output_path=output_path,
                       train_loss=self.progress.train_loss,
                       valid_loss=self.progress.valid_loss)
        _finish(self.output_dir, self.events, data, message)
        self.events.close()

    def _train(self) -> Path:
        spec, events, flag = self.spec, self.events, self.flag
        remove_partial_checkpoints(self.output_dir)
        conversations = _read_dataset(spec.training_file, INVALID_TRAINING_FILE)
        valid_conversations = (_read_dataset(spec.validation_file, INVALID_VALIDATION_FILE)
                               if spec.validation_file else [])
        resume = Path(spec.resume_from) if spec.resume_from else None
        resume_state = read_state(resume) if resume else None
        modeling.check_base_dir(spec)
        flag.check()

        import torch
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        threads = spec.torch_threads or _cpu_count()
        torch.set_num_threads(threads)
        torch.manual_seed(spec.seed)

        from potluck.finetune.trainer.tokenization import tokenize_conversations

        tokenizer = modeling.load_tokenizer(spec)
        self.max_seq_len = spec.max_seq_len
        positions = modeling.max_positions(spec)
        if positions is not None and spec.max_seq_len > positions:
            self.max_seq_len = positions
            events.warn(f"max_seq_len={spec.max_seq_len} is beyond the base model's "
                        f"{positions} positions; using {positions}",
                        max_seq_len=positions)
        flag.check()
        train = self._tokenize(tokenize_conversations, tokenizer, conversations, "training",
                               INVALID_TRAINING_FILE)
        valid = (self._tokenize(tokenize_conversations, tokenizer, valid_conversations,
                                "validation", INVALID_VALIDATION_FILE)
                 if valid_conversations else None)
        schedule = Schedule(len(train.examples), spec.batch_size, spec.n_epochs, spec.seed)
        if resume_state is not None:
            _check_resumable(resume_state, spec, schedule)
        flag.check()

        loaded = modeling.load_model(spec, tokenizer, resume)
        if resume is not None and spec.method == "lora":
            modeling.load_adapter_weights(loaded, resume)
        parameters = loaded.trainable_parameters()
        optimizer, scheduler = build_optimizer(parameters, spec, schedule.total_steps)
        if resume is not None and resume_state is not None:
            restore_training_state(resume, optimizer, scheduler)
            self.progress = Progress(resume_state.step, resume_state.trained_tokens,
                                     resume_state.train_loss, resume_state.valid_loss)
        summary = modeling.model_summary(loaded)
        if resume_state is not None:
            events.info(f"Resumed from checkpoint at step {resume_state.step}",
                        step=resume_state.step, checkpoint=str(resume))
        else:
            events.info(f"Training started: {schedule.total_steps} steps "
                        f"({spec.n_epochs} epochs of {schedule.steps_per_epoch}), "
                        f"{spec.method}, {summary['trainable_parameters']:,} trainable "
                        "parameters", total_steps=schedule.total_steps,
                        steps_per_epoch=schedule.steps_per_epoch, threads=threads, **summary)
        flag.check()

        parts = LoopParts(model=loaded.model, parameters=parameters, optimizer=optimizer,
                          scheduler=scheduler, pad_id=loaded.pad_id, examples=train.examples,
                          valid_batches=sequential_batches(valid.examples, spec.batch_size,
                                                           loaded.pad_id) if valid else [])

        def checkpoint(progress: Progress) -> None:
            state = CheckpointState(
                step=progress.step, trained_tokens=progress.trained_tokens,
                train_loss=progress.train_loss, valid_loss=progress.valid_loss,
                method=spec.method, examples=schedule.examples, batch_size=spec.batch_size,
                n_epochs=spec.n_epochs, seed=spec.seed, lora=_lora_settings(spec))
            path = save_checkpoint(self.output_dir, state,
                                   save_weights=lambda d: modeling.save_weights(loaded, d),
                                   optimizer=optimizer, scheduler=scheduler)
            events.emit("checkpoint", f"Checkpoint saved at step {progress.step}",
                        {"step": progress.step, "path": str(path),
                         "train_loss": progress.train_loss,
                         "valid_loss": progress.valid_loss})

        run_loop(spec, schedule, parts, self.progress, events, flag, checkpoint)
        return self._save_final(lambda d: modeling.save_final(loaded, spec, d))

    def _tokenize(self, tokenize: Any, tokenizer: Any, conversations: list[Conversation],
                  name: str, code: str) -> Any:
        dataset = tokenize(tokenizer, conversations, self.max_seq_len, code=code)
        if dataset.truncated:
            self.events.warn(f"{dataset.truncated} {name} example(s) were longer than "
                             f"max_seq_len={self.max_seq_len} tokens and were truncated",
                             truncated=dataset.truncated, dataset=name)
        if dataset.skipped:
            self.events.warn(f"{dataset.skipped} {name} example(s) have no assistant token to "
                             "train on (weight 0, or cut off by truncation) and were skipped",
                             skipped=dataset.skipped, dataset=name)
        if not dataset.examples:
            raise TrainingFailed(NO_TRAINABLE_TOKENS,
                                 f"no {name} example has an assistant token to train on")
        self.events.info(f"Prepared {len(dataset.examples)} {name} examples "
                         f"({dataset.tokens:,} tokens)", examples=len(dataset.examples),
                         tokens=dataset.tokens, dataset=name)
        self.flag.check()
        return dataset

    def _save_final(self, save: Any) -> Path:
        target = self.output_dir / FINAL_DIR
        staging = Path(tempfile.mkdtemp(prefix=f".{FINAL_DIR}.tmp-", dir=self.output_dir))
        try:
            save(staging)
            make_readable(staging)
            if target.exists():
                shutil.rmtree(target)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target


def _lock_output_dir(output_dir: Path) -> IO[bytes] | None:
    """An exclusive lock on the output dir for the life of this process (the OS releases
    it however the process ends); None when another process holds it."""
    handle = (output_dir / LOCK_FILE).open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _check_resumable(state: CheckpointState, spec: TrainingSpec, schedule: Schedule) -> None:
    expected = {"method": spec.method, "examples": schedule.examples,
                "batch_size": spec.batch_size, "n_epochs": spec.n_epochs, "seed": spec.seed,
                "lora": _lora_settings(spec)}
    found = {"method": state.method, "examples": state.examples,
             "batch_size": state.batch_size, "n_epochs": state.n_epochs, "seed": state.seed,
             "lora": state.lora}
    differing = [name for name in expected if expected[name] != found[name]]
    if differing:
        raise TrainingFailed(INVALID_CHECKPOINT, "the checkpoint was written by a run with "
                             f"other settings ({', '.join(differing)}); it cannot be resumed "
                             "with this spec")
    if not 0 < state.step <= schedule.total_steps:
        raise TrainingFailed(INVALID_CHECKPOINT, f"the checkpoint is at step {state.step}, "
                             f"outside this run's 1..{schedule.total_steps}")


def _lora_settings(spec: TrainingSpec) -> dict[str, Any] | None:
    if spec.method != "lora":
        return None
    return {"rank": spec.lora_rank, "alpha": spec.lora_alpha, "dropout": spec.lora_dropout,
            "target_modules": spec.target_modules}


def _result(status: str, *, steps: int, trained_tokens: int,
            error: dict[str, str] | None = None, output_path: str | None = None,
            train_loss: float | None = None, valid_loss: float | None = None) -> dict:
    data: dict[str, Any] = {"status": status, "output_path": output_path,
                            "trained_tokens": trained_tokens, "steps": steps,
                            "train_loss": train_loss, "valid_loss": valid_loss}
    if error is not None:
        data["error"] = error
    return data


def _finish(output_dir: Path, events: EventLog, data: dict[str, Any],
            message: str | None = None) -> None:
    """The result event, then ``result.json`` (renamed into place: whole or absent)."""
    level = "error" if data["status"] == "failed" else "info"
    events.emit("result", message or f"Training {data['status']}", data, level=level)
    staging = output_dir / f".{RESULT_FILE}.tmp-{os.getpid()}"
    staging.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(staging, output_dir / RESULT_FILE)


def _classify(exc: Exception) -> TrainingFailed:
    text = str(exc)
    if "can't allocate memory" in text or "out of memory" in text.lower():
        return TrainingFailed(OUT_OF_MEMORY, "the machine ran out of memory; try a smaller "
                                             "batch_size or max_seq_len")
    return TrainingFailed(INTERNAL_ERROR, f"{type(exc).__name__}: {text}"[:1000])


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1
