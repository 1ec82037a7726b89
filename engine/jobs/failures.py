"""One sentence for the user on why engine work failed: the one place that explains errors.

Plain Python (no torch, transformers or peft): the web process imports it to explain an engine process
that ended without a final status (`explain_exit`); engine jobs use `explain` for their failed status.

- `EngineError` (an engine.errors.UserError) is the base of the engine's errors whose message already is that
  sentence (a bad dataset, a model that does not load, an export that cannot be done, a refused chat request);
  `DataError` lives here since readers, formats and tokenizing all raise it.
- Running out of memory is recognised in one place (`out_of_memory`), and advised per kind of job.
"""

from __future__ import annotations

import errno
import re
import signal
from pathlib import Path

from engine.errors import UserError

# What a job can do where memory ran out: job -> (out of GPU memory, out of RAM), one sentence each.
_MERGE = "Out of memory while merging: export on a machine with more memory, or with --dtype bfloat16."
_CHAT = "Out of memory while chatting: unload other models, load on the CPU, or load the run in 4-bit."
OUT_OF_MEMORY = {
    "train": ("Out of GPU memory: lower train.batch_size or train.cutoff_len, turn on train.gradient_checkpointing, "
              "or use qlora.",
              "Out of memory (RAM): lower train.batch_size or train.cutoff_len, or use a smaller model."),
    "export": (_MERGE, _MERGE),
    "chat": (_CHAT, _CHAT),
}
OOM_MARKERS = ("out of memory", "outofmemoryerror")  # CUDA's message, torch's exception name
# torch's CPU allocator: "DefaultCPUAllocator: can't allocate memory: you tried to allocate 523973299600 bytes."
RAM_MARKERS = ("can't allocate memory", "cannot allocate memory")
TRIED_TO_ALLOCATE = re.compile(r"tried to allocate (\d+) bytes")
# A full disk as OSError's errno says it, or as safetensors (Rust: StorageFull, os error 28) and torch word it.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_MARKERS = ("no space left on device", "storagefull", "disk quota exceeded", "os error 28")


class EngineError(UserError):
    """An error of engine work whose message is the one sentence for the user: `explain` passes it on as it is."""


class DataError(EngineError, ValueError):
    """A dataset that cannot be used; the message is one sentence that says what to change."""


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def out_of_memory(error: BaseException | None = None, text: str = "") -> bool:
    """Whether an exception (torch's OutOfMemoryError, or one whose message says so) or a log says memory ran out."""
    if error is not None:
        if error.__class__.__name__ == "OutOfMemoryError":
            return True
        text = first_line(error)
    return any(marker in text.lower() for marker in OOM_MARKERS)


def disk_full(error: BaseException | None = None, text: str = "") -> bool:
    """Whether an exception (or one it was raised from), or a log, says the disk is full."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return True
        text += " " + str(error)
        error, seen = error.__cause__ or error.__context__, seen + 1
    return any(marker in text.lower() for marker in DISK_FULL_MARKERS)


def disk_full_sentence(folder: Path | str | None, job: str = "train") -> str:
    """What to do when the disk is full: free space where the job writes, and Resume (a run) or start it again."""
    where = f"in {folder}" if folder else "on the workspace's disk"
    again = "Resume" if job == "train" else "start it again"
    return f"Disk full: free space {where} and {again}."


def workspace_of(job_folder: Path) -> Path:
    """The workspace of a job in WORKSPACE/runs/NAME or WORKSPACE/exports/NAME; else the folder it is in."""
    parent = job_folder.parent
    return parent.parent if parent.name in ("runs", "exports") else parent


def explain(error: BaseException, job: str = "train", folder: Path | None = None) -> str:
    """One readable sentence for a failed status (the traceback goes to the job's log).

    `job` (train, export, chat) picks the advice where memory ran out; `folder` (the job's) is named where the
    disk is full."""
    if isinstance(error, UserError):  # EngineError and its children, ConfigError: already the sentence
        return str(error)
    if disk_full(error):
        return disk_full_sentence(workspace_of(folder) if folder is not None else None, job)
    gpu, ram = OUT_OF_MEMORY.get(job, OUT_OF_MEMORY["train"])
    if isinstance(error, MemoryError) or any(marker in first_line(error).lower() for marker in RAM_MARKERS):
        return with_request_size(ram, first_line(error))
    if out_of_memory(error):
        return gpu
    if isinstance(error, ModuleNotFoundError):
        return f"Missing package '{error.name}': run `pip install -r requirements.txt`."
    return f"{error.__class__.__name__}: {first_line(error)}".rstrip(": ")


def with_request_size(advice: str, text: str) -> str:
    """`advice`, naming the size of the allocation that failed where the message gives it."""
    found = TRIED_TO_ALLOCATE.search(text)
    if not found:
        return advice
    head, _, rest = advice.partition(": ")
    return f"{head}: one allocation asked for {int(found[1]) / 2**30:,.1f} GiB; {rest}"


def oom_kill_count(vmstat: str = "/proc/vmstat") -> int | None:
    """How many processes the kernel's out-of-memory killer has killed since boot (cgroup limits included), or
    None where the kernel does not say. The scheduler reads it when a job starts and when it died of SIGKILL."""
    try:
        with open(vmstat, encoding="ascii") as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def explain_exit(returncode: int | None, log_tail: str, job: str = "train", oom_killed: bool | None = None,
                 folder: Path | None = None) -> str:
    """One sentence on why an engine process ended without a final status.

    returncode: its exit status as Popen reports it (negative: the signal that ended it), None when unknown
    (the process was not started by this web process); log_tail: the last lines it printed; job: its kind;
    oom_killed: whether the kernel's out-of-memory kill count grew while it ran (None: not known); folder: the
    job's, named where the disk is full."""
    text = log_tail.lower()
    if disk_full(text=text):
        return disk_full_sentence(workspace_of(folder) if folder is not None else None, job)
    if any(marker in text for marker in RAM_MARKERS):
        return with_request_size(OUT_OF_MEMORY.get(job, OUT_OF_MEMORY["train"])[1], text)
    if out_of_memory(text=text):
        return OUT_OF_MEMORY.get(job, OUT_OF_MEMORY["train"])[0]
    if returncode in (-signal.SIGKILL, 128 + signal.SIGKILL) or text.rstrip().endswith("killed"):
        if oom_killed:
            ram = OUT_OF_MEMORY.get(job, OUT_OF_MEMORY["train"])[1]
            return f"The kernel's out-of-memory killer ended the engine process (SIGKILL); {ram[0].lower()}{ram[1:]}"
        if oom_killed is False:
            return ("The engine process was killed (SIGKILL) by hand or by another program, "
                    "not by the out-of-memory killer.")
        return "The engine process was killed (SIGKILL)."
    if returncode is not None and returncode < 0:
        return f"The engine process was ended by signal {_signal_name(-returncode)}."
    if returncode is not None:
        return f"The engine process exited with code {returncode} without a final status."
    return "The engine process is gone without a final status (killed, or the machine restarted)."


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
