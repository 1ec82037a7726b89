"""A config whose `devices` names GPUs the process does not see is refused with one sentence, never trained on the
CPU instead (a README reader on a laptop who copies `devices: 0,1` once got a silent CPU run). The page refuses
such a run at Start, from nvidia-smi's list (the Devices panel's), instead of starting a process that fails with
that sentence (newuser5: on a CPU-only machine, Devices "0,1" was started, named by date, and failed)."""

from __future__ import annotations

import pytest

from engine.config import parse_config
from engine.train.launch import LaunchError, check_devices
from webui.forms import prestart
from webui.forms.prestart import StartRefusedError, check_gpus, check_start
from webui.jobs.devices import Gpu, GpuList


def config(devices: str):
    return parse_config({"model": {"name_or_path": "org/model"}, "method": {"name": "lora"},
                         "data": {"path": "org/data"}, "devices": devices, "output_dir": "out"})


@pytest.mark.parametrize("devices,seen", [("0", 0), ("0,1", 0), ("0,1", 1)])
def test_named_gpus_that_are_not_there_are_refused(devices: str, seen: int) -> None:
    with pytest.raises(LaunchError) as caught:
        check_devices(config(devices), gpus_seen=seen)
    message = str(caught.value)
    assert message.startswith(f"devices {devices} names GPU(s)") and message.count(". ") == 0, message


@pytest.mark.parametrize("devices,seen", [("cpu", 0), ("auto", 0), ("0", 1), ("0,1", 2), ("1", 1)])
def test_devices_that_are_there_pass(devices: str, seen: int) -> None:
    check_devices(config(devices), gpus_seen=seen)


def listing(*indices: int, problem: str = ""):
    asked = []

    def listed() -> GpuList:
        asked.append(True)
        return GpuList(tuple(Gpu(index, "H100", 81559, 0) for index in indices), problem)
    return listed, asked


@pytest.mark.parametrize("devices,indices,key", [("0,1", (), "msg.devices_no_gpu"), ("0", (), "msg.devices_no_gpu"),
                                                 ("0,1", (0,), "msg.devices_not_listed"),
                                                 ("1", (0, 2), "msg.devices_not_listed")])
def test_start_refuses_gpus_that_nvidia_smi_does_not_list(devices: str, indices: tuple[int, ...], key: str) -> None:
    listed, _ = listing(*indices)
    with pytest.raises(StartRefusedError) as caught:
        check_gpus(config(devices), listed)
    assert caught.value.key == key and caught.value.values["devices"] == devices
    if indices:
        assert caught.value.values["listed"] == ", ".join(map(str, indices))


@pytest.mark.parametrize("devices,indices,problem", [("0,1", (0, 1), ""), ("2", (0, 1, 2), ""),
                                                     ("0,1", (), "nvidia-smi failed (no driver): not listed.")])
def test_start_passes_listed_gpus_and_an_unanswered_list(devices: str, indices: tuple[int, ...], problem: str) -> None:
    check_gpus(config(devices), listing(*indices, problem=problem)[0])


@pytest.mark.parametrize("devices", ["cpu", "auto"])
def test_cpu_and_auto_do_not_ask_nvidia_smi(devices: str) -> None:
    listed, asked = listing()
    check_gpus(config(devices), listed)
    assert not asked


def test_check_start_asks_before_the_model_and_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the Train tab's Start and the Runs tab's Run again call: the GPUs are judged first (a hub model that
    cannot be reached offline would be refused next)."""
    monkeypatch.setattr(prestart, "list_gpus", listing()[0])
    with pytest.raises(StartRefusedError) as caught:
        check_start(config("0,1"), cache=None, local_model=None)  # type: ignore[arg-type]
    assert caught.value.key == "msg.devices_no_gpu"
