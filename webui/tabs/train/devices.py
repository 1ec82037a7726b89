"""The Train tab's Devices panel: the GPUs this machine has (nvidia-smi's list, webui.jobs.devices; never torch in
the web process) with the run that uses each, or the CPU; the devices and processes of the run, which are form
fields like the others (webui.forms.fields.DEVICE_FIELDS); and, where the run asks for several processes, the
command that starts it on each node: the engine's own `launch.py train --print-command` text
(engine.train.launch.printed), for the same config file as the preview's command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from engine.config import RunConfig
from engine.config_distributed import rendezvous_problem
from engine.train import launch
from webui.components.wiring import bind
from webui.context import AppContext
from webui.i18n import words
from webui.jobs import devices
from webui.jobs.devices import CPU, GpuList
from webui.tabs.train import handlers as h
from webui.tabs.train.panels import TrainTab


def gpu_text(found: GpuList, held: dict[str, str], say: Callable[..., str]) -> str:
    """The GPUs as a table (index, name, memory used of total, the run using it), or the sentence for the CPU."""
    if not found.gpus:
        lines = [found.problem, say("devices.cpu_only")]
        if CPU in held:
            lines.append(say("devices.cpu_in_use", run=held[CPU]))
        return " ".join(line for line in lines if line)
    rows = [f"| {say('devices.gpu')} | {say('devices.name')} | {say('devices.memory')} | {say('devices.in_use')} |",
            "|---|---|---|---|"]
    for gpu in found.gpus:
        memory = f"{gib(gpu.memory_used_mib)} / {gib(gpu.memory_total_mib)} GiB"
        user = held.get(gpu.label) or say("devices.free")
        rows.append(f"| {gpu.index} | {gpu.name.replace('|', '/')} | {memory} | {user} |")
    return "\n".join(rows)


def gib(value: int | None) -> str:
    return "?" if value is None else f"{value / 1024:.1f}"


def show_gpus(ctx: AppContext, request: gr.Request) -> str:
    """The panel's list, asked of nvidia-smi now (memory in use changes), with the runs the scheduler placed."""
    return gpu_text(devices.list_gpus(), dict(ctx.jobs.devices.held), words(request))


def node_commands(config: RunConfig, config_file: str) -> str:
    """What `python launch.py train CONFIG --print-command` prints for a run of several processes (torchrun's
    command on each node), "" for one process; for several machines without node 0's address, the sentence
    `launch.py train` itself refuses them with."""
    if config.distributed.world_size == 1:
        return ""
    return rendezvous_problem(config.distributed) or launch.printed(config, [config_file])


def preview(ctx: AppContext, tab: TrainTab, request: gr.Request | None, config_name: str, *args: Any
            ) -> dict[Any, Any]:
    """The config preview (handlers.preview; a refused form's comments in the visitor's language), and each node's
    command where the form asks for several processes (the config file is the preview's: the one its command
    names)."""
    shown, config, file = h.previewed(ctx, tab.config, config_name, *args, request=request)
    commands = node_commands(config, str(file)) if config is not None else ""
    return {**shown, tab.devices.commands: gr.update(value=commands, visible=bool(commands))}


def wire_devices(ctx: AppContext, tab: TrainTab) -> None:
    panel = tab.devices
    for event in (panel.panel.expand, panel.refresh.click):  # asked when the panel is opened, and on Refresh
        event(bind(show_gpus, ctx), None, panel.gpus, show_progress="hidden")
