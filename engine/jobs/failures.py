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
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UserError
from engine.sentences import Sentence, said

# What a job can do where memory ran out: job -> (out of GPU memory, out of RAM), one sentence each.
_MERGE = said("engine.oom", what=said("engine.oom.merging"), advice=said("engine.oom.merge"))
_CHAT = said("engine.oom", what=said("engine.oom.chatting"), advice=said("engine.oom.chat"))
OUT_OF_MEMORY = {
    "train": (said("engine.oom", what=said("engine.oom.gpu"), advice=said("engine.oom.train_gpu")),
              said("engine.oom", what=said("engine.oom.ram"), advice=said("engine.oom.train_ram"))),
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


def disk_full_sentence(folder: Path | str | None, job: str = "train") -> Sentence:
    """What to do when the disk is full: free space where the job writes, and Resume (a run) or start it again."""
    again = said("engine.again.resume") if job == "train" else said("engine.again.start")
    if folder:
        return said("engine.disk_full.folder", folder=str(folder), again=again)
    return said("engine.disk_full.workspace", again=again)


def workspace_of(job_folder: Path) -> Path:
    """The workspace of a job in WORKSPACE/runs/NAME or WORKSPACE/exports/NAME; else the folder it is in."""
    parent = job_folder.parent
    return parent.parent if parent.name in ("runs", "exports") else parent


def explain(error: BaseException, job: str = "train", folder: Path | None = None) -> Sentence:
    """One readable sentence for a failed status (the traceback goes to the job's log).

    `job` (train, export, chat) picks the advice where memory ran out; `folder` (the job's) is named where the
    disk is full."""
    if isinstance(error, UserError):  # EngineError and its children, ConfigError: already the sentence
        return error.sentence
    if disk_full(error):
        return disk_full_sentence(workspace_of(folder) if folder is not None else None, job)
    gpu, ram = OUT_OF_MEMORY.get(job, OUT_OF_MEMORY["train"])
    if isinstance(error, MemoryError) or any(marker in first_line(error).lower() for marker in RAM_MARKERS):
        return with_request_size(ram, first_line(error))
    if out_of_memory(error):
        return gpu
    if isinstance(error, ModuleNotFoundError):
        return said("engine.missing_package", package=error.name)
    return Sentence(f"{error.__class__.__name__}: {first_line(error)}".rstrip(": "))


def with_request_size(advice: Sentence, text: str) -> Sentence:
    """`advice` (an OUT_OF_MEMORY sentence), naming the size of the allocation that failed where the message
    gives it."""
    found = TRIED_TO_ALLOCATE.search(text)
    if not found:
        return advice
    return said("engine.oom.sized", what=advice.values["what"], gib=f"{int(found[1]) / 2**30:,.1f}",
                advice=advice.values["advice"])


def oom_kill_count(vmstat: str = "/proc/vmstat") -> int | None:
    """How many processes the kernel's out-of-memory killer has killed since boot (cgroup limits included), or
    None where the kernel does not say. Any process's OOM kill counts: `OomWitness` prefers narrower sources."""
    return _counter(vmstat, "oom_kill")


def _counter(path: str | Path, name: str) -> int | None:
    """The value of `name` in a kernel file of 'name value' lines (/proc/vmstat, memory.events), or None."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == name:
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def cgroup_oom_file(pid: int, proc: str = "/proc", cgroups: str = "/sys/fs/cgroup") -> Path | None:
    """The file where the kernel counts the OOM kills of `pid`'s own memory cgroup (v2 `memory.events`, v1
    `memory.oom_control`), or None where it is not readable. Read while the process lives (its /proc entry goes)."""
    try:
        lines = Path(proc, str(pid), "cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    found = []
    for line in lines:
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        relative = path.lstrip("/")
        if not relative:  # the root cgroup counts every process's kills: no narrower than /proc/vmstat
            continue
        if controllers == "":  # cgroup v2 (unified), mounted at the root or, on hybrid systems, under unified/
            found += [Path(cgroups, relative, "memory.events"), Path(cgroups, "unified", relative, "memory.events")]
        elif "memory" in controllers.split(","):
            found.append(Path(cgroups, "memory", relative, "memory.oom_control"))
    return next((file for file in found if _counter(file, "oom_kill") is not None), None)


UNSURE = "unsure"  # OomWitness.verdict: an OOM kill happened while the engine died, and nothing says whose
# A /dev/kmsg record: "PRIORITY,SEQUENCE,MICROSECONDS SINCE BOOT,FLAGS;MESSAGE" (continuation lines start with a space).
KMSG_RECORD = re.compile(r"^\d+,\d+,(\d+),[^;]*;(.*)$")
# The kernel's log line for an OOM kill: "Out of memory: Killed process 123 (python) ..." (also "Memory cgroup out
# of memory: ...") and "oom-kill:constraint=...,task=python,pid=123,uid=0".
KERNEL_OOM_LINE = re.compile(r"Killed process (\d+)|oom-kill:.*?\bpid=(\d+)")


def kernel_oom_pids(since_us: int = 0, kmsg: str = "/dev/kmsg", max_records: int = 100_000) -> set[int] | None:
    """The pids the kernel's log says its out-of-memory killer killed at or after `since_us` (CLOCK_MONOTONIC, in
    microseconds: the log's clock), or None where the log cannot be read (dmesg_restrict, a container). /dev/kmsg
    gives one record per read and does not block here; a plain file (a test's) is read whole."""
    try:
        fd = os.open(kmsg, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    chunks = []
    try:
        for _ in range(max_records):
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:  # the end of the log
                break
            except BrokenPipeError:  # records overwritten while reading: go on with the next one
                continue
            if not chunk:
                break
            chunks.append(chunk.decode("utf-8", errors="replace"))
    except OSError:
        return None
    finally:
        os.close(fd)
    killed = set()
    for line in "".join(chunks).splitlines():
        record = KMSG_RECORD.match(line)
        if record and int(record[1]) >= since_us:
            killed.update(int(a or b) for a, b in KERNEL_OOM_LINE.findall(record[2]))
    return killed


@dataclass
class OomWitness:
    """What says, after an engine process died of SIGKILL, whether the OOM killer killed it rather than a person
    or another program (an unrelated process's OOM kill at the same moment must not be blamed): taken at launch.

    In order, where readable: the kernel's log naming the killed pid; the kill count of the process's own memory
    cgroup; the machine-wide count (/proc/vmstat), which cannot tell whose kill it was."""

    pid: int
    started_us: int  # CLOCK_MONOTONIC when it started, in microseconds (the kernel log's clock)
    cgroup_file: Path | None
    cgroup_kills: int | None
    machine_kills: int | None

    @classmethod
    def start(cls, pid: int, proc: str = "/proc", cgroups: str = "/sys/fs/cgroup",
              vmstat: str = "/proc/vmstat") -> OomWitness:
        file = cgroup_oom_file(pid, proc, cgroups)
        started_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return cls(pid, started_us, file, _counter(file, "oom_kill") if file else None, oom_kill_count(vmstat))

    def verdict(self, kmsg: str = "/dev/kmsg", vmstat: str = "/proc/vmstat") -> bool | str | None:
        """True: the OOM killer killed it; False: it did not; UNSURE: some process's OOM kill happened meanwhile
        and nothing says whose; None: nothing can be read."""
        killed = kernel_oom_pids(self.started_us, kmsg)
        if killed is not None:
            return self.pid in killed
        if self.cgroup_file is not None and self.cgroup_kills is not None:
            now = _counter(self.cgroup_file, "oom_kill")
            if now is not None:
                return now > self.cgroup_kills
        now = oom_kill_count(vmstat)
        if None in (now, self.machine_kills):
            return None
        return UNSURE if now > self.machine_kills else False


def explain_exit(returncode: int | None, log_tail: str, job: str = "train", oom_killed: bool | str | None = None,
                 folder: Path | None = None) -> Sentence:
    """One sentence on why an engine process ended without a final status.

    returncode: its exit status as Popen reports it (negative: the signal that ended it), None when unknown
    (the process was not started by this web process); log_tail: the last lines it printed; job: its kind;
    oom_killed: OomWitness.verdict (True, False, UNSURE: an OOM kill happened but whose is not known, None: not
    known); folder: the
    job's, named where the disk is full."""
    text = log_tail.lower()
    if disk_full(text=text):
        return disk_full_sentence(workspace_of(folder) if folder is not None else None, job)
    if any(marker in text for marker in RAM_MARKERS):
        return with_request_size(OUT_OF_MEMORY.get(job, OUT_OF_MEMORY["train"])[1], text)
    if out_of_memory(text=text):
        return OUT_OF_MEMORY.get(job, OUT_OF_MEMORY["train"])[0]
    if returncode in (-signal.SIGKILL, 128 + signal.SIGKILL) or text.rstrip().endswith("killed"):
        ram = OUT_OF_MEMORY.get(job, OUT_OF_MEMORY["train"])[1]
        if oom_killed == UNSURE:
            return said("engine.died.oom_unsure", reason=ram.lower_first())
        if oom_killed:
            return said("engine.died.oom_killed", reason=ram.lower_first())
        if oom_killed is False:
            return said("engine.died.killed_by_hand")
        return said("engine.died.killed")
    if returncode is not None and returncode < 0:
        return said("engine.died.signal", signal=_signal_name(-returncode))
    if returncode is not None:
        return said("engine.died.exit_code", code=returncode)
    return said("engine.died.gone")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
