"""The Chat tab's rating box: with the tuned and the base answer side by side, the visitor marks the better one
(or writes a better answer), and the pair is appended to a preference dataset file of the workspace
(webui/jobs/pairs.py: WORKSPACE/uploads/pairs/NAME.jsonl), which the Train tab lists with its count, ready for a
DPO or KTO run. The box says how many pairs the file holds after each rating."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine.errors import UserError
from webui.components.wiring import bind
from webui.context import AppContext
from webui.i18n import t, words
from webui.jobs.pairs import DEFAULT_NAME, rate


@dataclass
class RateBox:
    better_tuned: gr.Button  # answer 1 (the tuned model's) is better
    better_base: gr.Button  # answer 2 (the base model's) is better
    written: gr.Textbox  # a better answer the visitor writes
    save_written: gr.Button
    name: gr.Textbox  # the pairs file's name
    count: gr.Markdown  # "chat-pairs.jsonl now holds 3 pairs ..."


def build_rate_box() -> RateBox:
    with gr.Accordion(t("chat.rate"), open=True, elem_id="wb-rate-box"):
        with gr.Row():
            better_tuned = gr.Button(t("chat.better_tuned"), elem_id="wb-better-1", scale=1)
            better_base = gr.Button(t("chat.better_base"), elem_id="wb-better-2", scale=1)
            name = gr.Textbox(DEFAULT_NAME, label=t("chat.pairs_name"), elem_id="wb-pairs-name", scale=1)
        with gr.Row():
            written = gr.Textbox(label=t("chat.better_written"), lines=2, elem_id="wb-better-text", scale=4)
            save_written = gr.Button(t("chat.better_save"), elem_id="wb-better-save", scale=1)
        count = gr.Markdown(elem_id="wb-pairs-count")
    return RateBox(better_tuned, better_base, written, save_written, name, count)


def rated(ctx: AppContext, better: int | None, name: str, tuned: list, base: list, written: str, system: str,
          request: gr.Request | None = None) -> tuple[Any, Any]:
    """Append the pair; (the count line, the written answer emptied), or a toast and nothing changed."""
    say = words(request)
    try:
        path, count = rate(ctx.uploads, name, tuned or [], base or [], better, written, system)
    except UserError as error:  # PairError, PathError: one sentence, in the visitor's language where it is keyed
        gr.Warning(say.sentence(error))
        return gr.skip(), gr.skip()
    return say("chat.pairs_count", name=path.name, n=count), ""


def rater(better: int | None) -> Any:
    """The click handler of one button (a named parameter, not functools.partial: gradio must see `request`)."""

    def handler(ctx: AppContext, name: str, tuned: list, base: list, written: str, system: str,
                request: gr.Request) -> tuple[Any, Any]:
        return rated(ctx, better, name, tuned, base, written, system, request)

    return handler


def wire_rate_box(ctx: AppContext, box: RateBox, tuned: gr.Chatbot, base: gr.Chatbot, system: gr.Textbox) -> None:
    """Each button appends its pair after the reply being streamed has ended (the chat's concurrency group)."""
    inputs = [box.name, tuned, base, box.written, system]
    for button, better in ((box.better_tuned, 1), (box.better_base, 2), (box.save_written, None)):
        button.click(bind(rater(better), ctx), inputs, [box.count, box.written], concurrency_limit=1,
                     concurrency_id="chat")
