"""The bundled preference sample on the demo model: does a short DPO run change what the model prefers?

Trains `train.stage dpo` with LoRA on assets/datasets/preference_pairs.jsonl (every pair: the same correct answer,
the chosen one opening with "Happy to help!", the rejected one plain) through `python launch.py train`, then
measures on 40 held-out pairs (prompts generated with another seed, none of them trained on):
  prefers   the share of pairs where the model's own log-probability of the chosen reply beats the rejected
            one's, for the base and for the trained adapter;
  opens     the share of held-out prompts whose greedy answer opens with the greeting, before and after;
  implicit  (after only) the share of held-out pairs whose implicit reward, log pi(reply) - log pi_ref(reply) with
            the reference the adapter disabled, is higher for the chosen reply: what DPO optimises, which can rise
            while `prefers` does not (both replies pushed down, the rejected one further);
and prints the wall and CPU time of the run and a few greedy answers.

    .venv/bin/python tests/bench/preference_demo.py [--steps 60] [--stage dpo] [--lr 1e-3] [--beta 0.1]
        [--rpo-alpha 1.0]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "assets" / "datasets"))

import make_datasets  # noqa: E402

from tests.cli import launch, write_config  # noqa: E402

DEMO = ROOT / "assets" / "models" / "workbench-demo-5m"
DATA = ROOT / "assets" / "datasets" / "preference_pairs.jsonl"


def held_out(n: int = 40) -> list[dict]:
    trained = {json.loads(line)["prompt"] for line in DATA.read_text(encoding="utf-8").splitlines()}
    return [pair for pair in make_datasets.preference_pairs(400, seed=22) if pair["prompt"] not in trained][:n]


def measure(model, tokenizer, pairs: list[dict]) -> dict:
    import torch

    from engine.data.preference import normalise_pairs, tokenize_pairs

    rows, _ = tokenize_pairs(normalise_pairs(pairs, "held-out"), tokenizer, 256, "truncate")
    prefers, opens = 0, 0
    answers, margins = [], []
    with torch.no_grad():
        for row, pair in zip(rows, pairs, strict=True):
            sums = {}
            for side in ("chosen", "rejected"):
                ids = torch.tensor([row["prompt_ids"] + row[f"{side}_ids"]])
                logits = model(input_ids=ids).logits[0, len(row["prompt_ids"]) - 1: -1].float()
                reply = torch.tensor(row[f"{side}_ids"])[:, None]
                sums[side] = torch.log_softmax(logits, -1).gather(-1, reply).sum().item()
            prefers += sums["chosen"] > sums["rejected"]
            margins.append(sums["chosen"] - sums["rejected"])
            out = model.generate(torch.tensor([row["prompt_ids"]]), max_new_tokens=24, do_sample=False)
            text = tokenizer.decode(out[0, len(row["prompt_ids"]):], skip_special_tokens=True)
            opens += text.startswith((make_datasets.GREETING, make_datasets.GREETING_ZH))
            answers.append(f"{pair['prompt']} -> {text.strip()}")
    return {"prefers": prefers / len(pairs), "opens": opens / len(pairs), "answers": answers[:3], "margins": margins}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--stage", default="dpo")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--rpo-alpha", type=float, default=None, help="DPO: add the chosen reply's SFT loss")
    args = parser.parse_args()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        config = write_config(Path(tmp) / "run.yaml", DEMO, DATA, run, method={"r": 8, "lora_alpha": 16},
                              train={"stage": args.stage, "max_steps": args.steps, "batch_size": 8,
                                     "learning_rate": args.lr, "beta": args.beta, "cutoff_len": 128, "save_steps": 1000,
                                     **({"rpo_alpha": args.rpo_alpha} if args.rpo_alpha else {})})
        started = time.time()
        result = launch("train", str(config), timeout=3600)
        wall = time.time() - started
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = cpu.ru_utime + cpu.ru_stime
        if result.returncode != 0:
            sys.exit(result.stderr[-3000:])
        tokenizer = AutoTokenizer.from_pretrained(run / "adapter")
        pairs = held_out()
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(DEMO), run / "adapter").eval()
        with model.disable_adapter():
            before = measure(model, tokenizer, pairs)
        after = measure(model, tokenizer, pairs)
    implicit = [a > b for a, b in zip(after.pop("margins"), before.pop("margins"), strict=True)]
    after["implicit"] = sum(implicit) / len(implicit)
    print(json.dumps({"stage": args.stage, "steps": args.steps, "lr": args.lr, "beta": args.beta,
                      "rpo_alpha": args.rpo_alpha, "run_wall_s": round(wall, 1), "run_cpu_s": round(cpu_s, 1),
                      "held_out_pairs": len(pairs), "before": before, "after": after}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
