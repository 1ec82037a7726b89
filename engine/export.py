"""Export a finished run as a Hugging Face model folder: merge the adapter where the method allows it.

`python launch.py export RUN_DIR --out DIR [--dtype float32] [--max-shard-size 2GB] [--zip] [--json]`
and `run_export(...)` (what the web UI runs in an engine process) do the same:

- LoRA, DoRA, IA3: the adapter is merged into the base and DIR is a plain transformers model
  (safetensors shards, config.json, generation_config.json, tokenizer with the chat template the run
  trained with, README model card): `AutoModelForCausalLM.from_pretrained(DIR)` needs no peft.
- QLoRA (and 8-bit LoRA): the base is reloaded in 16/32-bit and the adapter merged into that, never
  into the quantized weights; the card says so.
- prefix, prompt, P-tuning: virtual tokens cannot be folded into weights, so DIR holds the adapter
  and a note on loading it with peft; the result says why (`merged: false`, `reason`).
- full, freeze: the trained model itself, in the requested dtype.

Nothing is reported as done before it is verified: on a few prompts from the run's own data the
exported folder, loaded from disk, must give the adapter model's logits (max abs difference under
a per-dtype tolerance) and must not give the base model's. Writing goes to a hidden folder beside
DIR that is renamed at the end, so a killed export never leaves a DIR that looks complete.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from engine import rundir
from engine.config import MERGEABLE, PROMPT_LEARNING, ModelConfig, RunConfig

# Allowed max |exported - adapter| logit difference, relative to the largest |logit| (at least 1).
# float32 merges differ only by summation order; 16-bit ones round W + BA once more than the adapter does.
TOLERANCE = {"float32": 1e-4, "bfloat16": 5e-2, "float16": 1e-2}
VERIFY_PROMPTS = 3  # rows of the run's data used to verify
VERIFY_TOKENS = 128  # at most this many tokens of each
FALLBACK_PROMPTS = ("Hello! Who are you?", "What can you do?", "Write one sentence about the sea.")
STORED = (".safetensors", ".bin", ".pt", ".gguf")  # already dense: zip them without compression

METHOD_TITLES = {
    "lora": "LoRA", "dora": "DoRA", "qlora": "QLoRA", "ia3": "IA3", "prefix": "prefix tuning",
    "prompt": "prompt tuning", "ptuning": "P-tuning", "full": "full fine-tuning", "freeze": "freeze-tuning",
}  # fmt: skip
UNMERGEABLE_REASON = (
    "{title} learns virtual tokens that are fed to the model with every input, not a change of its weights, "
    "so it cannot be merged: the export holds the adapter, loadable with peft."
)

Log = Callable[[str], None]


class ExportError(RuntimeError):
    """An export that cannot be done or did not verify; the message is one sentence for the user."""


@dataclass
class ExportResult:
    state: str  # completed | failed
    merged: bool = False  # DIR is a standalone transformers model (merged adapter, or a full/freeze run)
    out: str | None = None
    zip: str | None = None
    adapter_zip: str | None = None
    reason: str | None = None  # why the adapter could not be merged
    max_abs_diff: float | None = None  # exported vs adapter (or trained) model logits
    base_diff: float | None = None  # exported vs base model logits (must exceed the tolerance)
    tolerance: float | None = None
    dtype: str | None = None
    verified_on: int = 0  # prompts compared
    prompt_source: str = "the run's data"
    error: str | None = None

    def status_event(self) -> dict[str, Any]:
        if self.state != "completed":
            return {"kind": "status", "state": "failed", "error": self.error}
        event = {"kind": "status", **asdict(self)}
        event.pop("error")
        return event


# ---------------------------------------------------------------------------------------------- helpers


def read_run(run_dir: Path) -> RunConfig:
    """The run's config as it trained (paths are not re-checked: its dataset may have moved)."""
    path = run_dir / rundir.CONFIG
    if not path.is_file():
        raise ExportError(f"{run_dir} is not a run folder: it has no {rundir.CONFIG}.")
    return RunConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def default_dtype() -> str:
    """float32 on CPU (exact merges, and 16-bit matmuls are slow there); the GPU's 16-bit type elsewhere."""
    import torch

    if not torch.cuda.is_available():
        return "float32"
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def verification_prompts(config: RunConfig, tokenizer: Any, result: ExportResult, log: Log) -> list[Any]:
    """Token ids of a few whole conversations from the run's own data, rendered with its chat template."""
    from engine.data import DataError, chat_spans, load_rows

    try:
        rows, _ = load_rows(config.data)
    except (DataError, OSError) as error:  # the data may be gone or changed since; verification still runs
        log(f"the run's dataset cannot be read ({str(error).splitlines()[0]}): verifying on built-in prompts")
        rows = [{"messages": [{"role": "user", "content": text}]} for text in FALLBACK_PROMPTS]
        result.prompt_source = "built-in prompts"
    texts = []
    for number, row in enumerate(rows[:VERIFY_PROMPTS], 1):
        if "text" in row:
            texts.append(row["text"])
        else:  # rendered as training rendered it (a system prompt folded where the template rejects one, tools)
            name = Path(config.data.path).name
            texts.append(chat_spans(row["messages"], tokenizer, name, number, row.get("tools"))[0])
    result.verified_on = len(texts)
    return encode(tokenizer, texts)


def encode(tokenizer: Any, texts: list[str]) -> list[Any]:
    return [tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :VERIFY_TOKENS]
            for text in texts]


def logits_of(model: Any, prompts: list[Any]) -> list[Any]:
    """Float32 logits of each prompt's own positions (prompt-learning models prepend virtual ones)."""
    import torch

    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for ids in prompts:
            logits = model(input_ids=ids.to(device)).logits
            out.append(logits[:, -ids.shape[-1]:].float().cpu())
    return out


def max_diff(a: list[Any], b: list[Any]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


def scale_of(logits: list[Any]) -> float:
    return max(1.0, max(float(x.abs().max()) for x in logits))


def free(*objects: Any) -> None:
    import torch

    del objects
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def grow_embeddings(base: Any, tokenizer: Any, adapter_dir: Path, log: Log) -> None:
    """Grow the base's vocabulary to the run's tokenizer, as training did; peft loads the trained rows over it.

    Where the adapter does not carry them (peft skips them when it cannot tell the vocabulary grew, e.g. a hub
    base saved offline), the new rows are drawn at random: seeded, so chat and export agree, and said aloud.
    """
    import torch

    from engine.modeling import fit_embeddings

    added = len(tokenizer) - base.get_input_embeddings().weight.shape[0]
    if added <= 0:
        return
    torch.manual_seed(0)
    fit_embeddings(base, tokenizer)
    if not adapter_carries_embeddings(adapter_dir):
        log(f"warning: the tokenizer has {added} tokens more than the base but the adapter does not carry their rows; "
            "they are re-initialised, so the model may not reproduce training exactly around those tokens")


def adapter_carries_embeddings(adapter_dir: Path) -> bool:
    from safetensors import safe_open

    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        return False
    with safe_open(str(weights), "pt") as f:
        return any(key.endswith(("embed_tokens.weight", "lm_head.weight")) for key in f.keys())  # noqa: SIM118


def set_generation_config(model: Any, tokenizer: Any) -> None:
    """Stop at the template's end-of-turn token too, so plain `generate` ends a reply where chat does."""
    from engine.chat import end_of_turn_ids

    stops = end_of_turn_ids(tokenizer)
    config = model.generation_config
    if stops:
        config.eos_token_id = stops[0] if len(stops) == 1 else stops
    if tokenizer.pad_token_id is not None:
        config.pad_token_id = tokenizer.pad_token_id


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip `folder` (entries under its own name) into `target`, file by file from disk, then rename."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    kind = zipfile.ZIP_STORED if path.suffix in STORED else zipfile.ZIP_DEFLATED
                    archive.write(path, f"{target.stem}/{path.relative_to(folder)}", compress_type=kind)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def clean_stale_partials(out: Path) -> None:
    """Remove hidden partial folders that earlier, killed exports to `out` left behind."""
    for path in out.parent.glob(f".{out.name}.partial-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------- card


def model_card(config: RunConfig, metrics: dict[str, Any], result: ExportResult, source: str) -> str:
    m, t = config.method, config.train
    title = METHOD_TITLES.get(m.name, m.name)
    base = config.model.name_or_path
    hyper: dict[str, Any] = {"method": m.name}
    if m.name in ("lora", "dora", "qlora"):
        hyper.update(r=m.r, lora_alpha=m.lora_alpha, lora_dropout=m.lora_dropout, target_modules=m.target_modules,
                     use_rslora=m.use_rslora)
    elif m.name == "ia3":
        hyper.update(target_modules=m.target_modules)
    elif m.name in PROMPT_LEARNING:
        hyper.update(num_virtual_tokens=m.num_virtual_tokens)
    elif m.name == "freeze":
        hyper.update(freeze_trainable_layers=m.freeze_trainable_layers)
    if m.effective_bits:
        hyper["bits"] = m.effective_bits
    hyper.update(learning_rate=t.learning_rate, max_steps=t.max_steps, epochs=None if t.max_steps else t.epochs,
                 batch_size=t.batch_size, gradient_accumulation_steps=t.gradient_accumulation_steps,
                 cutoff_len=t.cutoff_len, lr_scheduler_type=t.lr_scheduler_type, seed=t.seed)
    losses = {k: metrics.get(k) for k in ("train_loss", "final_loss", "eval_loss") if metrics.get(k) is not None}
    whole = m.name in ("full", "freeze")
    front = {"base_model": base, "library_name": "transformers" if result.merged else "peft",
             "tags": ["peft-workbench", m.name]}
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
             f"# {Path(result.out or 'model').name}", "",
             f"Fine-tuned from `{base}` with {title} in PEFT Workbench, on the dataset `{Path(config.data.path).name}`"
             f" ({metrics.get('steps', '?')} steps).", ""]
    if whole:
        lines.append(f"The trained weights of the whole model ({result.dtype}).")
    elif result.merged:
        lines.append(f"The {title} adapter is merged into the base weights ({result.dtype}): this folder is a "
                     "plain transformers model and needs no peft.")
        if m.effective_bits:
            lines.append(f"The run trained on a {m.effective_bits}-bit quantized base; the adapter was merged into "
                         f"the base reloaded in {result.dtype}, not into the quantized weights, so outputs can "
                         "differ slightly from the quantized model used in training.")
    else:
        lines += [result.reason or "", "", "Load it with peft:", "", "```python",
                  "from peft import AutoPeftModelForCausalLM", "from transformers import AutoTokenizer", "",
                  "model = AutoPeftModelForCausalLM.from_pretrained(PATH)  # downloads/loads the base named in "
                  "adapter_config.json",
                  "tokenizer = AutoTokenizer.from_pretrained(PATH)", "```"]
    lines += ["", "## Hyperparameters", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in hyper.items() if v is not None]
    if losses:
        lines += ["", "## Final losses", "", "| name | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in losses.items()]
    lines += ["", "## Verification", ""]
    if result.max_abs_diff is not None:
        against = f", and from the base model's by {result.base_diff:.3g}" if result.base_diff is not None else ""
        lines.append(f"On {result.verified_on} prompts ({result.prompt_source}), this folder's logits differ from the "
                     f"{'trained' if whole else 'adapter'} model's by at most {result.max_abs_diff:.3g} "
                     f"(tolerance {result.tolerance:.3g}){against}.")
    elif result.base_diff is not None:
        lines.append(f"With this adapter the logits differ from the base model's by up to {result.base_diff:.3g} "
                     f"on {result.verified_on} prompts ({result.prompt_source}).")
    if result.merged:
        lines += ["", "## Use", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                  "model = AutoModelForCausalLM.from_pretrained(PATH)",
                  "tokenizer = AutoTokenizer.from_pretrained(PATH)",
                  "ids = tokenizer.apply_chat_template([{\"role\": \"user\", \"content\": \"Hi\"}], "
                  "add_generation_prompt=True, return_tensors=\"pt\", return_dict=True)",
                  "print(tokenizer.decode(model.generate(**ids, max_new_tokens=64)[0]))", "```"]
    lines += ["", f"Exported from run `{source}` on {time.strftime('%Y-%m-%d %H:%M:%S')}.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- export


def _check(result: ExportResult, exported: list[Any], reference: list[Any], base: list[Any] | None) -> None:
    result.max_abs_diff = max_diff(exported, reference)
    result.tolerance = TOLERANCE[result.dtype] * scale_of(reference)
    if result.max_abs_diff > result.tolerance:
        raise ExportError(f"Verification failed: the exported model's logits differ from the trained model's by "
                          f"{result.max_abs_diff:.3g}, above the {result.dtype} tolerance {result.tolerance:.3g}.")
    if base is not None:
        result.base_diff = max_diff(exported, base)
        if result.base_diff <= result.tolerance:
            raise ExportError(f"Verification failed: the exported model gives the base model's logits (difference "
                              f"{result.base_diff:.3g}), so the training left no trace in it: check the run.")


def _save(model: Any, tokenizer: Any, folder: Path, shard: str) -> None:
    model.save_pretrained(folder, max_shard_size=shard)
    tokenizer.save_pretrained(folder)


def _reload_and_check(config: RunConfig, folder: Path, prompts: list[Any], reference: list[Any],
                      base_logits: list[Any] | None, result: ExportResult, log: Log) -> None:
    """Load the written folder with transformers alone and compare its logits before calling it done."""
    from transformers import AutoModelForCausalLM

    from engine.modeling import DTYPES

    log("verifying: reloading the written folder without peft")
    exported = AutoModelForCausalLM.from_pretrained(folder, dtype=DTYPES[result.dtype],
                                                    trust_remote_code=config.model.trust_remote_code)
    exported.to(_device()).eval()
    _check(result, logits_of(exported, prompts), reference, base_logits)
    free(exported)
    result.merged = True


def _export_merged(config: RunConfig, run: rundir.RunDir, tmp: Path, result: ExportResult, shard: str,
                   log: Log) -> None:
    from peft import PeftModel

    from engine.modeling import load_model, load_tokenizer

    m = config.method
    tokenizer = load_tokenizer(ModelConfig(name_or_path=str(run.adapter)))
    base_cfg = config.model.model_copy(update={"dtype": result.dtype})
    note = f" (it trained {m.effective_bits}-bit; merging into full weights, not quantized ones)" if \
        m.effective_bits else ""
    log(f"loading the base {config.model.name_or_path} in {result.dtype}{note}")
    base = load_model(base_cfg, bits=None)
    grow_embeddings(base, tokenizer, run.adapter, log)
    model = PeftModel.from_pretrained(base, str(run.adapter))
    model.eval()
    prompts = verification_prompts(config, tokenizer, result, log)
    with model.disable_adapter():
        base_logits = logits_of(model, prompts)
    adapter_logits = logits_of(model, prompts)
    log(f"merging the {METHOD_TITLES[m.name]} adapter into the base")
    merged = model.merge_and_unload(safe_merge=True)
    set_generation_config(merged, tokenizer)
    log(f"writing the merged model (shards up to {shard})")
    _save(merged, tokenizer, tmp, shard)
    free(merged, model, base)
    _reload_and_check(config, tmp, prompts, adapter_logits, base_logits, result, log)


def _export_full(config: RunConfig, run: rundir.RunDir, tmp: Path, result: ExportResult, shard: str,
                 log: Log) -> None:
    from engine.modeling import ModelError, load_model, load_tokenizer

    tokenizer = load_tokenizer(ModelConfig(name_or_path=str(run.model)))
    trained = load_model(config.model.model_copy(update={"name_or_path": str(run.model), "dtype": result.dtype}))
    trained.eval()
    prompts = verification_prompts(config, tokenizer, result, log)
    reference = logits_of(trained, prompts)
    set_generation_config(trained, tokenizer)
    log(f"writing the trained model in {result.dtype} (shards up to {shard})")
    _save(trained, tokenizer, tmp, shard)
    free(trained)
    base_logits = None
    try:
        base = load_model(config.model.model_copy(update={"dtype": result.dtype}))
        from engine.modeling import fit_embeddings

        fit_embeddings(base, tokenizer)
        base_logits = logits_of(base.eval(), prompts)
        free(base)
    except ModelError as error:
        log(f"the base model cannot be loaded ({error}): skipping the differs-from-base check")
    _reload_and_check(config, tmp, prompts, reference, base_logits, result, log)  # DIR is a standalone model


def _export_adapter_only(config: RunConfig, run: rundir.RunDir, tmp: Path, result: ExportResult, log: Log) -> None:
    from peft import PeftModel

    from engine.modeling import load_model, load_tokenizer

    title = METHOD_TITLES[config.method.name]
    result.reason = UNMERGEABLE_REASON.format(title=title[0].upper() + title[1:])
    log(result.reason)
    shutil.copytree(run.adapter, tmp, dirs_exist_ok=True)
    (tmp / "HOW_TO_LOAD.md").write_text(
        f"# Loading this {title} adapter\n\n{result.reason}\n\n```python\nfrom peft import PeftModel\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        "tokenizer = AutoTokenizer.from_pretrained(PATH)  # carries the chat template the run trained with\n"
        f"base = AutoModelForCausalLM.from_pretrained({config.model.name_or_path!r})\n"
        "base.resize_token_embeddings(len(tokenizer))  # only needed when the chat template added tokens\n"
        "model = PeftModel.from_pretrained(base, PATH)\n```\n", encoding="utf-8")
    log("verifying: loading the written adapter with peft over the base")
    tokenizer = load_tokenizer(ModelConfig(name_or_path=str(tmp)))
    base = load_model(config.model.model_copy(update={"dtype": result.dtype}))
    grow_embeddings(base, tokenizer, tmp, log)
    model = PeftModel.from_pretrained(base, str(tmp)).eval()
    prompts = verification_prompts(config, tokenizer, result, log)
    with model.disable_adapter():
        base_logits = logits_of(model, prompts)
    adapter_logits = logits_of(model, prompts)
    result.base_diff = max_diff(adapter_logits, base_logits)
    tolerance = TOLERANCE[result.dtype] * scale_of(base_logits)
    free(model, base)
    if result.base_diff <= tolerance:
        raise ExportError(f"Verification failed: the {title} adapter leaves the base model's logits unchanged "
                          f"(difference {result.base_diff:.3g}), so the training left no trace in it.")


def _device() -> str:
    from engine.modeling import device

    return device()


def run_export(run_dir: str | os.PathLike, out: str | os.PathLike, dtype: str | None = None,
               max_shard_size: str = "2GB", make_zip: bool = False, log: Log | None = None,
               overwrite: bool = False) -> ExportResult:
    """Export a finished run to `out`; never raises for a failed export: the result says why."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    run, out = rundir.RunDir(Path(run_dir).expanduser().resolve()), Path(out).expanduser().resolve()
    result = ExportResult(state="failed", out=str(out))
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        config = read_run(run.path)
        method = config.method.name
        result.dtype = dtype or default_dtype()
        if result.dtype not in TOLERANCE:
            raise ExportError(f"dtype {result.dtype!r} is not one of {', '.join(TOLERANCE)}.")
        weights = run.model if method in ("full", "freeze") else run.adapter
        if not weights.is_dir() or not any(weights.iterdir()):
            raise ExportError(f"{run.path} has no {weights.name}/ folder: the run has not finished, so there is "
                              "nothing to export.")
        if out.exists() and not overwrite:
            raise ExportError(f"{out} already exists: choose another --out, or delete it first.")
        if out == run.path or run.path in out.parents:
            raise ExportError(f"--out {out} is inside the run folder: export somewhere else.")
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_partials(out)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        log(f"exporting {run.name} ({METHOD_TITLES.get(method, method)}) to {out}")
        if method in MERGEABLE:
            _export_merged(config, run, tmp, result, max_shard_size, log)
        elif method in PROMPT_LEARNING:
            _export_adapter_only(config, run, tmp, result, log)
        else:
            _export_full(config, run, tmp, result, max_shard_size, log)
        if result.max_abs_diff is not None:
            log(f"verified: max |logit difference| {result.max_abs_diff:.3g} (tolerance {result.tolerance:.3g}), "
                f"{result.base_diff if result.base_diff is not None else float('nan'):.3g} from the base model")
        result.out = str(out)
        (tmp / "README.md").write_text(model_card(config, run.read_metrics(), result, str(run.path)),
                                       encoding="utf-8")
        (tmp / "export.json").write_text(json.dumps({"run": str(run.path), "method": method, "merged": result.merged,
                                                     "dtype": result.dtype, "reason": result.reason,
                                                     "max_abs_diff": result.max_abs_diff,
                                                     "base_diff": result.base_diff}, indent=2), encoding="utf-8")
        _publish(tmp, out)
        log(f"wrote {out}")
        if make_zip:
            result.zip = str(zip_folder(out, out.with_name(f"{out.name}.zip")))
            log(f"wrote {result.zip}")
            if run.adapter.is_dir() and method not in ("full", "freeze"):
                result.adapter_zip = str(zip_folder(run.adapter, out.with_name(f"{out.name}-adapter.zip")))
                log(f"wrote {result.adapter_zip}")
        result.state = "completed"
    except BaseException as error:  # noqa: BLE001 - every failure must end in a failed result, tmp removed
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, KeyboardInterrupt):
            result.error = "The export was interrupted; nothing was written."
        else:
            result.error = explain(error)
        log(f"error: {result.error}")
        if not isinstance(error, Exception):
            raise
    return result


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished folder into place (an existing `out` is swapped out, then removed)."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def explain(error: BaseException) -> str:
    from engine.modeling import ModelError

    if isinstance(error, (ExportError, ModelError)):
        return str(error)
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        return "Out of memory while merging: export on a machine with more memory, or with --dtype bfloat16."
    return f"{error.__class__.__name__}: {text}".rstrip(": ")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python launch.py export", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a finished run folder")
    parser.add_argument("--out", required=True, help="the folder to write (must not exist, unless --overwrite)")
    parser.add_argument("--dtype", choices=tuple(TOLERANCE), help="weights dtype (default: float32 on CPU)")
    parser.add_argument("--max-shard-size", default="2GB", help="largest safetensors shard (default 2GB)")
    parser.add_argument("--zip", action="store_true", help="also write OUT.zip and OUT-adapter.zip beside OUT")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (only after success)")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout: log events and a final status")
    args = parser.parse_args(argv)
    from engine.console import send_library_output_to_log

    send_library_output_to_log()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    if args.json:
        def log(message: str) -> None:
            print(json.dumps({"kind": "log", "message": message}), flush=True)
            print(message, file=sys.stderr, flush=True)
    else:
        def log(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

    try:
        result = run_export(args.run_dir, args.out, args.dtype, args.max_shard_size, args.zip, log, args.overwrite)
    except KeyboardInterrupt:
        result = ExportResult(state="failed", error="The export was interrupted; nothing was written.")
    if args.json:
        print(json.dumps(result.status_event()), flush=True)
    elif result.state == "completed":
        print(f"done: {result.out}" + ("" if result.merged else " (adapter only, not merged)"), file=sys.stderr)
    return 0 if result.state == "completed" else 1
