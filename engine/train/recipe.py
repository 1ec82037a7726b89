"""`python -m engine train CONFIG.yaml` (or `--resume RUN_DIR`, or `--overwrite`): one fine-tuning run, headless.

A training run is a job of kind `train` (engine.jobs.kinds): `train` checks the config and the output_dir, writes
the run folder's config.yaml and runs it through the job lifecycle (engine.jobs.lifecycle), as
`python -m engine run RUN_DIR --kind train` (what the page starts) does; `train_body` is the training itself.

The run folder (config.output_dir) is the single source of truth: events.jsonl and status.json say
where the run is, train.log has the full story, checkpoints/ make it resumable, and adapter/ (or
model/ for full and freeze) plus metrics.json are what a finished run leaves. SIGTERM means "stop
and save": training stops after the current step, a checkpoint and the weights are written, and the
run ends in state `stopped`.

A config that asks for several processes (`distributed`, engine/config_distributed.py) is started through torchrun
(engine/train/launch.py: `--print-command` prints that command instead); each of its ranks runs this same command
and trains, and only rank 0 writes the run folder.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from engine import sentences
from engine.config import ADAPTER_METHODS, ConfigError, RunConfig, load_config
from engine.config_distributed import rendezvous_problem
from engine.config_stage import PREFERENCE_STAGES
from engine.estimate import memory, sharding
from engine.estimate.advice import ADVICE
from engine.jobs import rundir, workspace
from engine.jobs.faults import fault_point
from engine.jobs.kinds import TRAIN
from engine.jobs.lifecycle import JobContext, Outcome, StopRequest, run_job
from engine.jobs.outputs import clean_stale_partials, partial_path, publish
from engine.jobs.reporter import JobReporter, rank
from engine.model.imports import skip_bitsandbytes_unless_used
from engine.train import launch, nodes, slurm, strategy
from engine.train.output_dir import check_output_dir, resume_point

log = logging.getLogger("engine")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        if args.resume and not launch.is_rank():  # a rank is given the folder its command line found
            args.resume = str(workspace.find_run(args.resume, args.workspace))
        if launch.is_rank() and nodes.several_nodes():  # the nodes agree on their folders, checkpoints and config
            config = nodes.agree(config_path(args), lambda: read_config(args),
                                 lambda found: check_output_dir(found, overwrite=args.overwrite), args.resume,
                                 overwrite=args.overwrite)
        else:
            config = read_config(args)
        started = launch.is_rank() or args.launcher == "slurm"  # torchrun (started by Slurm) has its rendezvous
        if not started and (problem := rendezvous_problem(config.distributed)) is not None:
            raise ConfigError([problem])
        if launch.is_rank():
            launch.redirect_rank_output(Path(config.output_dir))
        if rank() == 0 and not args.print_command and not nodes.decided():  # rank 0 alone looks at the run folder
            check_output_dir(config, overwrite=args.overwrite)
    except (ConfigError, workspace.RunNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.print_command:
        print(slurm.script(config, train_args(args)).rstrip("\n") if args.launcher == "slurm" else
              launch.printed(config, train_args(args)))
        return 0
    if launch.several(config) and not launch.is_rank():
        return launch.start(config, train_args(args))
    os.environ.update(launch.device_env(config))  # before torch is imported: the devices it may see
    return run_train(config, overwrite=args.overwrite, own_process=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """train's command line, checked: CONFIG.yaml or --resume RUN_DIR, and flags that go together."""
    parser = argparse.ArgumentParser(prog="python launch.py train", description="Fine-tune a model from a config.")
    parser.add_argument("config", nargs="?", help="run config YAML")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a run from its newest checkpoint: its folder, or its name in the workspace")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh in an output_dir that holds a finished, failed or stopped run "
                             "(deletes its outputs)")
    parser.add_argument("--print-command", action="store_true",
                        help="print the command that trains this config (torchrun's on each node where it asks for "
                             "several processes) instead of running it")
    parser.add_argument("--launcher", choices=("torchrun", "slurm"), default="torchrun",
                        help="with --print-command: torchrun's command of each node, or an sbatch script for Slurm")
    workspace.add_workspace_flag(parser, "a config that names no output_dir trains into runs/NAME there (NAME: the "
                                         "config file's name), and --resume NAME finds the run runs/NAME there")
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.resume):
        parser.error("give either CONFIG.yaml or --resume RUN_DIR")
    if args.resume and args.overwrite:
        parser.error("--overwrite starts afresh and --resume continues: give one of them")
    if args.launcher == "slurm" and not args.print_command:
        parser.error("--launcher slurm writes a script for sbatch: give --print-command too")
    return args


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.resume) / rundir.CONFIG if args.resume else Path(args.config)


def read_config(args: argparse.Namespace) -> RunConfig:
    """The config of `train CONFIG` or of `train --resume RUN_DIR` (RUN_DIR/config.yaml); a CONFIG that names no
    output_dir trains into WORKSPACE/runs/NAME, NAME the file's name without .yaml, as an evaluation's folder is."""
    path = config_path(args)
    config = load_config(path, output_dir=workspace.folder(args.workspace, TRAIN.folder) / path.stem)
    config.train.resume = bool(args.resume) or (config.train.resume and not args.overwrite)
    return config


def train_args(args: argparse.Namespace) -> list[str]:
    """The arguments of `train` that each rank is given: the same config (its absolute path) and flags."""
    if args.resume:
        return ["--resume", str(Path(args.resume).resolve())]
    given = ["--workspace", str(Path(args.workspace).expanduser().resolve())] \
        if args.workspace != workspace.DEFAULT else []
    return [str(Path(args.config).resolve()), *(["--overwrite"] if args.overwrite else []), *given]


def template_yaml(config: RunConfig) -> str:
    """RUN/config.yaml: the run's config as a template that another run may copy, so without train.resume. A resume
    is asked for each time (`train --resume`, the page's Resume), never kept: a copy of a resumed run's config.yaml
    given another output_dir trains afresh, where a kept `resume: true` would refuse it (nothing to resume)."""
    return config.model_copy(update={"train": config.train.model_copy(update={"resume": False})}).to_yaml()


def run_train(config: RunConfig, overwrite: bool = False, own_process: bool = False) -> int:
    """Write the run folder's config.yaml and train it through the job lifecycle; returns the process exit code
    (0 completed or stopped, 1 failed). `own_process`: this process trains this one run and exits."""
    run = rundir.RunDir(Path(config.output_dir))
    writes = rank() == 0 or nodes.keeps_own_folder()  # rank 0; each node's local rank 0 on a disk of its own
    if overwrite and writes:
        run.clear_outputs()
    run.path.mkdir(parents=True, exist_ok=True)
    if writes:  # another node's config.yaml is what its --resume reads
        run.config.write_text(template_yaml(config), encoding="utf-8")
    # the job takes this config, with train.resume, where config.yaml keeps the template (a rank's RUN/config.yaml is
    # rank 0's, on node 0, written when it gets there)
    return run_job(TRAIN, run.path, own_process=own_process, config=config)


def train_body(context: JobContext) -> Outcome:
    """The train kind's body: the run folder's config trained, saved and reported (engine.jobs.lifecycle)."""
    config: RunConfig = context.config
    if config.train.resume and context.reporter.rank == 0:  # the page's Resume asks in config.yaml: answered now
        context.job.config.write_text(template_yaml(config), encoding="utf-8")
    launch.check_world(config)  # a config for several processes started as one process: refused
    import torch

    launch.check_devices(config, torch.cuda.device_count())  # GPUs asked for and not there: refused, not the CPU
    if context.own_process:
        skip_bitsandbytes_unless_used(config)  # this process trains one config: see engine.model.imports
    state, step = _train(config.with_versions(), context.job, context.reporter, context.stop)
    return Outcome(state, step=step)


def _train(config: RunConfig, run: rundir.RunDir, reporter: JobReporter, stop: StopRequest) -> tuple[str, int]:
    """Train and save; the final state (completed, or stopped on request) and the step it ended at. The stage's
    objective (engine/train/objectives.py) reads and tokenizes the data, plans the batches and builds the trainer."""
    from engine.data.tokens import ensure_chat_template
    from engine.train import trackers
    from engine.train.objectives import objective

    started = time.time()
    trackers.check(config, run)  # a tracker that is not installed stops the run here, not after its last step
    from engine.model.config_json import model_config_json

    model_json = model_config_json(config.model.name_or_path, config.model.revision)  # a damaged one: said now
    from engine.model.start import starting_runs

    starts = starting_runs(config.model.adapter, config.model.name_or_path, config.method.effective_bits)
    if starts:  # config.yaml names the starting run by its full path, so the run can be traced from it alone
        config.model.adapter = str(starts[-1].run)
    if reporter.rank == 0:
        run.config.write_text(template_yaml(config), encoding="utf-8")
    reporter.status("loading_data")
    stage = objective(config.train.stage)
    datasets = stage.load(config.data, config.train.seed)  # file errors surface before any model is touched
    reporter.info(datasets.summary())
    from engine.model.loading import device, fit_embeddings, load_model, load_tokenizer  # torch: after the data
    from engine.train import kernels

    kernels.check(config, run)  # train.kernels: liger without CUDA or liger-kernel, refused before any weight
    tokenizer = load_tokenizer(config.model)
    if ensure_chat_template(tokenizer):
        reporter.info(sentences.said("engine.log.chatml"))
    train_rows, val_rows = stage.tokenize(config, tokenizer, datasets, reporter)

    reporter.status("loading_model")
    from engine.train.preflight import check_virtual_tokens

    if (line := check_virtual_tokens(config, stage.lengths(train_rows))) is not None:  # before any weight loads
        reporter.info(line)
    from engine.model.dropout import use_bulk_dropout
    from engine.model.methods import apply_method, count_parameters

    if launch.several(config):  # auto settled (alike on every rank) before the model loads, and said; and on
        reporter.info(nodes.with_decision(strategy.settle(config, model_json, device())))  # several nodes, who saves
    model = load_model(config.model, config.method)
    grown = fit_embeddings(model, tokenizer)
    # The adapter's initial weights (LoRA's A, prompt embeddings...) are drawn here, before the Trainer seeds
    # anything: seeded, so that the same config trains the same run.
    from transformers import set_seed
    set_seed(config.train.seed)
    model = apply_method(model, config.method, tokenizer)
    if device() == "cpu" and (bulk := use_bulk_dropout(model)):
        reporter.info(sentences.said("engine.log.bulk_dropout", layers=bulk))
    trainable, total = count_parameters(model)
    percent = 100 * trainable / total
    reporter.info(sentences.said("engine.log.trainable", trainable=f"{trainable:,}", total=f"{total:,}",
                                 percent=f"{percent:.4f}"))

    from engine.train.trainer import finished

    lengths = stage.lengths(train_rows)
    batching = stage.batching(config, model, trainable, lengths)
    reporter.info(batching.reason)
    reporter.info(check_memory(config, model, trainable, lengths, batching.packing, stage.sequences))
    for line in trackers.prepare(config, run):
        reporter.info(line)
    trainer = stage.build(config, run, model, tokenizer, train_rows, val_rows, reporter, stop, batching.packing)
    reporter.status("training")
    sampler = trainer.args.train_sampling_strategy
    checkpoint = resume_point(run, reporter, config, len(train_rows), sampler) if config.train.resume else None
    if checkpoint is not None and finished(checkpoint):
        reporter.info(sentences.said("engine.log.last_step", checkpoint=checkpoint.name))
    result = trainer.train_from(checkpoint)

    state = "stopped" if stop.requested else "completed"  # a stop agreed by every rank (EventCallback)
    reporter.status("saving")
    eval_loss = final_eval_loss(trainer) if val_rows and state == "completed" else None  # every rank evaluates
    whole = strategy.full_state_dict(trainer)  # sharded weights (FSDP, ZeRO) gathered: every rank takes part
    if reporter.rank:  # rank 0 saves the weights and the metrics; the Trainer saved checkpoints on it alone
        return state, trainer.state.global_step
    weights_dir = save_weights(config, run, model, tokenizer, grown, whole)
    metrics = final_metrics(config, trainer, result, started, weights_dir, trainable, total, eval_loss)
    metrics["batching"] = batching.reason
    if (kept := best_checkpoint(config, trainer, state == "stopped")) is not None:
        metrics["best"] = kept
        early = sentences.said("engine.log.stopped_early", step=kept["ended_at"]) if kept["stopped_early"] else ""
        reporter.info(sentences.said("engine.log.kept", step=kept["step"], metric=kept["metric"],
                                     value=f"{kept['value']:.4f}", early=early))
    if starts:
        metrics["start"] = [start.record() for start in starts]  # the model card's lineage
    rundir.write_json_atomic(run.metrics, metrics)
    loss = sentences.said("engine.log.train_loss", loss=f"{metrics['train_loss']:.4f}") \
        if metrics["train_loss"] is not None else sentences.said("engine.log.no_train_loss")
    reporter.info(sentences.said("engine.log.saved", folder=weights_dir.name, size=f"{metrics['weights_size_mb']:.2f}",
                                 loss=loss, speed=f"{metrics['tokens_per_s']:.0f}"))
    return state, trainer.state.global_step


def check_memory(config: RunConfig, model: Any, trainable: int, lengths: list[int], packing: bool,
                 sequences: int = 1) -> str:
    """The pre-flight memory check's log line; MemoryCheckError when one step cannot fit (engine.train.preflight),
    its sentence ending with a configuration that fits (engine.estimate.advice), which is also written to
    RUN/advice.json (the Runs tab's "Run again with this") and printed as a config diff.
    `lengths` has one entry per sequence, `sequences` per example (a preference pair's chosen and rejected)."""
    from engine.estimate import advice as advising
    from engine.train import logits, preflight
    from engine.train.trainer import pack_len

    bound = pack_len(config, model) if packing else None
    chunked = (config.train.stage not in PREFERENCE_STAGES and logits.plan(model)[0] is not None
               and not strategy.weights_sharded(config))  # as the trainer's

    def step_of(changed: RunConfig) -> preflight.StepMemory:
        found = preflight.estimate(model, trainable, lengths, changed.train.batch_size * sequences, packing, bound,
                                   changed.method, chunked=chunked, config=changed)
        return sharding.of_run(found, changed.distributed)  # one rank's share under FSDP or ZeRO

    step = step_of(config)
    available, where = preflight.available_memory()
    fits = (config.train.batch_size, config.train.cutoff_len, packing, config.method)
    try:
        return preflight.check_fits(step, available, where, *fits)
    except preflight.MemoryCheckError:
        already = step.weights + (step.overhead if step.device == "cpu" else memory.GPU_CONTEXT)
        found = advising.suggest(config, step_of, available, already)
        if found is None or not found.changes:
            raise
        rundir.write_json_atomic(Path(config.output_dir) / ADVICE, found.to_json())
        print(f"a configuration that fits:\n{found.diff()}", flush=True)
        advice = sentences.said("engine.memory.or_advice", advice=found.sentence())
        return preflight.check_fits(step, available, where, *fits, advice=advice)


def save_weights(config: RunConfig, run: rundir.RunDir, model: Any, tokenizer: Any, grown: bool,
                 whole: dict[str, Any] | None = None) -> Path:
    """adapter/ for adapter methods, model/ for full and freeze; the tokenizer (chat template) beside them.
    Written into a partial folder aside and renamed into place, so that a process killed while saving leaves
    no folder that looks like a result (the next save removes its partial folder).
    Grown embeddings are saved with an adapter explicitly: peft's "auto" needs the base's config on disk
    or the Hub to notice, and offline it may not find it."""
    target = run.adapter if config.method.name in ADAPTER_METHODS else run.model
    clean_stale_partials(target)
    partial = partial_path(target)
    try:
        if config.method.name in ADAPTER_METHODS:
            # TRL's DPO and KTO add a "ref" adapter (a frozen copy of the starting one, their reference): not saved
            only = {"selected_adapters": ["default"]} if "ref" in getattr(model, "peft_config", {}) else {}
            model.save_pretrained(partial, save_embedding_layers=True if grown else "auto", state_dict=whole, **only)
        else:
            model.save_pretrained(partial, state_dict=whole)
        fault_point("final-save")
        tokenizer.save_pretrained(partial)
        publish(partial, target)
    except BaseException:  # a failed save (disk full...) leaves nothing half-written; the error goes on
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target


def final_eval_loss(trainer: Any) -> float:
    """The eval loss of the weights saved: the one logged at the step they are from (the best checkpoint's, where
    the Trainer loaded it at the end; else the last step's), or a fresh evaluation."""
    state = trainer.state
    step = state.best_global_step if trainer.args.load_best_model_at_end and state.best_global_step else None
    evals = {e["step"]: e["eval_loss"] for e in state.log_history if "eval_loss" in e}
    if (step or state.global_step) in evals:
        return evals[step or state.global_step]
    return trainer.evaluate()["eval_loss"]


def best_checkpoint(config: RunConfig, trainer: Any, stopped: bool) -> dict[str, Any] | None:
    """What metrics.json says of the kept weights where the Trainer kept the best checkpoint (a validation split):
    the metric, its best value, the step, and whether early stopping ended the run before its last step."""
    state = trainer.state
    if not trainer.args.load_best_model_at_end or not state.best_global_step:
        return None
    return {"metric": trainer.args.metric_for_best_model, "value": float(state.best_metric),
            "step": state.best_global_step,
            "checkpoint": Path(state.best_model_checkpoint or "").name or None,
            "early_stopping_patience": config.train.early_stopping_patience,
            "stopped_early": not stopped and state.global_step < state.max_steps, "ended_at": state.global_step}


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_reserved() -> dict[str, float]:
    """On CUDA, what torch's caching allocator reserved at its peak (nearer what nvidia-smi shows than the peak
    allocated, peak_memory_mb, by the allocator's slack); nothing elsewhere."""
    import torch

    return {"peak_reserved_mb": torch.cuda.max_memory_reserved() / 2**20} if torch.cuda.is_available() else {}


def final_metrics(config: RunConfig, trainer: Any, result: Any, started: float, weights_dir: Path,
                  trainable: int, total: int, eval_loss: float | None) -> dict[str, Any]:
    size = sum(f.stat().st_size for f in weights_dir.rglob("*") if f.is_file() and "token" not in f.name)
    train_losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    metrics: dict[str, Any] = {
        "method": config.method.name,
        "stage": config.train.stage,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": 100 * trainable / total,
        "steps": trainer.state.global_step,
        "train_loss": trainer.mean_loss(result),
        "final_loss": train_losses[-1] if train_losses else None,
        "tokens_per_s": trainer.tokens_per_s(),
        "wall_s": time.time() - started,
        "train_s": result.metrics.get("train_runtime"),
        "peak_memory_mb": peak_memory_mb(),
        **peak_reserved(),
        "weights_size_mb": size / 2**20,
        "packing": trainer.packing,
    }
    steady = trainer.steady_tokens_per_s()
    if steady is not None:  # after the first step's start-up (engine/train/throughput.py)
        metrics["steady_tokens_per_s"] = steady
    if eval_loss is not None:
        metrics["eval_loss"] = eval_loss
    if eval_loss is not None and config.train.stage not in PREFERENCE_STAGES:  # a preference loss is no likelihood
        metrics["eval_perplexity"] = math.exp(min(eval_loss, 50))
    return metrics
