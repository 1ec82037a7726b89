"""A training process imports bitsandbytes only where its run uses it (engine.model.imports): LoRA runs start about a
second sooner, QLoRA and 8-bit optimizers still get it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import RunConfig
from engine.model.imports import uses_bitsandbytes
from tests.cli import ROOT, engine_env, write_config

DATA = ROOT / "assets" / "datasets" / "identity_alpaca.json"
PROBE = """
import sys
from engine.train.recipe import main
code = main(sys.argv[1:])
module = sys.modules.get("bitsandbytes")
print("BITSANDBYTES", code, "absent" if module is None else "imported")
"""


def config(model: Path, tmp_path: Path, method: str = "lora", optim: str = "adamw_torch") -> RunConfig:
    return RunConfig.model_validate({"model": {"name_or_path": str(model)}, "method": {"name": method},
                                     "data": {"path": str(DATA)}, "train": {"optim": optim},
                                     "output_dir": str(tmp_path / "run")})


def test_what_uses_bitsandbytes(tiny_model, tmp_path):
    assert not uses_bitsandbytes(config(tiny_model, tmp_path))
    assert uses_bitsandbytes(config(tiny_model, tmp_path, method="qlora"))
    assert uses_bitsandbytes(config(tiny_model, tmp_path, optim="paged_adamw_8bit"))
    assert uses_bitsandbytes(config(Path("someone/not-in-the-cache"), tmp_path))  # unknown: keep it


def test_a_model_saved_quantized_uses_it(tiny_model, tmp_path):
    quantized = tmp_path / "quantized"
    quantized.mkdir()
    settings = json.loads((tiny_model / "config.json").read_text())
    settings["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (quantized / "config.json").write_text(json.dumps(settings))
    assert uses_bitsandbytes(config(quantized, tmp_path))


@pytest.mark.parametrize("method, expected", [("lora", "absent"), ("qlora", "imported")])
def test_the_training_process_imports_it_only_when_used(tiny_model, tmp_path, method, expected):
    cfg = write_config(tmp_path / "run.yaml", tiny_model, DATA, tmp_path / "run", method={"name": method})
    done = subprocess.run([sys.executable, "-c", PROBE, str(cfg)], cwd=ROOT, env=engine_env(), capture_output=True,
                          text=True, timeout=300)
    assert f"BITSANDBYTES 0 {expected}" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()
