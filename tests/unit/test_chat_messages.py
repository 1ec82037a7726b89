"""webui.jobs.chat_tools: how a finished reply is shown in the Chat tab's panes (pure functions, no worker)."""

from __future__ import annotations

from webui.i18n import words
from webui.jobs.chat_tools import EMPTY_REPLY, reply_messages, worker_turns


def test_an_empty_reply_is_shown_with_a_note_and_handed_back_as_it_was():
    """Issue 24, item 5: a reply the model ended at once was an empty grey bubble with no note."""
    say = words(None)
    (shown,) = reply_messages("", {}, say)
    assert shown["metadata"] == {"title": say("chat.empty_reply"), "id": EMPTY_REPLY}
    assert "ended its reply at once" in shown["metadata"]["title"]
    assert shown["content"] == [{"type": "text", "text": ""}]
    # the next turn shows the model the history it wrote: an empty assistant turn, not the note
    assert worker_turns([{**shown, "content": ""}]) == [{"role": "assistant", "content": ""}]
    (plain,) = reply_messages("Hello.", {}, say)
    assert "metadata" not in plain


def test_the_status_names_the_run_of_an_adapter_folder_inside_it(tmp_path):
    """A run's adapter/ folder typed into "or an adapter folder": the status line said "adapters: adapter"."""
    from webui.context import AppContext
    from webui.tabs import chat

    ctx = AppContext.create(tmp_path / "ws")
    folder, elsewhere = ctx.runs.runs_dir / "my-run" / "adapter", tmp_path / "elsewhere" / "my-adapter"
    for made in (folder, elsewhere):  # a folder that is gone is said to be deleted (tests/unit/test_chat_run_list.py)
        made.mkdir(parents=True)
    ctx.chat.loaded = {"model": "/models/base", "device": "cpu", "adapters": ["tuned"],
                       "sources": {"tuned": str(folder)}}
    assert chat.loaded_status(ctx, chat.ENGLISH).endswith("adapters: my-run")
    ctx.chat.loaded["sources"]["tuned"] = str(elsewhere)
    assert chat.loaded_status(ctx, chat.ENGLISH).endswith("adapters: my-adapter")
