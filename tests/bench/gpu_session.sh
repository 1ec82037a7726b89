#!/usr/bin/env bash
# The GPU checks of issues 21, 23, 26 and 27, prepared as one command per part for a lent GPU machine, which has
# no network and whose python3 holds torch (CUDA), Triton and accelerate. Each part ends within about 8 minutes
# on an H100; figures go to stdout and to $OUT (or /tmp/gpu-out).
#   here:   bash tests/bench/gpu_wheels.sh              # .whl/: the packages that machine lacks (about 29 MB)
#   there:  bash tests/bench/gpu_session.sh 1           # issue 23: bf16 LoRA on the Llama-3.2-1B shape, the
#                                                       #   engine's chunked loss (A), Liger Kernel (L), plain (B)
#           bash tests/bench/gpu_session.sh 2           # issue 27: DDP/FSDP/ZeRO-3 with one process
#           bash tests/bench/gpu_session.sh 3           # issue 21: DPO-LoRA bf16; issue 26: the VRAM estimate
# Not yet run on a GPU (none was lent when they were written): the parts' durations are guesses; run part 1
# first with a timeout that leaves room to rerun. The 1.2B model is built once into tests/bench/out (ignored
# paths stay on a warm machine between calls).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
python3 - <<'PY' | tee "$out/env.txt"
import importlib.metadata as m, torch
print("gpu:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none", "| torch", torch.__version__,
      "| cuda", torch.version.cuda)
print(" | ".join(f"{p} {m.version(p)}" for p in ("transformers", "peft", "trl", "accelerate", "datasets",
                                                   "bitsandbytes", "liger-kernel", "deepspeed", "triton")))
PY
case "${1:-}" in
1) python3 tests/bench/logits_memory.py --llama-1b --kinds ALB --steps 10 --repeats 2 --cutoff 1024 \
       --batch-size 4 --out /tmp/logits 2>&1 | tee "$out/logits-1b.txt" ;;
2) python3 tests/bench/gpu_strategies.py --home /tmp/strategies --only none-lora ddp-lora fsdp-lora zero3-lora zero3-qlora \
       fsdp-full zero3-full 2>&1 | tee "$out/strategies.txt" ;;
3) python3 tests/bench/gpu_strategies.py --home /tmp/strategies --only dpo-lora 2>&1 | tee "$out/dpo.txt"
   python3 tests/bench/memory_estimate.py --only G-lora,G-qlora4,G-full 2>&1 | tee "$out/estimate.txt" ;;
*) echo "usage: bash tests/bench/gpu_session.sh 1|2|3" >&2; exit 2 ;;
esac
