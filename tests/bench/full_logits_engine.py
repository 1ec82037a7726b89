"""The engine with its loss over full logits, as before issue 23: `python launch.py train CONFIG` with
engine.train.logits.plan answering "full computation" for every model (the benchmark's old path).

    python tests/bench/full_logits_engine.py CONFIG.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import engine.train.logits  # noqa: E402
import engine.train.trainer  # noqa: E402


def full(_model: object, _chunk: int | None = None) -> tuple[None, str]:
    return None, "loss: full logits at every position (tests/bench/full_logits_engine.py: the path before issue 23)"


if __name__ == "__main__":
    engine.train.logits.plan = full
    engine.train.trainer.plan = full
    from launch import main

    sys.exit(main(["train", *sys.argv[1:]]))
