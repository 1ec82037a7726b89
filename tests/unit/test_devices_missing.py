"""A config whose `devices` names GPUs the process does not see is refused with one sentence, never trained on the
CPU instead (a README reader on a laptop who copies `devices: 0,1` once got a silent CPU run)."""

from __future__ import annotations

import pytest

from engine.config import parse_config
from engine.train.launch import LaunchError, check_devices


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
