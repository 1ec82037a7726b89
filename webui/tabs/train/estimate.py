"""The Train tab's memory and time estimate before Start (issue 26 item 3): computed here, in the web process, from
the model's config.json and the form's RunConfig alone (engine.estimate: plain Python, no torch), with a verdict
against the memory this machine has free (RAM under the process's limits, or a GPU's free memory where
nvidia-smi reports one). Where the dataset's inspection has measured its token lengths (the cached answer, for one
dataset), the estimate takes the largest batch those rows make instead of rows of cutoff_len tokens."""

from __future__ import annotations

from typing import Any

import gradio as gr

from engine.config import ConfigError
from engine.estimate import memory, room, timing
from engine.model.config_json import ModelFileError
from webui.context import AppContext
from webui.forms.models import model_config_json
from webui.i18n import message, words
from webui.jobs.paths import PathError
from webui.tabs.train.data import cached_lengths
from webui.tabs.train.handlers import NEW_RUN, Form


def size(value: float) -> str:
    """"0.62 GiB", "12.3 GiB", "37 MiB": precise enough that the parts add up to the total as shown."""
    if value < memory.GIB / 10:
        return f"{value / memory.MIB:.0f} MiB"
    return f"{value / memory.GIB:.2f} GiB" if value < 10 * memory.GIB else f"{value / memory.GIB:.1f} GiB"


def estimate_text(ctx: AppContext, request: gr.Request | None, *args: Any) -> str:
    """The step's peak memory by part with the verdict, the rows it counts where the inspection measured them, and
    the time; "" where the form is not a valid config yet (the config preview says why) or config.json is not at
    hand or lacks the sizes."""
    form = Form.parse(args)
    if not form.model.strip():
        return ""
    try:
        config = form.config(ctx, ctx.runs.runs_dir / NEW_RUN)
        found = model_config_json(form.model.strip(), ctx.local_model_dir(form.model.strip()))
    except (ConfigError, PathError, ModelFileError):
        return ""  # the config preview and the model summary say what is wrong
    if found is None:
        return ""
    gpu = room.gpu_free()
    device = "gpu" if gpu is not None else "cpu"
    lengths = cached_lengths(ctx, form.model.strip(), form.dataset, form.data_format, config.train.cutoff_len,
                             config.data.overlength, config.data.replace, config.data.columns
                             ) if len(form.datasets) == 1 else None
    step = memory.estimate(config, found, device, lengths)
    if step is None:
        return ""
    free = gpu if gpu is not None else room.memory_room()[0]
    say = words(request)
    parts = say("engine.log.comma", first="", then="").join(  # every part the total counts, so that they add up
        f"{say(memory.PART_KEYS[name])} {size(value)}" for name, value in step.parts().items() if value >= memory.MIB)
    lines = [say("msg.estimate", total=size(step.total), device=say(f"estimate.{device}"), parts=parts,
                 free=size(free), verdict=say(f"estimate.{memory.verdict(step.total, free)}"))]
    if lengths:
        lines.append(say("msg.estimate_rows", rows=len(lengths), longest=step.longest))
    lines.append(time_line(ctx, request, config, memory.text_config(found)))
    return "  \n".join(lines)


def time_line(ctx: AppContext, request: gr.Request | None, config: Any, found: dict[str, Any]) -> str:
    """The run's time from a finished run's rate, converted through the FLOPs per token of its stage and method
    (engine/estimate/timing.py: a pair trains two sequences, DPO and KTO a reference forward too)."""
    measured = timing.measured_rate(ctx.runs.runs_dir, config.train.stage, config.method.name)
    if measured is None:
        return message(request, "msg.estimate_no_rate")
    flops, run = measured
    answer = timing.seconds(config, found, flops)
    if answer is None:  # trained by epochs: the rows are counted when the run starts
        rate = timing.rate_at(config, timing.matmul_params(found) or 1, flops)
        return message(request, "msg.estimate_rate", rate=f"{rate:,.0f}", run=run)
    rate, seconds = answer
    return message(request, "msg.estimate_time", time=timing.clock(seconds), rate=f"{rate:,.0f}", run=run,
                   tokens=f"{timing.tokens_to_train(config):,}")
