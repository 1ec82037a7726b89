"""SFT run -> DPO run from it (`model.adapter`) -> verified merged export, on a tiny real Llama, in-process (what
`launch.py train` runs after reading its config): the DPO run's config.yaml and metrics.json name the SFT run, the
export alone reproduces the logits of base + SFT merged + DPO adapter (computed here by the test itself with peft),
and its model card names the base, the SFT run and the reference."""

from __future__ import annotations

from pathlib import Path

import yaml

from engine.jobs.rundir import RunDir
from tests.cli import MEMORISE, engine_process_state_kept, write_config, write_rows
from tests.engine.test_preference import PAIRS

SHORT = {"max_steps": 2, "batch_size": 2, "learning_rate": 2e-2, "lr_scheduler_type": "constant", "cutoff_len": 64}


def train(config: Path) -> RunDir:
    from engine.config import load_config
    from engine.train.recipe import run_train

    loaded = load_config(config)
    with engine_process_state_kept():
        code = run_train(loaded)
    run = RunDir(Path(loaded.output_dir))
    assert code == 0, run.path.joinpath("train.log").read_text(encoding="utf-8")[-3000:]
    return run


def test_sft_then_dpo_then_export_is_traceable_and_reproduces_the_logits(memorise_model: Path, tmp_path: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.chat.session import ChatSession
    from engine.export.merge import run_export

    sft_rows = write_rows(tmp_path / "sft.json", MEMORISE)
    sft = train(write_config(tmp_path / "sft.yaml", memorise_model, sft_rows, tmp_path / "sft",
                             method={"lora_dropout": 0.0}, train=SHORT))
    pairs = write_rows(tmp_path / "pairs.json", PAIRS)
    config = write_config(tmp_path / "dpo.yaml", memorise_model, pairs, tmp_path / "dpo",
                          method={"lora_dropout": 0.0}, train={**SHORT, "stage": "dpo"})
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["model"]["adapter"] = str(sft.path)
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    dpo = train(config)
    assert dpo.read_config().model.adapter == str(sft.path.resolve())
    assert dpo.read_metrics()["start"] == [{"run": str(sft.path.resolve()), "stage": "sft", "method": "lora",
                                            "data": "sft.json"}]
    assert not (dpo.adapter / "ref").exists()  # TRL's reference copy of the adapter is not saved

    out = tmp_path / "export"
    result = run_export(dpo.path, out, log=lambda _message: None)
    assert result.state == "completed", result.error
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"- base model: `{memorise_model}`" in card and f"- started from run `{sft.path.resolve()}`" in card
    assert "- reference: the base with the adapter of the run it started from merged" in card

    base = AutoModelForCausalLM.from_pretrained(memorise_model, dtype=torch.float32)
    merged_sft = PeftModel.from_pretrained(base, sft.adapter).merge_and_unload()
    expected = PeftModel.from_pretrained(merged_sft, dpo.adapter).eval()
    exported = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = AutoTokenizer.from_pretrained(out)("Who are you? Paris is the capital.", return_tensors="pt").input_ids
    with torch.no_grad():
        want, got = expected(input_ids=ids).logits, exported(input_ids=ids).logits
        with expected.disable_adapter():
            sft_only = expected(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-4)
    assert not torch.allclose(got, sft_only, atol=1e-4)  # the DPO adapter is in it, not only the SFT one

    chat = ChatSession()  # the chat worker's session says what the DPO run's "base" answers from: base + the SFT run
    chat.load(None, {"tuned": str(dpo.path)})
    assert chat.status()["start"] == str(sft.path.resolve()) and chat.status()["model"] == str(memorise_model)
    chat.unload()
    assert chat.status()["start"] is None
