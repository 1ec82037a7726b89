"""The hand-written baseline: a plain transformers `Trainer` + peft `LoraConfig` script, the way the
peft docs show it (get_peft_model, TrainingArguments with eval_strategy/save_strategy "epoch",
a padding data collator, trainer.train(), model.save_pretrained()).

    python tests/bench/plain_trainer.py ENGINE_CONFIG.yaml OUT_DIR

It reads the *same* run config the engine reads, so model, data, method and hyperparameters are
identical. To be fair on data, it reuses `engine.data.pipeline` to load, chat-template, tokenize and mask
exactly the same rows and the same held-out split (`build_splits`) as the engine: the only
differences are the ones a user's script would have, namely padded batches
(`DataCollatorForSeq2Seq`, pad to the longest row in the batch, labels -100 on padding) instead of
the engine's padding-free packing, and Trainer's defaults for everything the config does not set.

Writes OUT_DIR/adapter/ and OUT_DIR/metrics.json with the same keys the engine writes
(train_s, wall_s, tokens_per_s in non-padding tokens, peak_memory_mb, eval_loss, padding_fraction).
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from pathlib import Path

STARTED = time.time()
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from peft import LoraConfig, TaskType, get_peft_model  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    Trainer,
    TrainingArguments,
)

from engine.config import load_config  # noqa: E402
from engine.data import pipeline as data  # noqa: E402  (identical rows and masking; see the docstring)


def main(config_path: str, out_dir: str) -> int:
    cfg = load_config(config_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.is_available()

    tokenizer = AutoTokenizer.from_pretrained(cfg.model.name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    data.ensure_chat_template(tokenizer)
    train_rows, val_rows, _ = data.build_splits(cfg, tokenizer)

    dtype = torch.bfloat16 if gpu and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(cfg.model.name_or_path, dtype=dtype)
    if gpu:
        model.to("cuda")
    m = cfg.method
    lora = LoraConfig(task_type=TaskType.CAUSAL_LM, r=m.r, lora_alpha=m.lora_alpha, lora_dropout=m.lora_dropout,
                      target_modules=m.target_modules)
    model = get_peft_model(model, lora)
    model.print_trainable_parameters()

    t = cfg.train
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        learning_rate=t.learning_rate,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps or -1,
        lr_scheduler_type=t.lr_scheduler_type,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        seed=t.seed,
        data_seed=t.seed,
        eval_strategy="epoch" if val_rows else "no",
        save_strategy="epoch",
        bf16=dtype == torch.bfloat16,
        use_cpu=not gpu,
        report_to="none",
        disable_tqdm=True,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
        data_collator=collator,
    )
    result = trainer.train()
    train_s = result.metrics["train_runtime"]
    eval_loss = trainer.evaluate()["eval_loss"] if val_rows else None
    model.save_pretrained(out / "adapter")
    tokenizer.save_pretrained(out / "adapter")

    # Padding the batches carried: the same rows, in the order the sampler drew them.
    # (one pass over the dataloader; with max_steps, the tokens of the first max_steps batches)
    real = padded = tokens = 0
    for index, batch in enumerate(trainer.get_train_dataloader()):
        mask = batch["attention_mask"]
        real += int(mask.sum())
        padded += mask.numel()
        if index < trainer.state.global_step:
            tokens += int(mask.sum())
    if not t.max_steps:
        tokens = sum(len(r["input_ids"]) for r in train_rows) * t.epochs
    size = sum(f.stat().st_size for f in (out / "adapter").rglob("*") if f.is_file() and "token" not in f.name)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if gpu
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    metrics = {
        "method": "lora",
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "eval_loss": eval_loss,
        "eval_perplexity": math.exp(min(eval_loss, 50)) if eval_loss is not None else None,
        "train_s": train_s,
        "tokens_per_s": tokens / train_s if train_s else 0.0,
        "wall_s": time.time() - STARTED,
        "peak_memory_mb": peak,
        "weights_size_mb": size / 2**20,
        "padding_fraction": 1 - real / padded if padded else 0.0,
        "packing": False,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    print(json.dumps(metrics), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main(sys.argv[1], sys.argv[2]))
