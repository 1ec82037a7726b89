"""Export a finished run as a Hugging Face model folder: merge the adapter where the method allows it.

`python launch.py export RUN_DIR --out DIR [--dtype float32] [--max-shard-size 2GB] [--zip] [--overwrite]`
(engine/export/cli.py) writes DIR (and with --zip, DIR.zip and, for a merged export, DIR-adapter.zip beside it);
`python -m engine export --job JOB_DIR` is the same export as a job (what the web UI starts): JOB_DIR/config.yaml
(an ExportConfig) says which run, in which dtype and shards; the export goes to JOB_DIR/model/ with the zips
JOB_DIR/NAME.zip and (merged) JOB_DIR/NAME-adapter.zip, and the job reports through events.jsonl, status.json
(starting, loading_model, exporting, verifying, saving, then completed with the result, or failed with one
sentence) and export.log.

- LoRA, DoRA, IA3: the adapter is merged into the base and DIR is a plain transformers model
  (safetensors shards, config.json, generation_config.json, tokenizer with the chat template the run
  trained with, README model card): `AutoModelForCausalLM.from_pretrained(DIR)` needs no peft.
- QLoRA (and 8-bit LoRA): the base is reloaded in 16/32-bit and the adapter merged into that, never
  into the quantized weights; the card says so.
- prefix, prompt, P-tuning: virtual tokens cannot be folded into weights, so DIR holds the adapter
  and a note on loading it with peft; the result says why (`merged: false`, `reason`).
- full, freeze: the trained model itself, in the requested dtype.

Nothing is reported as done before it is verified (engine/export/verify.py). Writing goes to a hidden folder beside
DIR that is renamed at the end (engine/jobs/outputs.py), so a killed export never leaves a DIR that looks complete.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import (
    ADAPTER_METHODS,
    MERGEABLE,
    PROMPT_LEARNING,
    ExportConfig,
    ModelConfig,
    RunConfig,
)
from engine.export.model_card import how_to_load, model_card, title_of, unmergeable_reason
from engine.export.verify import (
    TOLERANCE,
    Verification,
    compare_adapter,
    free,
    logits_of,
    reload_and_compare,
    verification_prompts,
)
from engine.jobs import rundir
from engine.jobs.exports import default_export_dtype
from engine.jobs.failures import EngineError, explain
from engine.jobs.outputs import clean_stale_partials, links_in, partial_path, publish, zip_folder
from engine.sentences import Sentence, said

logger = logging.getLogger("engine.export.merge")

INTERRUPTED = said("engine.export.interrupted")
Log = Callable[[str], None]
Stage = Callable[[str], Any]


class ExportError(EngineError, RuntimeError):
    """An export that cannot be done; the message is one sentence for the user."""


@dataclass(kw_only=True)
class ExportResult(Verification):
    state: str = "failed"  # completed | failed
    merged: bool = False  # DIR is a standalone transformers model (merged adapter, or a full/freeze run)
    out: str | None = None
    zip: str | None = None
    adapter_zip: str | None = None
    reason: str | None = None  # why the adapter could not be merged
    error: str | None = None

    def outputs(self) -> dict[str, Any]:
        """What a completed export produced: the `result` of its final status (`reason_said`: the reason's key
        and values, engine.sentences, which the Export tab words in the visitor's language)."""
        made = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("state", "error")}
        keyed = isinstance(self.reason, Sentence) and self.reason.key is not None
        return {**made, "reason_said": self.reason.record()} if keyed else made


def default_dtype() -> str:
    """The export's dtype where none is chosen, by the rule the page's Export tab follows (engine.jobs.exports):
    float32 on the CPU, bfloat16 on a GPU that computes in it (not emulated), float16 on another GPU."""
    import torch

    has_gpu = torch.cuda.is_available()
    return default_export_dtype(torch.cuda.is_bf16_supported(including_emulation=False) if has_gpu else None)


def set_generation_config(model: Any, tokenizer: Any) -> None:
    """Stop at the template's end-of-turn token too, so plain `generate` ends a reply where chat does."""
    from engine.data.tokens import end_of_turn_ids

    stops = end_of_turn_ids(tokenizer)
    config = model.generation_config
    if stops:
        config.eos_token_id = stops[0] if len(stops) == 1 else stops
    if tokenizer.pad_token_id is not None:
        config.pad_token_id = tokenizer.pad_token_id


# ---------------------------------------------------------------------------------------------- writers


@dataclass
class Exporter:
    """One export being written into `tmp`: a writer per kind of method, each loading, writing and verifying."""

    config: RunConfig
    run: rundir.RunDir
    tmp: Path
    result: ExportResult
    shard: str
    log: Log
    stage: Stage

    def write(self) -> None:
        method = self.config.method.name
        if method in MERGEABLE:
            self.merged()
        elif method in PROMPT_LEARNING:
            self.adapter_only()
        else:
            self.whole()

    def _model_config(self, **update: Any) -> ModelConfig:
        return self.config.model.model_copy(update={"dtype": self.result.dtype, **update})

    def _save(self, model: Any, tokenizer: Any) -> None:
        model.save_pretrained(self.tmp, max_shard_size=self.shard)
        tokenizer.save_pretrained(self.tmp)

    def merged(self) -> None:
        """LoRA family and IA3: the adapter merged into the base, reloaded and compared."""
        from peft import PeftModel

        from engine.model.loading import grow_embeddings, load_model, load_tokenizer

        config, result, log, bits = self.config, self.result, self.log, self.config.method.effective_bits
        self.stage("loading_model")
        tokenizer = load_tokenizer(ModelConfig(name_or_path=str(self.run.adapter)))
        note = said("engine.log.export_bits", bits=bits) if bits else ""
        log(said("engine.log.export_loading", base=config.model.name_or_path, dtype=result.dtype, note=note))
        base = load_model(self._model_config(), bits=None)
        grow_embeddings(base, tokenizer, {self.run.name: self.run.adapter}, log)
        model = PeftModel.from_pretrained(base, str(self.run.adapter)).eval()
        prompts = verification_prompts(config, tokenizer, result, log)
        with model.disable_adapter():
            base_logits = logits_of(model, prompts)
        adapter_logits = logits_of(model, prompts)
        self.stage("exporting")
        log(said("engine.log.export_merging", method=title_of(config.method.name)))
        merged = model.merge_and_unload(safe_merge=True)
        set_generation_config(merged, tokenizer)
        log(said("engine.log.export_writing_merged", shard=self.shard))
        self._save(merged, tokenizer)
        free(merged, model, base)
        self.stage("verifying")
        reload_and_compare(config, self.tmp, prompts, adapter_logits, base_logits, result, log)
        result.merged = True

    def whole(self) -> None:
        """full and freeze: the trained model itself in the export's dtype, compared with the trained one."""
        from engine.model.loading import ModelError, fit_embeddings, load_model, load_tokenizer

        config, result, log = self.config, self.result, self.log
        self.stage("loading_model")
        tokenizer = load_tokenizer(ModelConfig(name_or_path=str(self.run.model)))
        trained = load_model(self._model_config(name_or_path=str(self.run.model))).eval()
        prompts = verification_prompts(config, tokenizer, result, log)
        reference = logits_of(trained, prompts)
        self.stage("exporting")
        set_generation_config(trained, tokenizer)
        log(said("engine.log.export_writing_whole", dtype=result.dtype, shard=self.shard))
        self._save(trained, tokenizer)
        free(trained)
        self.stage("verifying")
        base_logits = None
        try:
            base = load_model(self._model_config())
            fit_embeddings(base, tokenizer)
            base_logits = logits_of(base.eval(), prompts)
            free(base)
        except ModelError as error:
            log(said("engine.log.export_no_base", error=str(error)))
        reload_and_compare(config, self.tmp, prompts, reference, base_logits, result, log)  # a standalone model
        result.merged = True

    def adapter_only(self) -> None:
        """Prompt learning: the adapter as it is, with a note on loading it, checked to change the base."""
        from peft import PeftModel

        from engine.model.loading import grow_embeddings, load_model, load_tokenizer

        config, result, log = self.config, self.result, self.log
        result.reason = unmergeable_reason(config.method.name)
        log(result.reason)
        self.stage("loading_model")
        tokenizer = load_tokenizer(ModelConfig(name_or_path=str(self.run.adapter)))
        base = load_model(self._model_config())
        grow_embeddings(base, tokenizer, {self.run.name: self.run.adapter}, log)
        self.stage("exporting")
        shutil.copytree(self.run.adapter, self.tmp, dirs_exist_ok=True,  # regular files only (checked_run)
                        ignore=lambda folder, names: [n for n in names if os.path.islink(os.path.join(folder, n))])
        (self.tmp / "HOW_TO_LOAD.md").write_text(how_to_load(config, result.reason), encoding="utf-8")
        self.stage("verifying")
        log(said("engine.log.export_verifying_adapter"))
        model = PeftModel.from_pretrained(base, str(self.tmp)).eval()
        prompts = verification_prompts(config, tokenizer, result, log)
        with model.disable_adapter():
            base_logits = logits_of(model, prompts)
        adapter_logits = logits_of(model, prompts)
        free(model, base)
        compare_adapter(result, adapter_logits, base_logits, title_of(config.method.name))


# ---------------------------------------------------------------------------------------------- export


def run_export(run_dir: str | os.PathLike, out: str | os.PathLike, dtype: str | None = None,
               max_shard_size: str = "2GB", make_zip: bool = False, log: Log | None = None,
               overwrite: bool = False, *, name: str | None = None, stage: Stage | None = None) -> ExportResult:
    """Export a finished run to `out`; never raises for a failed export: the result says why.

    With make_zip, NAME.zip (the export) and, for a merged one, NAME-adapter.zip (the run's adapter) are written
    beside `out`; NAME is out's own name unless given (the model card's title too). `stage(state)` hears each step."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    stage = stage or (lambda _state: None)
    run, out = rundir.RunDir(Path(run_dir).expanduser().resolve()), Path(out).expanduser().resolve()
    name = name or out.name
    result = ExportResult(state="failed", out=str(out))
    tmp = partial_path(out)
    try:
        config = checked_run(run, out, result, dtype, overwrite)
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_partials(out, f"{name}.zip", f"{name}-adapter.zip")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        log(said("engine.log.exporting", run=run.name, method=title_of(config.method.name), out=str(out)))
        Exporter(config, run, tmp, result, max_shard_size, log, stage).write()
        if result.max_abs_diff is not None:
            base_diff = result.base_diff if result.base_diff is not None else float("nan")
            log(said("engine.log.export_verified", diff=f"{result.max_abs_diff:.3g}",
                     tolerance=f"{result.tolerance:.3g}", base=f"{base_diff:.3g}"))
        stage("saving")
        save(config, run, tmp, out, result, name, log)
        if make_zip:
            write_zips(config, run, out, result, name, log)
        result.state = "completed"
    except BaseException as error:  # noqa: BLE001 - every failure must end in a failed result, tmp removed
        shutil.rmtree(tmp, ignore_errors=True)
        logger.error("export failed", exc_info=True)  # the traceback: export.log in a job
        result.error = INTERRUPTED if isinstance(error, KeyboardInterrupt) else explain(error, "export")
        log(said("engine.log.export_error", error=result.error))
        if not isinstance(error, Exception):
            raise
    return result


def checked_run(run: rundir.RunDir, out: Path, result: ExportResult, dtype: str | None,
                overwrite: bool) -> RunConfig:
    """The run's config, once the export is known to be possible (ExportError says why not)."""
    try:
        config = run.read_config()
    except FileNotFoundError as error:
        raise ExportError(str(error)) from None
    result.dtype = dtype or default_dtype()
    if result.dtype not in TOLERANCE:
        raise ExportError(said("engine.export.bad_dtype", dtype=repr(result.dtype), dtypes=", ".join(TOLERANCE)))
    weights = run.adapter if config.method.name in ADAPTER_METHODS else run.model
    if run.weights_dir() != weights:  # missing, or a folder a killed save left without its config or weights
        raise ExportError(said("engine.export.no_weights", run=str(run.path), folder=weights.name))
    links = links_in(weights)
    if links:  # an export copies and packs only what the run wrote, never what a link leads to
        raise ExportError(said("engine.export.link", link=str(links[0]), target=os.readlink(links[0])))
    if out.exists() and not overwrite:
        raise ExportError(said("engine.export.exists", out=str(out)))
    if out == run.path or run.path in out.parents:
        raise ExportError(said("engine.export.inside_run", out=str(out)))
    return config


def save(config: RunConfig, run: rundir.RunDir, tmp: Path, out: Path, result: ExportResult, name: str,
         log: Log) -> None:
    """The model card and export.json beside the weights, then the folder renamed into place."""
    try:
        metrics = run.read_metrics()
    except ValueError as error:  # a damaged metrics.json costs the card its figures, not the export
        log(said("engine.log.export_no_figures", error=str(error)))
        metrics = {}
    card = model_card(config, metrics, result, merged=result.merged, reason=result.reason, name=name,
                      source=str(run.path))
    (tmp / "README.md").write_text(card, encoding="utf-8")
    facts = {"run": str(run.path), "method": config.method.name, "merged": result.merged, "dtype": result.dtype,
             "reason": result.reason, "max_abs_diff": result.max_abs_diff, "base_diff": result.base_diff,
             "tolerance": result.tolerance}
    (tmp / "export.json").write_text(json.dumps(facts, indent=2), encoding="utf-8")
    publish(tmp, out)
    log(said("engine.log.wrote", path=str(out)))


def write_zips(config: RunConfig, run: rundir.RunDir, out: Path, result: ExportResult, name: str, log: Log) -> None:
    """NAME.zip of the export, and NAME-adapter.zip of the run's adapter where the export is a merged model (an
    export that could not merge is the adapter already: a second zip would hold the same files)."""
    result.zip = str(zip_folder(out, out.parent / f"{name}.zip"))
    log(said("engine.log.wrote", path=result.zip))
    if result.merged and run.adapter.is_dir() and config.method.name in ADAPTER_METHODS:
        result.adapter_zip = str(zip_folder(run.adapter, out.parent / f"{name}-adapter.zip"))
        log(said("engine.log.wrote", path=result.adapter_zip))


# ---------------------------------------------------------------------------------------------- job


def export_body(context: Any) -> Any:
    """The export kind's body (engine.jobs.lifecycle): a failed export ends failed with the result's sentence."""
    from engine.jobs.lifecycle import Outcome

    try:
        result = _job_export(context.job, context.config, context.reporter)
    except KeyboardInterrupt:  # a stop: run_export removed what it had written
        return Outcome("failed", error=INTERRUPTED)
    if result.state == "completed":
        return Outcome("completed", result=result.outputs())
    return Outcome("failed", error=result.error)


def _job_export(job: rundir.ExportDir, config: ExportConfig, reporter: Any) -> ExportResult:
    """Export as the job's config says; a relative run_dir is relative to the job folder, like a run's paths."""
    run_dir = Path(config.run_dir).expanduser()
    run_dir = run_dir if run_dir.is_absolute() else job.path / run_dir
    return run_export(run_dir, job.out, config.dtype, config.max_shard_size, config.zip, log=reporter.info,
                      overwrite=True, name=job.name, stage=reporter.status)
