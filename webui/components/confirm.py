"""A question asked before an action that cannot be undone (deleting runs, cancelling a training).

The question is a hidden row (text, Yes, No) the server fills in the visitor's language, naming exactly
what will be removed; what it names is kept in a State, so Yes acts on that and not on whatever is
selected by the time the visitor answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.i18n import t


@dataclass
class Confirm:
    box: gr.Row
    question: gr.Markdown
    yes: gr.Button
    no: gr.Button
    pending: gr.State  # what the question is about (run names); None while no question is open

    @property
    def outputs(self) -> list[gr.components.Component]:
        """What ask() and closed() return, in order."""
        return [self.pending, self.box, self.question]


def build_confirm(elem_id: str, yes_label: str, no_label: str) -> Confirm:
    with gr.Row(visible=False, elem_id=elem_id, variant="panel") as box:
        question = gr.Markdown(elem_id=f"{elem_id}-question")
        yes = gr.Button(t(yes_label), variant="stop", elem_id=f"{elem_id}-yes", scale=0)
        no = gr.Button(t(no_label), elem_id=f"{elem_id}-no", scale=0)
    confirm = Confirm(box, question, yes, no, gr.State(None))
    confirm.no.click(closed, None, confirm.outputs, show_progress="hidden")
    return confirm


def ask(question: str, pending: Any) -> tuple[Any, Any, str]:
    """Show the row with `question`, remembering `pending` for the Yes handler."""
    return pending, gr.update(visible=True), question


def closed() -> tuple[None, Any, str]:
    """Hide the row and forget what it asked about."""
    return None, gr.update(visible=False), ""
