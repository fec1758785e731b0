# SPDX-License-Identifier: Apache-2.0
"""The baseline: the obvious transformers + peft LoRA loop a user would write by hand.

    python bench/finetune/plain_peft.py MODEL_DIR DATA.jsonl OUT_DIR \
        --batch-size 8 --max-seq-len 256 --epochs 1 --lr 2e-4 --threads 2 --seed 0

Prints one JSON line: tokens trained (unpadded), seconds of the training loop, tokens/s.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, get_linear_schedule_with_warmup


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("model", "data", "out"):
        parser.add_argument(name)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=2 * args.rank,
                                             target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    with open(args.data) as handle:
        conversations = [json.loads(line)["messages"] for line in handle if line.strip()]
    examples = [tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                              truncation=True, max_length=args.max_seq_len)
                for messages in conversations]

    def collate(batch: list) -> dict:
        padded = tokenizer.pad([{"input_ids": e["input_ids"]} for e in batch],
                               return_tensors="pt")
        labels = padded["input_ids"].masked_fill(padded["attention_mask"] == 0, -100)
        return {**padded, "labels": labels}

    loader = torch.utils.data.DataLoader(examples, batch_size=args.batch_size, shuffle=True,
                                         collate_fn=collate)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=args.lr, weight_decay=0.0)
    total_steps = len(loader) * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, total_steps)

    model.train()
    tokens, losses = 0, []
    started = time.perf_counter()
    for _ in range(args.epochs):
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            tokens += int(batch["attention_mask"].sum())
            losses.append(loss.item())
            print(f"step {len(losses)}/{total_steps} loss {losses[-1]:.4f}", flush=True)
    seconds = time.perf_counter() - started
    model.save_pretrained(args.out)
    print(json.dumps({"tokens": tokens, "seconds": seconds, "tokens_per_second":
                      tokens / seconds, "steps": len(losses), "final_loss": losses[-1]}))


if __name__ == "__main__":
    main()
