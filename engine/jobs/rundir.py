"""Job folders: the names of every file in one, and the small helpers that read them.

Plain Python: the web UI imports this module. Every piece of engine work the page starts is a job with
the same shape (a folder is its single source of truth):

    JOB/config.yaml    its typed config (RunConfig for training, ExportConfig for an export)
    JOB/events.jsonl   append-only events (engine.jobs.events)
    JOB/status.json    atomic rewrite: state, pid and pid_started (the engine process), error
    JOB/<kind>.log     human-readable log with full tracebacks (train.log, export.log)
    JOB/stdout.log     the engine process's stdout/stderr when the page started it
    ...                its outputs

Training runs live in WORKSPACE/runs/NAME/ (RunDir), exports in WORKSPACE/exports/NAME/ (ExportDir), evaluations
in WORKSPACE/evals/NAME/ (EvalDir).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import psutil
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from engine import config_migrate as migrate
from engine.config import ExportConfig, RunConfig
from engine.config_eval import EvalConfig
from engine.jobs.events import FINAL_STATES, STATES  # FINAL_STATES re-exported: the states a finished job ends in
from engine.jobs.failures import disk_full
from engine.jobs.outputs import clean_leftovers
from engine.sentences import keyed_fields, status_error

CONFIG = "config.yaml"  # the job's typed config (a run's: the resolved RunConfig, versions included)
EVENTS = "events.jsonl"  # append-only event stream (engine.jobs.events)
STATUS = "status.json"  # atomic rewrite: state, pid and pid_started (the engine process), error
TRAIN_LOG = "train.log"  # a run's human-readable log with full tracebacks
EXPORT_LOG = "export.log"  # an export's
EVAL_LOG = "eval.log"  # an evaluation's
COMPARE_LOG = "compare.log"  # a method comparison's
PREDICTIONS = "predictions.jsonl"  # an evaluation's rows: prompt, reference and each model's answer
GENERAL = "general.jsonl"  # an evaluation's answers to the built-in general prompts
ANSWERS = "answers.jsonl"  # an evaluation's answers to its config's own prompts
JUDGE = "judge.jsonl"  # an evaluation's judge replies, as they came (eval.judge)
STDOUT_LOG = "stdout.log"  # the engine process's stdout/stderr when started by the UI
METRICS = "metrics.json"  # final figures of the run
CHECKPOINTS = "checkpoints"  # resumable Trainer checkpoints
TENSORBOARD = "tb"  # a run's TensorBoard log (train.report_to: tensorboard, the default)
ADAPTER = "adapter"  # PEFT adapter + tokenizer (adapter methods)
MODEL = "model"  # full model + tokenizer (full, freeze); an export's written model (or adapter)
TRAINER_STATE = "trainer_state.json"  # the Trainer writes it last into a checkpoint
WEIGHT_SUFFIXES = (".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json")

START_TIME_TOLERANCE_S = 0.5


class StatusFields(BaseModel):
    """The shape of a status.json (today's fields): what every reader checks before it trusts a key. Keys the
    engine may add later pass through (extra="allow"); the known ones must hold their type (strict: a text pid,
    a list for an error, a boolean for a step are a damaged file, not values to coerce)."""

    model_config = ConfigDict(extra="allow", strict=True)

    state: str
    pid: int | None = None
    pid_started: float | None = None  # the process's start time: with the pid, how its process is proven
    error: str | None = None
    error_key: str | None = None  # the message key of `error` (engine.sentences), where it has one
    error_values: dict[str, Any] | None = None
    note: str | None = None
    step: int | None = None
    result: dict[str, Any] | None = None
    t: float | None = None
    damaged: bool | None = None


class MetricsFields(BaseModel):
    """The shape of a run's metrics.json (its final figures; other keys pass through)."""

    model_config = ConfigDict(extra="allow", strict=True)

    train_loss: float | None = None
    eval_loss: float | None = None
    wall_s: float | None = None


def check_fields(model: type[BaseModel], fields: Any, file: str) -> dict[str, Any]:
    """`fields` when they have the shape of `model`; otherwise ValueError with one sentence naming the key."""
    if not isinstance(fields, dict):
        raise ValueError(f"{file} holds {type(fields).__name__}, not a JSON object.")
    try:
        model.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        if first["type"] == "missing":
            raise ValueError(f"{file} has no {key}.") from None
        raise ValueError(f"{file} has {key} {first['input']!r}, which is damaged ({first['msg'].lower()}).") from None
    return fields


def check_status(fields: Any) -> dict[str, Any]:
    """A status.json's fields when they can be trusted (see StatusFields); ValueError (one sentence) otherwise. A
    job that holds the device must name its process with the start time (pid_started): a pid alone cannot be told
    from an unrelated process that got the same number, so it is never judged alive nor signalled."""
    check_fields(StatusFields, fields, STATUS)
    if fields["state"] not in STATES:
        raise ValueError(f"{STATUS} has state {fields['state']!r}, which is none of {', '.join(STATES)}.")
    if fields["state"] not in FINAL_STATES and fields.get("pid") is not None and fields.get("pid_started") is None:
        raise ValueError(f"{STATUS} names process {fields['pid']} without its start time (pid_started): it cannot "
                         "be proven to be this job's process, so it is never signalled.")
    return fields


@dataclass(frozen=True)
class JobDir:
    """The folder of one job; subclasses name the kind, its log file, its config type and its outputs."""

    path: Path
    kind: ClassVar[str] = ""
    LOG: ClassVar[str] = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def name(self) -> str:
        return self.path.name

    config = property(lambda self: self.path / CONFIG)
    events = property(lambda self: self.path / EVENTS)
    status = property(lambda self: self.path / STATUS)
    stdout_log = property(lambda self: self.path / STDOUT_LOG)
    log = property(lambda self: self.path / self.LOG)

    def read_status(self) -> dict[str, Any]:
        """The last status written (in today's fields, whatever version wrote it), or {} when there is none yet;
        a status.json that cannot be read (a process killed while writing its first one, or a newer release's)
        reads as failed, saying why, and `damaged`."""
        if not self.status.is_file():
            return {}
        try:
            fields = check_status(migrate.migrate_status(read_json(self.status)))
            return {**fields, "error": status_error(fields)} if fields.get("error") is not None else fields
        except migrate.SchemaError as error:
            return {"state": "failed", "error": error.sentence(STATUS), "damaged": True}
        except ValueError as error:  # not JSON, or not the shape of one (check_status says which key)
            return {"state": "failed", "error": str(error), "damaged": True}
        except OSError as error:
            return {"state": "failed", "error": f"{STATUS} cannot be read ({error.__class__.__name__}).",
                    "damaged": True}

    def write_status(self, state: str, **fields: Any) -> None:
        write_json_atomic(self.status, migrate.STATUS.stamp(keyed_fields({"state": state, **fields})))

    def read_raw_config(self) -> dict[str, Any]:
        """config.yaml as a plain mapping of today's fields, whatever version wrote it ({} when missing);
        ValueError when it is not a YAML mapping, or a version this code cannot read (one clear sentence)."""
        if not self.config.is_file():
            return {}
        try:
            raw = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise ValueError(f"{self.config} is not valid YAML ({error.__class__.__name__}).") from None
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise ValueError(f"{self.config} does not hold a YAML mapping.")
        try:
            return migrate.migrate_config(raw)
        except migrate.SchemaError as error:
            raise ValueError(error.sentence(str(self.config))) from None

    def outputs(self) -> tuple[str, ...]:
        """The names of what an attempt writes besides events and logs; starting afresh deletes them."""
        return ()

    def process_alive(self) -> bool:
        """True while the engine process named in status.json runs (see `process_alive`)."""
        return process_alive(self.read_status())

    def clear_outputs(self) -> None:
        """Delete what an earlier attempt wrote, and the partial folders of one killed while saving (status.json
        is rewritten by the caller, config.yaml kept)."""
        names = (EVENTS, STDOUT_LOG, self.LOG, *self.outputs())
        for name in names:
            path = self.path / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        clean_leftovers(self.path, set(names))


@dataclass(frozen=True)
class RunDir(JobDir):
    """A training run: WORKSPACE/runs/NAME/ (or any output_dir)."""

    kind: ClassVar[str] = "train"
    LOG: ClassVar[str] = TRAIN_LOG

    train_log = property(lambda self: self.path / TRAIN_LOG)
    metrics = property(lambda self: self.path / METRICS)
    checkpoints = property(lambda self: self.path / CHECKPOINTS)
    tensorboard = property(lambda self: self.path / TENSORBOARD)
    adapter = property(lambda self: self.path / ADAPTER)
    model = property(lambda self: self.path / MODEL)

    def read_config(self) -> RunConfig:
        """The run's config as it trained, without re-checking its paths (its dataset may have moved since).

        Raises FileNotFoundError without config.yaml, ValueError (pydantic's, or ours) when it is damaged."""
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path} does not exist: give the run's folder (the page's runs are "
                                    "WORKSPACE/runs/NAME, workspace/runs/NAME by default).")
        if not self.config.is_file():
            raise FileNotFoundError(f"{self.path} is not a run folder: it has no {CONFIG}.")
        return RunConfig.model_validate(self.read_raw_config())

    def outputs(self) -> tuple[str, ...]:
        return (METRICS, CHECKPOINTS, ADAPTER, MODEL, TENSORBOARD)

    def written_by_engine(self) -> bool:
        """Whether this folder is a run this product wrote: its status.json reads in today's shape, or (a process
        killed before its first status) its config.yaml names this very folder as its output_dir. A folder of the
        user's own, even one with an adapter/ or a config.yaml, is neither, and nothing may replace its files."""
        if self.status.is_file() and not self.read_status().get("damaged"):
            return True
        try:
            return Path(self.read_config().output_dir).resolve() == self.path.resolve()
        except (OSError, ValueError):
            return False

    def read_metrics(self) -> dict[str, Any]:
        """metrics.json's figures ({} before the run wrote it); ValueError (one sentence) when it is damaged."""
        return check_fields(MetricsFields, read_json(self.metrics), METRICS)

    def all_checkpoints(self) -> list[Path]:
        """Every `checkpoint-STEP` folder, oldest step first, complete or not."""
        if not self.checkpoints.is_dir():
            return []
        found = [p for p in self.checkpoints.glob("checkpoint-*") if p.is_dir() and p.name[11:].isdigit()]
        return sorted(found, key=checkpoint_step)

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint (see `checkpoint_complete`), or None."""
        complete = [p for p in self.all_checkpoints() if checkpoint_complete(p)]
        return complete[-1] if complete else None

    def incomplete_checkpoints(self) -> list[Path]:
        """Checkpoint folders a killed process left half-written (or half-deleted), oldest step first."""
        return [p for p in self.all_checkpoints() if not checkpoint_complete(p)]

    def weights_dir(self) -> Path | None:
        """Where the trained result lives: adapter/ or model/, whichever a finished run wrote. The engine writes
        them aside and renames them into place; a folder without its config and weights files (left by an
        engine from before saves were atomic) is no result."""
        for folder, config in ((self.adapter, "adapter_config.json"), (self.model, "config.json")):
            names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
            if config in names and any(name.endswith(WEIGHT_SUFFIXES) for name in names):
                return folder
        return None


@dataclass(frozen=True)
class ExportDir(JobDir):
    """An export job: WORKSPACE/exports/NAME/ holds the exported folder (model/) and its download zips."""

    kind: ClassVar[str] = "export"
    LOG: ClassVar[str] = EXPORT_LOG

    out = property(lambda self: self.path / MODEL)  # the merged model (or the adapter where it cannot merge)
    zip = property(lambda self: self.path / f"{self.name}.zip")
    adapter_zip = property(lambda self: self.path / f"{self.name}-adapter.zip")

    def outputs(self) -> tuple[str, ...]:
        return (MODEL, self.zip.name, self.adapter_zip.name)

    def read_config(self) -> ExportConfig:
        if not self.config.is_file():
            raise FileNotFoundError(f"{self.path} is not an export folder: it has no {CONFIG}.")
        return ExportConfig.model_validate(self.read_raw_config())


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """`pid` and `pid_started` (its start time) of a process, this one by default: what status.json records so
    that a reader can tell the run's process from an unrelated one that later got the same pid."""
    process = psutil.Process(pid)
    return {"pid": process.pid, "pid_started": process.create_time()}


def process_alive(status: dict[str, Any]) -> bool:
    """True if the process a status names exists, is not a zombie, and started when the status recorded.

    Judged from the pid and its start time alone, never from a command line: a run started by
    `launch.py train` in a terminal is as alive as one the page started."""
    pid, started = status.get("pid"), status.get("pid_started")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(started, (int, float)):
        return False  # no pid, or no start time to prove it is still the job's process (see check_status)
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - started) < START_TIME_TOLERANCE_S
    except psutil.NoSuchProcess:
        return False


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name.rpartition("-")[2])


def checkpoint_complete(checkpoint: Path) -> bool:
    """True when the Trainer finished writing this checkpoint: trainer_state.json, the file it writes last
    (after the weights, optimizer, scheduler and RNG states), is whole JSON naming the folder's step."""
    try:
        state = json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, or cut short by a kill: the checkpoint is incomplete
        return False
    return isinstance(state, dict) and state.get("global_step") == checkpoint_step(checkpoint)


def read_json(path: Path) -> Any:
    """A JSON file's value ({} when there is none); ValueError naming the file when it is not JSON. Callers check
    its shape (check_fields) before they trust a key."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} cannot be read: it is not text (UTF-8).") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path.name} cannot be read: it is not JSON ({error.msg} at line {error.lineno}).") from None


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one. On a full disk, where no
    new file fits, an existing file is rewritten in place, over its own blocks (a status must still say that the
    job failed, and why); the temporary file of a failed write is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, sort_keys=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if not disk_full(error) or not path.is_file() or path.is_symlink():
            raise
        with open(path, "r+b") as f:  # the old file's blocks are allocated already
            f.write(text.encode("utf-8"))
            f.truncate()
            f.flush()
            os.fsync(f.fileno())


@dataclass(frozen=True)
class EvalDir(JobDir):
    """An evaluation job: WORKSPACE/evals/NAME/ holds predictions.jsonl, general.jsonl, judge.jsonl and
    metrics.json, written only when the evaluation completes (a killed or stopped one leaves none of them)."""

    kind: ClassVar[str] = "eval"
    LOG: ClassVar[str] = EVAL_LOG

    metrics = property(lambda self: self.path / METRICS)
    predictions = property(lambda self: self.path / PREDICTIONS)
    general = property(lambda self: self.path / GENERAL)
    answers = property(lambda self: self.path / ANSWERS)
    judge = property(lambda self: self.path / JUDGE)

    def outputs(self) -> tuple[str, ...]:
        return (METRICS, PREDICTIONS, GENERAL, ANSWERS, JUDGE)

    def read_config(self) -> EvalConfig:
        if not self.config.is_file():
            raise FileNotFoundError(f"{self.path} is not an evaluation folder: it has no {CONFIG}.")
        return EvalConfig.model_validate(self.read_raw_config())

    def read_metrics(self) -> dict[str, Any]:
        return read_json(self.metrics)


@dataclass(frozen=True)
class CompareJobDir(JobDir):
    """A method comparison: WORKSPACE/compares/NAME/ (engine/compare/). Its runs and evaluations are jobs of their
    own; its table files are rebuilt from them, never cleared."""

    kind: ClassVar[str] = "compare"
    LOG: ClassVar[str] = COMPARE_LOG
