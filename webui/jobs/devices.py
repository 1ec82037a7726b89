"""Which devices a job needs, which GPUs this machine has, and who holds what: the scheduler keeps one queue per
device set (webui.jobs.scheduler). No gradio, no torch: the GPUs are listed by nvidia-smi, never by torch in the
web process.

A job's device set comes from its config.yaml's `devices` (engine/config_distributed.py): `cpu` is the CPU, GPU
indices such as `0,1` are those GPUs, and `auto` (the default, and a job whose config has no `devices`, such as an
evaluation) is every GPU nvidia-smi lists, or the CPU on a machine without one. Jobs whose sets are disjoint run at
the same time; a job waits for the devices it needs, first in first out among jobs whose sets overlap (a job queued
later never overtakes an earlier one that needs one of its devices). On a CPU-only machine every job needs the CPU,
so they run one at a time, as they always have.

    DeviceBook.plan(holders, queued)  ->  the queued jobs that start now; .held (device -> job), .waits (job -> devices)
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.config_distributed import named_gpus
from engine.jobs.rundir import JobDir

log = logging.getLogger(__name__)

CPU = "CPU"
DEVICE_LANE = "device"  # the lane whose jobs share devices (engine.jobs.kinds: training, evaluation)
NVIDIA_SMI = ("nvidia-smi", "--query-gpu=index,name,memory.total,memory.used", "--format=csv")
COMPUTE_CAP = ("nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader")
SMI_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_total_mib: int | None  # None where nvidia-smi says [N/A]
    memory_used_mib: int | None

    @property
    def label(self) -> str:
        return gpu_label(self.index)


@dataclass(frozen=True)
class GpuList:
    """What nvidia-smi said: the GPUs found, and a sentence where it could not be asked (empty: CPU only)."""

    gpus: tuple[Gpu, ...] = ()
    problem: str = ""


def gpu_label(index: int | str) -> str:
    return f"GPU {index}"


def mib(value: str) -> int | None:
    """"81559 MiB" (or "81559") -> 81559; "[N/A]" (a memory nvidia-smi cannot report) -> None."""
    text = value.strip()
    return None if text.startswith("[") or text.upper().startswith("N/A") else int(float(text.split()[0]))


def parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    """The GPUs of `nvidia-smi --query-gpu=index,name,memory.total,memory.used --format=csv` (its header first)."""
    rows = [row for row in csv.reader(io.StringIO(text), skipinitialspace=True) if row]
    if rows and not rows[0][0].strip().isdigit():
        rows = rows[1:]  # index, name, memory.total [MiB], memory.used [MiB]
    return tuple(Gpu(int(row[0]), row[1].strip(), mib(row[2]), mib(row[3])) for row in rows)


def list_gpus(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> GpuList:
    """This machine's GPUs as nvidia-smi lists them; none where nvidia-smi is not installed (CPU only), and none
    with the reason where it fails (a driver that does not answer)."""
    if shutil.which(NVIDIA_SMI[0]) is None:
        return GpuList()
    try:
        done = run(list(NVIDIA_SMI), capture_output=True, text=True, timeout=SMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return GpuList(problem=f"nvidia-smi could not be run ({error}): the GPUs are not listed.")
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return GpuList(problem=f"nvidia-smi failed ({said[-1] if said else f'exit code {done.returncode}'}): "
                               "the GPUs are not listed.")
    try:
        return GpuList(parse_nvidia_smi(done.stdout))
    except (ValueError, IndexError) as error:
        return GpuList(problem=f"nvidia-smi's list could not be read ({error}): the GPUs are not listed.")


def gpu_bf16(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> bool | None:
    """Whether the first GPU (the one an export's engine process computes on) has bfloat16 in hardware, compute
    capability 8.0 or above (torch.cuda.is_bf16_supported(including_emulation=False) in the engine); None without
    a GPU; False where nvidia-smi cannot say (float16 runs on every GPU). engine.jobs.exports takes the answer."""
    if not list_gpus(run).gpus:
        return None
    try:
        done = run(list(COMPUTE_CAP), capture_output=True, text=True, timeout=SMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("nvidia-smi could not say the GPU's compute capability (%s): float16 is assumed", error)
        return False
    first = done.stdout.split()[:1] if done.returncode == 0 else []
    try:
        return bool(first) and float(first[0]) >= 8.0
    except ValueError:  # an older nvidia-smi that does not know compute_cap: [N/A] or an error line
        log.warning("nvidia-smi did not say the GPU's compute capability (%r): float16 is assumed", done.stdout[:80])
        return False


def device_set(devices: object, gpus: Callable[[], Iterable[int]]) -> frozenset[str]:
    """The devices a job with this `devices` value needs: {"CPU"}, {"GPU 0", "GPU 1"}, or for auto (or no value,
    or one the engine will refuse) every GPU `gpus()` lists (asked only then), the CPU where there is none."""
    named = named_gpus(str(devices or "auto"))
    if named is not None:
        return frozenset(gpu_label(index) for index in named) or frozenset({CPU})
    return frozenset(gpu_label(index) for index in gpus()) or frozenset({CPU})


def order(label: str) -> tuple[int, int]:
    """GPUs by index, the CPU after them."""
    return (1, 0) if label == CPU else (0, int(label.split()[-1]))


def describe(labels: Iterable[str]) -> str:
    return ", ".join(sorted(labels, key=order))


def raw_config(job: JobDir) -> dict:
    """A job's config.yaml as plain data; {} where it cannot be read (the engine says why when it starts)."""
    try:
        raw = yaml.safe_load(job.config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        log.info("%s: its config cannot be read here (%s): it is queued for every device", job.name, error)
        return {}
    return raw if isinstance(raw, dict) else {}


def configured_devices(job: JobDir) -> object:
    """The `devices` of a job's config.yaml; None where it has none or cannot be read."""
    return raw_config(job).get("devices")


def processes(job: JobDir) -> int:
    """How many processes a job's config asks for (distributed.nproc_per_node times nnodes; 1 where unsaid)."""
    distributed = raw_config(job).get("distributed")
    if not isinstance(distributed, dict):
        return 1
    try:
        return int(distributed.get("nproc_per_node") or 1) * int(distributed.get("nnodes") or 1)
    except (TypeError, ValueError):  # the engine's schema says why when it starts
        return 1


class DeviceBook:
    """The device set of every job of the device lane (read from its config.yaml, again when the file changes),
    which job holds which device, and what each queued job waits for."""

    def __init__(self, gpus: Callable[[], GpuList] | None = None):
        self._gpus = gpus  # None: list_gpus, looked up when first needed
        self._indices: tuple[int, ...] | None = None
        self._sets: dict[Path, tuple[float, frozenset[str]]] = {}
        self.held: dict[str, str] = {}  # device label -> the name of the job holding it
        self.waits: dict[Path, tuple[str, ...]] = {}  # queued job -> the devices it waits for

    def gpu_indices(self) -> tuple[int, ...]:
        """The GPUs that `auto` means, listed once (a machine's GPUs do not change while the server runs)."""
        if self._indices is None:
            found = (self._gpus or list_gpus)()
            if found.problem:
                log.warning("%s Runs with devices auto are queued for the CPU.", found.problem)
            self._indices = tuple(gpu.index for gpu in found.gpus)
        return self._indices

    def of(self, job: JobDir) -> frozenset[str]:
        try:
            mtime = job.config.stat().st_mtime
        except FileNotFoundError:
            mtime = -1.0
        cached = self._sets.get(job.path)
        if cached is None or cached[0] != mtime:
            devices = configured_devices(job) if mtime >= 0 else None
            cached = self._sets[job.path] = (mtime, device_set(devices, self.gpu_indices))
        return cached[1]

    def plan(self, holders: list[JobDir], queued: list[JobDir]) -> list[JobDir]:
        """The queued jobs (first queued first) that may start beside `holders`: each one whose devices are free
        and needed by no job queued before it; records who holds what and what each other queued job waits for."""
        self.held = {label: job.name for job in holders for label in self.of(job)}
        busy, start, waits = set(self.held), [], {}
        for job in queued:
            needs = self.of(job)
            if needs & busy:
                waits[job.path] = tuple(sorted(needs & busy, key=order))
            else:
                start.append(job)
            busy |= needs
        self.waits = waits
        live = {job.path for job in (*holders, *queued)}
        self._sets = {path: value for path, value in self._sets.items() if path in live}
        return start
