"""Issue 24 item 13: the server's memory grew about 0.55 MB a visit and was never given back. What a visit keeps
is Gradio's session (a copy of every component's config: 0.35 MiB for this page), held until the number of sessions
passes launch()'s state_session_capacity (10,000 by default). The page launches with a capacity of
SESSION_CAPACITY, so that however many visits come, the server keeps that many sessions at most; the per-visitor
dict of the trainable count (LatestRequests) is bounded the same way."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import gradio as gr
from gradio.state_holder import StateHolder

from webui.app import LAUNCH_LIMITS, SESSION_CAPACITY, build_app
from webui.components.latest import LatestRequests
from webui.context import AppContext

MIB = 2**20


def holder_of(app) -> StateHolder:
    app.state_session_capacity = LAUNCH_LIMITS["state_session_capacity"]  # what launch() sets before serving
    holder = StateHolder()
    holder.set_blocks(app)
    return holder


def test_a_visit_keeps_a_fraction_of_a_megabyte(tmp_path: Path):
    holder = holder_of(build_app(AppContext.create(tmp_path / "ws")))
    holder["visit-0"]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        holder["visit-1"]
        per_visit = tracemalloc.get_traced_memory()[0] - before  # what one visit keeps
    finally:
        tracemalloc.stop()
    print(f"one visit keeps {per_visit / MIB:.2f} MiB; at most {SESSION_CAPACITY} are kept")
    assert per_visit < 1 * MIB


def test_the_server_keeps_a_bounded_number_of_visits():
    with gr.Blocks() as app:  # the count does not depend on the page (the page's sessions are measured above)
        gr.Textbox()
    holder = holder_of(app)
    for visit in range(SESSION_CAPACITY + 20):  # more visits than the capacity
        holder[f"visit-{visit}"]
    assert len(holder.session_data) == len(holder.time_last_used) == SESSION_CAPACITY
    assert "visit-0" not in holder and f"visit-{SESSION_CAPACITY + 19}" in holder  # the oldest go first
    assert SESSION_CAPACITY <= 200  # at most 70 MiB of sessions for this page


def test_the_newest_request_of_each_visitor_is_kept_for_a_bounded_number_of_visitors():
    latest = LatestRequests(limit=3)
    newest = [latest.claim(f"visitor-{n}", "key") for n in range(10)]
    assert len(latest._latest) == 3 and newest[-1]() and not newest[0]()
