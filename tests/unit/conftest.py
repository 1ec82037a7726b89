"""tests/unit: the fast loop. Nothing here starts a process (engine commands, the page, a browser): a test that
tries fails at once, so the folder stays under a minute (`bash tests/run.sh tests/unit`)."""

from __future__ import annotations

import subprocess

import pytest


class ProcessStarted(AssertionError):
    """A unit test started a process: it belongs in tests/engine, tests/webui or tests/faults."""


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **_kwargs: object) -> None:
        raise ProcessStarted(f"tests/unit starts no process; this one ran {args[1] if len(args) > 1 else args}")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(autouse=True)
def no_gpu_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with nvidia-smi lists its GPUs by running it (webui.jobs.devices): here the machine has none, so
    that the page's tab and the scheduler start no process wherever the suite runs."""
    from webui.jobs import devices

    monkeypatch.setattr(devices, "list_gpus", lambda *_args, **_kwargs: devices.GpuList())
