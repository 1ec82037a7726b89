"""Tools in the Chat tab: the tool list a visitor offers, and tool calls and results as the Chatbot shows them.

A reply that calls tools is shown as its text (if it has any beside the calls), then one message a call,
`name({"argument": value})`, titled "Tool call"; a message sent as a tool result is shown titled "Tool result".
Both carry a metadata id (TOOL_CALL, TOOL_RESULT), so the history the page hands back becomes the worker's
messages exactly (`worker_turns`): an assistant turn with its tool_calls, and tool turns. The page refuses only
a tool list that is not JSON or not a list, in one sentence before anything is sent; the worker checks the
schemas themselves (engine.chat.session.check_tools).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from engine.errors import UserError

TOOL_CALL, TOOL_RESULT = "tool_call", "tool_result"
EMPTY_REPLY = "empty_reply"  # a reply the model ended at once: titled with a note, not an empty grey bubble


class ToolsError(UserError, ValueError):
    """A tool list or a shown tool call that cannot be read; the message is one sentence for the page."""


def offered_tools(text: str | None, say: Callable[..., str]) -> list[dict] | None:
    """The Tools (JSON) box: None when empty, else a list of objects (function schemas)."""
    if not (text or "").strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ToolsError(say("chat.msg.tools_not_json", problem=error.msg, line=error.lineno,
                             column=error.colno)) from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ToolsError(say("chat.msg.tools_not_list"))
    return value


def text_message(role: str, text: str, **metadata: str) -> dict[str, Any]:
    """A Chatbot message holding `text` exactly: as a text part, not a plain string, which the Chatbot would pass
    through inspect.cleandoc (stripping the reply's edges and indentation), so the next turn would show the model
    a history it did not write."""
    message: dict[str, Any] = {"role": role, "content": [{"type": "text", "text": text}]}
    if metadata:
        message["metadata"] = metadata
    return message


def call_line(call: dict[str, Any]) -> str:
    """A call as the page shows it: `name({"argument": value})`."""
    function = call.get("function", call)
    return f"{function['name']}({json.dumps(function.get('arguments') or {}, ensure_ascii=False)})"


def call_from_line(text: str) -> dict[str, Any]:
    """The call a shown `name({...})` line holds."""
    name, _, rest = text.partition("(")
    try:
        arguments = json.loads(rest.removesuffix(")")) if rest.endswith(")") else None
    except json.JSONDecodeError:
        arguments = None
    if not name or not isinstance(arguments, dict):
        raise ToolsError(f"A tool call in the conversation is not name({{...}}) any more ({text[:80]}): press Clear.")
    return {"name": name, "arguments": arguments}


def reply_messages(text: str, data: dict[str, Any], say: Callable[..., str]) -> list[dict[str, Any]]:
    """A finished reply as Chatbot messages: its text; or the text beside its calls (if any), then each call."""
    calls = data.get("tool_calls") or []
    if not calls and not text.strip():  # the history keeps the reply as it was (nothing); the title says so
        return [text_message("assistant", text, title=say("chat.empty_reply"), id=EMPTY_REPLY)]
    if not calls:
        return [text_message("assistant", text)]
    beside = [text_message("assistant", data["content"])] if data.get("content") else []
    return beside + [text_message("assistant", call_line(call), title=say("chat.tool_call"), id=TOOL_CALL)
                     for call in calls]


def result_message(text: str, say: Callable[..., str]) -> dict[str, Any]:
    """A message the visitor sends as a tool's result."""
    return text_message("user", text, title=say("chat.tool_result"), id=TOOL_RESULT)


def is_tool_call(message: dict[str, Any]) -> bool:
    return (message.get("metadata") or {}).get("id") == TOOL_CALL


def worker_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chatbot messages (content already a string) -> the worker's turns: each call joins the assistant turn just
    before it (its text, or the previous call), or opens one; a tool result is a tool turn."""
    out: list[dict[str, Any]] = []
    for message in messages:
        kind = (message.get("metadata") or {}).get("id") if isinstance(message, dict) else None
        if not isinstance(message, dict):
            out.append(message)  # for the worker to refuse in one sentence
        elif kind == TOOL_CALL:
            call = call_from_line(message["content"])
            if out and out[-1]["role"] == "assistant":
                out[-1]["tool_calls"] = [*out[-1].get("tool_calls", []), call]
            else:
                out.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif kind == TOOL_RESULT:
            out.append({"role": "tool", "content": message["content"]})
        else:
            out.append({"role": message.get("role"), "content": message.get("content")})
    return out
