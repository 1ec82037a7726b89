"""The benchmark's smallest configuration, so that tests/bench/run_bench.py cannot rot: 2M model, two
steps, the short-row profile, one round of its rotation (engine packing auto, the plain Trainer script, engine
packing on, engine packing off), no methods table; checks that the tables are written with sane numbers. CPU only,
one thread, under a minute on an idle machine."""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "bench"))

import run_bench  # noqa: E402


def test_bench_smallest_configuration(tmp_path: Path) -> None:
    results_md = tmp_path / "RESULTS.md"
    results = run_bench.main(["--sizes", "2m", "--methods", "", "--repeats", "1", "--profiles", "short",
                              "--rows", "16", "--max-steps", "2", "--threads", "1",
                              "--out", str(tmp_path / "out"), "--results", str(results_md)])
    text = results_md.read_text(encoding="utf-8")
    assert "Engine vs hand-written" in text and "non-padding tokens/s" in text and "MFU" in text
    assert "auto vs on vs off" in text.lower() and "within the spread" in text.lower()

    ab = results["ab"]["2m"]
    engine, plain = ab["runs"]["engine"][0], ab["runs"]["plain"][0]
    # N counts every nn.Linear weight: 4 layers x (4 h^2 + 3 h i) plus the lm_head (vocab x h)
    size = run_bench.SIZES["2m"]
    h, i = size.hidden, size.intermediate
    assert ab["N"] == size.layers * (4 * h * h + 3 * h * i) + run_bench.MODEL_VOCAB * h
    assert ab["total_params"] == ab["N"] + run_bench.MODEL_VOCAB * h + (2 * size.layers + 1) * h
    peak = max(results["peaks"])
    for run in (engine, plain):
        assert run.metrics["steps"] == 2
        assert run.extra["tokens_per_s"] > 0 and run.wall_s > 0 and run.maxrss_mb > 0
        assert math.isfinite(run.heldout_loss) and 0 < run.heldout_loss < 20
        assert 0 < run_bench.mfu(run.extra["tokens_per_s"], "lora", ab["N"], peak) <= 1
    assert run_bench.ratio([engine.extra["tokens_per_s"]], [plain.extra["tokens_per_s"]]) > 0
    lora = engine
    # LoRA r8 on every linear of the decoder blocks: r * (in + out) per module
    per_layer = 8 * (4 * (h + h) + 2 * (h + i) + (i + h))
    assert lora.metrics["trainable_params"] == size.layers * per_layer
    assert 0 < lora.metrics["trainable_percent"] < 100 and lora.metrics["weights_size_mb"] > 0
