# SPDX-License-Identifier: Apache-2.0
"""`make bench-finetune`: Potluck's trainer against a plain peft script, side by side.

Both train the same LoRA (r=8 on every linear projection) on the same demo model
(``potluck-demo``, built into .potluck-test/ if absent), the same generated chat dataset,
batch size, sequence length, steps and threads. The trainer runs exactly as a job runs
it (``python -m potluck.finetune.trainer SPEC``); its figure is the tokens/s of its last
metrics event. The plain script (plain_peft.py) reports its own loop time. Both count
unpadded tokens. They run alternately (ABBA) for several rounds, because the machine is
shared and its speed drifts, at times tenfold when other work lands on it.

``ratio`` is the median over rounds of trainer tokens/s / plain tokens/s, each round's
pair measured back to back, over the undisturbed rounds: those where both ran at 70% or
more of their own best round (other work landing on the machine during one of the two
runs makes a round's ratio meaningless; the filter looks at each side against itself, so
it favours neither). Also printed: the median over all rounds, the ratio of the median
figures, the ratio of the best rounds, and tokens per CPU-second of each whole process.

Prints a table per round, the medians and, last, one JSON line with every figure.
Settings through the environment: BENCH_ROUNDS (6), BENCH_EXAMPLES (400),
BENCH_BATCH_SIZE (8), BENCH_MAX_SEQ_LEN (256), BENCH_EPOCHS (1), BENCH_THREADS (cores).
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO / ".potluck-test" / "models" / "potluck-demo"
DEMO_STEPS = 60
PLAIN = Path(__file__).resolve().parent / "plain_peft.py"
GOAL_RATIO = 0.9
UNDISTURBED = 0.7  # a round counts when both sides ran at this fraction of their best

ROUNDS = int(os.environ.get("BENCH_ROUNDS", 6))
EXAMPLES = int(os.environ.get("BENCH_EXAMPLES", 400))
BATCH_SIZE = int(os.environ.get("BENCH_BATCH_SIZE", 8))
MAX_SEQ_LEN = int(os.environ.get("BENCH_MAX_SEQ_LEN", 256))
EPOCHS = int(os.environ.get("BENCH_EPOCHS", 1))
LORA_RANK = 8
LEARNING_RATE = 2e-4
SEED = 0


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


THREADS = int(os.environ.get("BENCH_THREADS", cpu_count()))


def say(message: str) -> None:
    print(message, flush=True)


def demo_model() -> Path:
    from potluck.demo_model import build_demo_model

    return build_demo_model(DEMO_DIR, steps=DEMO_STEPS, progress=False)


def write_dataset(path: Path, count: int, seed: int) -> None:
    """Chat examples from Python's own help topics: questions, answers of varied length."""
    from pydoc_data.topics import topics

    rng = random.Random(seed)
    keys = sorted(topics)
    questions = ("Explain {}.", "What does the Python documentation say about {}?",
                 "Tell me about {} in Python.", "Summarise the topic {}.")
    with path.open("w") as handle:
        for _ in range(count):
            key = rng.choice(keys)
            text = topics[key].strip()
            start = rng.randrange(0, max(1, len(text) // 2))
            answer = text[start:start + rng.randint(150, 900)].strip() or key
            messages = [{"role": "user", "content": rng.choice(questions).format(key)},
                        {"role": "assistant", "content": answer}]
            if rng.random() < 0.5:
                messages.insert(0, {"role": "system",
                                    "content": "You answer questions about Python."})
            handle.write(json.dumps({"messages": messages}) + "\n")


def run_trainer(model: Path, data: Path, work: Path, name: str) -> dict[str, Any]:
    output = work / name
    spec = {"job_id": name, "base_model_path": str(model), "training_file": str(data),
            "validation_file": None, "output_dir": str(output), "method": "lora",
            "n_epochs": EPOCHS, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
            "lora_rank": LORA_RANK, "lora_alpha": 2 * LORA_RANK, "seed": SEED,
            "max_seq_len": MAX_SEQ_LEN, "checkpoint_every_steps": 0, "eval_every_steps": 0,
            "torch_threads": THREADS}
    spec_path = work / f"{name}.json"
    spec_path.write_text(json.dumps(spec))
    started, cpu = time.perf_counter(), _children_cpu()
    completed = subprocess.run([sys.executable, "-m", "potluck.finetune.trainer",
                                str(spec_path)], cwd=REPO, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if completed.returncode != 0:
        raise RuntimeError(f"the trainer exited {completed.returncode}:\n"
                           f"{completed.stderr[-3000:]}\n{_tail(output / 'events.jsonl')}")
    events = [json.loads(line) for line in (output / "events.jsonl").read_text().splitlines()]
    last = [e for e in events if e["type"] == "metrics"][-1]["data"]
    shutil.rmtree(output, ignore_errors=True)
    return {"tokens": last["trained_tokens"], "seconds": last["elapsed_seconds"],
            "tokens_per_second": last["tokens_per_second"], "steps": last["step"],
            "final_loss": last["train_loss"], "wall_seconds": wall, "cpu_seconds": cpu}


def run_plain(model: Path, data: Path, work: Path, name: str) -> dict[str, Any]:
    output = work / name
    started, cpu = time.perf_counter(), _children_cpu()
    completed = subprocess.run(
        [sys.executable, str(PLAIN), str(model), str(data), str(output),
         "--batch-size", str(BATCH_SIZE), "--max-seq-len", str(MAX_SEQ_LEN),
         "--epochs", str(EPOCHS), "--lr", str(LEARNING_RATE), "--rank", str(LORA_RANK),
         "--threads", str(THREADS), "--seed", str(SEED)],
        cwd=REPO, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if completed.returncode != 0:
        raise RuntimeError(f"plain_peft.py exited {completed.returncode}:\n"
                           f"{completed.stderr[-3000:]}")
    shutil.rmtree(output, ignore_errors=True)
    return {**json.loads(completed.stdout.strip().splitlines()[-1]), "wall_seconds": wall,
            "cpu_seconds": cpu}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text().splitlines()[-5:])
    except OSError:
        return ""


def main() -> int:
    model = demo_model()
    work = Path(tempfile.mkdtemp(prefix="potluck-bench-finetune-"))
    try:
        data = work / "train.jsonl"
        write_dataset(data, EXAMPLES, SEED)
        say(f"model {model}\ndata {EXAMPLES} examples, batch {BATCH_SIZE}, max_seq_len "
            f"{MAX_SEQ_LEN}, {EPOCHS} epoch(s), LoRA r={LORA_RANK}, {THREADS} threads, "
            f"{ROUNDS} rounds")
        rounds = []
        for number in range(1, ROUNDS + 1):
            # ABBA: who goes first alternates, so a drifting machine favours neither.
            order = ("trainer", "plain") if number % 2 else ("plain", "trainer")
            figures = {}
            for who in order:
                run = run_trainer if who == "trainer" else run_plain
                figures[who] = run(model, data, work, f"{who}-{number}")
            trainer, plain = figures["trainer"], figures["plain"]
            ratio = trainer["tokens_per_second"] / plain["tokens_per_second"]
            rounds.append({"trainer": trainer, "plain": plain, "ratio": ratio})
            say(f"round {number}: trainer {trainer['tokens_per_second']:8.0f} tok/s "
                f"({trainer['steps']} steps, {trainer['tokens']} tokens, loop "
                f"{trainer['seconds']:.1f} s, process {trainer['wall_seconds']:.1f} s, "
                f"{trainer['cpu_seconds']:.1f} CPU-s) | plain "
                f"{plain['tokens_per_second']:8.0f} tok/s ({plain['steps']} steps, "
                f"{plain['tokens']} tokens, loop {plain['seconds']:.1f} s, process "
                f"{plain['wall_seconds']:.1f} s, {plain['cpu_seconds']:.1f} CPU-s) | ratio "
                f"{ratio:.3f}")
        return report(rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(rounds: list[dict[str, Any]]) -> int:
    def median(who: str, key: str) -> float:
        return statistics.median(r[who][key] for r in rounds)

    def best(who: str) -> float:
        return max(r[who]["tokens_per_second"] for r in rounds)

    def per_cpu_second(who: str) -> float:
        return statistics.median(r[who]["tokens"] / r[who]["cpu_seconds"] for r in rounds)

    best_trainer, best_plain = best("trainer"), best("plain")
    undisturbed = [r for r in rounds
                   if r["trainer"]["tokens_per_second"] >= UNDISTURBED * best_trainer
                   and r["plain"]["tokens_per_second"] >= UNDISTURBED * best_plain]
    counted = undisturbed or rounds
    trainer_tps = median("trainer", "tokens_per_second")
    plain_tps = median("plain", "tokens_per_second")
    same_tokens = len({r[who]["tokens"] for r in rounds for who in ("trainer", "plain")}) == 1
    summary = {
        "bench": "finetune", "rounds": len(rounds), "examples": EXAMPLES,
        "batch_size": BATCH_SIZE, "max_seq_len": MAX_SEQ_LEN, "epochs": EPOCHS,
        "lora_rank": LORA_RANK, "threads": THREADS,
        "steps": rounds[0]["trainer"]["steps"], "tokens_per_run": rounds[0]["trainer"]["tokens"],
        "same_tokens": same_tokens,
        "trainer_tokens_per_second": round(trainer_tps, 1),
        "plain_tokens_per_second": round(plain_tps, 1),
        "round_ratios": [round(r["ratio"], 3) for r in rounds],
        "undisturbed_rounds": [n for n, r in enumerate(rounds, start=1) if r in undisturbed],
        "median_ratio_all_rounds": round(statistics.median(r["ratio"] for r in rounds), 3),
        "ratio_of_medians": round(trainer_tps / plain_tps, 3),
        "ratio_of_best": round(best_trainer / best_plain, 3),
        "trainer_process_seconds": round(median("trainer", "wall_seconds"), 2),
        "plain_process_seconds": round(median("plain", "wall_seconds"), 2),
        "process_tokens_per_cpu_second_ratio": round(
            per_cpu_second("trainer") / per_cpu_second("plain"), 3),
        "ratio": round(statistics.median(r["ratio"] for r in counted), 3),
        "goal_ratio": GOAL_RATIO,
    }
    summary["goal_met"] = summary["ratio"] >= GOAL_RATIO
    say(f"median: trainer {trainer_tps:.0f} tok/s, plain {plain_tps:.0f} tok/s "
        f"(ratio of medians {summary['ratio_of_medians']}, of best rounds "
        f"{summary['ratio_of_best']}); process wall: trainer "
        f"{summary['trainer_process_seconds']} s, plain {summary['plain_process_seconds']} s; "
        f"tokens per process CPU-second ratio "
        f"{summary['process_tokens_per_cpu_second_ratio']}")
    say(f"undisturbed rounds: {summary['undisturbed_rounds']} of {len(rounds)}; median ratio "
        f"over all rounds {summary['median_ratio_all_rounds']}")
    say(f"ratio (median of the undisturbed rounds' ratios): {summary['ratio']:.3f} "
        f"(goal >= {GOAL_RATIO})")
    if not same_tokens:
        say("WARNING: the two did not train the same number of tokens")
    print(json.dumps(summary), flush=True)
    return 0 if same_tokens else 1


if __name__ == "__main__":
    sys.exit(main())
