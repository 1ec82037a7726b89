"""webui.jobs.devices: the GPUs nvidia-smi lists (its output faked here: no process is started), a job's device set
from its config's `devices`, and the plan of one queue per device set (disjoint sets together, overlapping ones
first in first out)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from engine.jobs.rundir import RunDir
from webui.jobs import devices
from webui.jobs.devices import CPU, DeviceBook, Gpu, GpuList, device_set, list_gpus, parse_nvidia_smi

SMI = """index, name, memory.total [MiB], memory.used [MiB]
0, NVIDIA H100 80GB HBM3, 81559 MiB, 1 MiB
1, NVIDIA H100 80GB HBM3, 81559 MiB, 40321 MiB
"""


def test_nvidia_smis_csv_is_read(monkeypatch):
    assert parse_nvidia_smi(SMI) == (Gpu(0, "NVIDIA H100 80GB HBM3", 81559, 1),
                                     Gpu(1, "NVIDIA H100 80GB HBM3", 81559, 40321))
    assert parse_nvidia_smi("index, name, memory.total [MiB], memory.used [MiB]\n0, GH200, [N/A], [N/A]\n") == (
        Gpu(0, "GH200", None, None),)
    monkeypatch.setattr(devices.shutil, "which", lambda name: f"/usr/bin/{name}")
    asked = []

    def smi(argv, **_kwargs):
        asked.append(argv)
        return subprocess.CompletedProcess(argv, 0, stdout=SMI, stderr="")

    assert [gpu.label for gpu in list_gpus(smi).gpus] == ["GPU 0", "GPU 1"]
    assert asked == [["nvidia-smi", "--query-gpu=index,name,memory.total,memory.used", "--format=csv"]]
    failed = list_gpus(lambda argv, **_: subprocess.CompletedProcess(argv, 9, stdout="", stderr="NVML: no driver"))
    assert failed.gpus == () and "NVML: no driver" in failed.problem


def test_without_nvidia_smi_the_machine_is_cpu_only(monkeypatch):
    monkeypatch.setattr(devices.shutil, "which", lambda _name: None)
    assert list_gpus(lambda *_a, **_k: 1 / 0) == GpuList()  # nothing is run


def test_a_jobs_device_set_comes_from_devices():
    def unasked() -> tuple[int, ...]:
        raise AssertionError("the GPUs are listed only for auto")

    assert device_set("cpu", unasked) == {CPU}
    assert device_set("0, 2", unasked) == {"GPU 0", "GPU 2"}
    assert device_set("auto", lambda: (0, 1)) == {"GPU 0", "GPU 1"}
    assert device_set(None, tuple) == device_set("auto", tuple) == {CPU}  # no GPU (or no devices key): the CPU


def job(tmp_path: Path, name: str, devices_line: str | None) -> RunDir:
    run = RunDir(tmp_path / name)
    run.path.mkdir()
    run.config.write_text("model:\n  name_or_path: tiny\n" + (f"devices: '{devices_line}'\n" if devices_line else ""))
    return run


def test_disjoint_sets_start_together_and_overlapping_ones_wait_in_order(tmp_path):
    book = DeviceBook(lambda: GpuList((Gpu(0, "g", 1, 0), Gpu(1, "g", 1, 0), Gpu(2, "g", 1, 0))))
    on0, on1, on01, on2, on12, cpu = (job(tmp_path, n, d) for n, d in (
        ("on0", "0"), ("on1", "1"), ("on01", "0,1"), ("on2", "2"), ("on12", "1,2"), ("cpu", "cpu")))
    assert book.plan([], [on0, on1, cpu]) == [on0, on1, cpu] and book.waits == {}
    # on01 waits for GPUs 0 and 1; on2 needs only the free GPU 2 and starts beside on0 and on1
    assert book.plan([on0, on1, cpu], [on01, on2]) == [on2]
    assert book.held == {"GPU 0": "on0", "GPU 1": "on1", CPU: "cpu"}  # who holds what (the Devices panel shows it)
    assert book.waits == {on01.path: ("GPU 0", "GPU 1")}
    # on0 ended: on12 (queued after on01) does not overtake it for GPU 1, though nothing holds GPU 2 any more
    assert book.plan([on1], [on01, on12]) == []
    assert book.waits == {on01.path: ("GPU 1",), on12.path: ("GPU 1",)}
    assert book.plan([], [on01, on12]) == [on01]  # first in, first out


def test_on_a_cpu_only_machine_jobs_run_one_at_a_time(tmp_path):
    book = DeviceBook(lambda: GpuList())
    first, second, old = job(tmp_path, "first", "auto"), job(tmp_path, "second", "cpu"), job(tmp_path, "old", None)
    assert book.plan([], [first, second, old]) == [first]
    assert book.waits == {second.path: (CPU,), old.path: (CPU,)}


def test_a_changed_config_is_read_again(tmp_path):
    book = DeviceBook(lambda: GpuList((Gpu(0, "g", 1, 0), Gpu(1, "g", 1, 0))))
    run = job(tmp_path, "run", "0")
    assert book.of(run) == {"GPU 0"}
    run.config.write_text("devices: '1'\n")
    os.utime(run.config, (1, 1))
    assert book.of(run) == {"GPU 1"}


def test_a_run_of_several_processes_is_started_through_launch_train(tmp_path):
    """The page's queue starts a run of several processes as `train JOB/config.yaml` (which starts torchrun and
    waits for its ranks), one process as every job; each engine sees only the GPUs its devices name."""
    from engine.jobs.kinds import EVAL, TRAIN
    from webui.jobs.scheduler import Scheduler

    one, two = job(tmp_path, "one", "0"), job(tmp_path, "two", "cpu")
    with open(two.config, "a") as file:
        file.write("distributed:\n  nproc_per_node: 2\n  nnodes: 1\n")
    assert Scheduler.command(TRAIN, one) == ("run", str(one.path), "--kind", "train")
    assert Scheduler.command(TRAIN, two) == ("train", str(two.config))
    assert Scheduler.command(EVAL, two)[0] == "run"
    assert Scheduler._device_env(TRAIN, one) == {"CUDA_VISIBLE_DEVICES": "0"}
    assert Scheduler._device_env(TRAIN, two) == {"CUDA_VISIBLE_DEVICES": ""}
