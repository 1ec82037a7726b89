"""The Train tab built as the page builds it, for tests that call its handlers: handlers with several outputs
return {component: value} for the tab's components."""

from __future__ import annotations

import gradio as gr

from webui.context import AppContext
from webui.tabs.train.panels import TrainTab
from webui.tabs.train.tab import build_train_tab


def train_tab(ctx: AppContext) -> TrainTab:
    with gr.Blocks() as app:
        return build_train_tab(ctx, app)
