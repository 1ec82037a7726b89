"""What the page already knows about a run before it starts: Start and Run again refuse, at once and with the
sentence the page shows, a run whose model cannot be reached or whose dataset the inspection rejects, instead of
queueing it to fail the same way minutes later (behind another run).

The dataset verdict is the `inspect-data` answer the page itself shows (the same engine job, so usually cached
when Start is pressed; otherwise it runs now, before the run is queued). Hub datasets and dataset folders are read
when the run starts and are not checked here; neither is what only loading the model can tell (the engine's
pre-flight does that as the run starts). No gradio: the tabs translate a refusal's key into the visitor's
language.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.config import DataConfig, RunConfig
from engine.config_compare import CompareConfig, compare_data_problem
from engine.config_distributed import named_gpus
from engine.config_eval import EvalConfig, eval_data_problem
from engine.config_stage import shape_problem
from engine.errors import UserError
from webui.forms.models import has_tokenizer, hub_offline, model_folder
from webui.jobs.commands import EngineCache, EngineCommandError, inspect_job
from webui.jobs.devices import GpuList, list_gpus

RECENT_FAILURE_S = 600.0  # an inspection that failed this recently (the page showing its sentence) is not run again


class StartRefusedError(UserError):
    """A run the page knows would fail: `key` is the locale message that says why, `values` fill it in."""

    def __init__(self, key: str, **values: Any):
        super().__init__(key)
        self.key, self.values = key, values


def check_start(config: RunConfig, cache: EngineCache, local_model: Path | None) -> None:
    """StartRefusedError for a run that cannot start: a hub model that is neither cached nor reachable, a local model
    folder without tokenizer files, a dataset file that is gone, or one the inspection rejects (empty, no known
    layout, a bad row), or whose shape the stage does not read (pairs under sft, SFT rows under dpo).
    `local_model` is the checked folder of config.model.name_or_path, None for a hub id."""
    check_gpus(config, list_gpus)
    name = config.model.name_or_path
    tokenizer = model_folder(name, local_model)  # local, or the hub cache's copy
    if tokenizer is None and hub_offline():
        raise StartRefusedError("msg.model_offline", name=name)
    if local_model is not None and not has_tokenizer(local_model):  # before its datasets are inspected with it
        raise StartRefusedError("msg.model_no_tokenizer", name=name)
    for number, source in enumerate(config.data.sources()):
        path = Path(source.path)
        if not path.is_absolute() or path.is_dir():
            continue  # a hub dataset or a dataset folder: read when the run starts
        if not path.is_file():
            raise StartRefusedError("msg.data_missing", name=path.name)
        # the first dataset as the page inspects it (the same cached answer); the others without a tokenizer
        measured = {"model": str(tokenizer) if tokenizer else None, "cutoff_len": config.train.cutoff_len,
                    "overlength": config.data.overlength} if number == 0 else {}
        job = inspect_job(path, data_format=source.format or "auto", columns=source.columns or None, **measured)
        try:
            answer = cache.answer(job, failed_within_s=RECENT_FAILURE_S)
        except EngineCommandError as error:
            raise StartRefusedError("msg.start_data_refused", name=path.name, reason=error.sentence) from None
        except OSError as error:  # the file went, or cannot be read, while it was being looked at
            raise StartRefusedError("msg.start_data_refused", name=path.name,
                                    reason=f"it cannot be read ({error.strerror or error.__class__.__name__}).") \
                from None
        # a pairs file under sft or pretrain, SFT rows under a preference stage: the engine's own sentence
        if (source.format or "auto") == "auto" and (problem := shape_problem(config.train.stage, path.name,
                                                                                str((answer or {}).get("format", "")))):
            raise StartRefusedError("msg.start_data_refused", name=path.name, reason=problem)


def check_gpus(config: RunConfig, listed: Callable[[], GpuList]) -> None:
    """StartRefusedError for a run whose `devices` names a GPU that nvidia-smi does not list (the Devices panel's
    list; `listed` asked only when the run names GPUs): the run's process would refuse it seconds later
    (engine.train.launch.check_devices), and a run behind it would wait for nothing. A list that nvidia-smi could
    not give is no verdict: the engine judges those runs."""
    named = named_gpus(config.devices)
    if not named:
        return
    found = listed()
    if found.problem:
        return
    present = {gpu.index for gpu in found.gpus}
    if all(index in present for index in named):
        return
    if not present:
        raise StartRefusedError("msg.devices_no_gpu", devices=config.devices)
    raise StartRefusedError("msg.devices_not_listed", devices=config.devices,
                            listed=", ".join(str(index) for index in sorted(present)))


def check_test_set(config: EvalConfig, cache: EngineCache) -> None:
    """StartRefusedError for an evaluation whose test set file the evaluation would refuse: one it cannot read (the
    inspection's sentence), or a file of preference pairs or KTO rows (the engine's own sentence,
    engine.config_eval.eval_data_problem). A run's validation split, a dataset folder or a hub dataset is read when
    the evaluation starts."""
    check_data_files(config.data, cache, "msg.eval_data_refused", eval_data_problem)


def check_compare_data(config: CompareConfig, cache: EngineCache) -> None:
    """StartRefusedError for a comparison whose dataset file its runs cannot train on: one the inspection rejects,
    or preference pairs or KTO rows (engine.config_compare.compare_data_problem), instead of queueing every method
    to fail."""
    check_data_files(config.data, cache, "msg.compare_data_refused", compare_data_problem)


def check_data_files(data: DataConfig | None, cache: EngineCache, key: str,
                     problem: Callable[[str, str], str | None]) -> None:
    """StartRefusedError(`key`) for the first local dataset file of `data` the inspection rejects (its sentence as the
    engine says it: the Evaluate and Compare tabs word a file matching no format as their Columns group answers it),
    or whose shape (the inspection's format) `problem` has a sentence for; dataset folders and hub datasets are read
    later."""
    for source in data.sources() if data is not None else []:
        path = Path(source.path)
        if not path.is_absolute() or not path.is_file():
            continue
        try:
            answer = cache.answer(inspect_job(path, data_format=source.format or "auto",
                                              columns=source.columns or None), failed_within_s=RECENT_FAILURE_S)
        except EngineCommandError as error:
            raise StartRefusedError(key, name=path.name, reason=error.sentence) from None
        except OSError as error:
            raise StartRefusedError(key, name=path.name,
                                    reason=f"it cannot be read ({error.strerror or error.__class__.__name__}).") \
                from None
        if said := problem(path.name, str((answer or {}).get("format", ""))):
            raise StartRefusedError(key, name=path.name, reason=said)
