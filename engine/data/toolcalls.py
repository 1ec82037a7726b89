"""Tool-calling conversations: read from the two shapes datasets have, and written for templates without tools.

Read (`calls_from_sharegpt`, `calls_from_openai`, `parse_tools`, `link_tool_results`) into the messages
transformers passes to chat templates:
- LLaMA-Factory sharegpt: a `function_call` turn whose value is JSON `{"name": ..., "arguments": {...}}` (or a
  list of them), an `observation` turn holding the tool's result, and a `tools` column holding a JSON string or
  a list of function schemas;
- OpenAI messages: an assistant turn with `tool_calls` (`[{"id", "type": "function", "function": {"name",
  "arguments"}}]`, arguments a JSON string or an object), `tool` turns with `tool_call_id`, a `tools` list.
An assistant tool call becomes `{"role": "assistant", "content": TEXT, "tool_calls": [{"id", "type": "function",
"function": {"name", "arguments": {...}}}]}`, a result `{"role": "tool", "content": TEXT, "tool_call_id", "name"}`,
and each tool `{"type": "function", "function": SCHEMA}`. Calls without an id get `call00001`-style ids (nine
letters and digits, which Mistral's template demands) and each result the id of the call it answers, in order.

Fitted (`fit_tool_calls`) to a template that renders calls but demands its own shape of them: arguments as a JSON
string (DeepSeek's templates add them to text), ids of nine letters and digits (Mistral's).

Read back from a generated reply (`calls_in_reply`), in the syntax the template or the fallback writes calls in.

Written (`plain_tool_messages`) for a template that cannot render tool calls (no `tool_calls` in it), the one
fallback: the tool list is added to the system prompt between `<tools></tools>`, one JSON schema a line; each
call is the assistant's text followed by `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>` (one
block per call, on its own line); the results of one step are a user turn, each as
`<tool_response>\\nRESULT\\n</tool_response>`. The same conventions as Qwen2.5's and Hermes' own templates.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine.sentences import said

Messages = list[dict[str, Any]]
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
RESPONSE_OPEN, RESPONSE_CLOSE = "<tool_response>", "</tool_response>"
TOOLS_INTRO = "You can call these tools (one JSON schema a line):"
TOOLS_HOW = (f'To call a tool, answer with {CALL_OPEN}\n{{"name": TOOL, "arguments": {{...}}}}\n{CALL_CLOSE}; '
             f"its result comes back as {RESPONSE_OPEN}\nRESULT\n{RESPONSE_CLOSE}.")


class ToolDataError(ValueError):
    """A tool field that cannot be read; the caller adds the file name and row number (`problem`: a keyed
    Sentence, which the row's sentence words in the visitor's language)."""

    def __init__(self, field_name: str, problem: str):
        self.field_name, self.problem = field_name, problem
        super().__init__(f"field '{field_name}' {problem}")


# ---------------------------------------------------------------------------------------------- reading


def parse_tools(value: Any, where: str = "tools") -> list[dict]:
    """A tools column (a JSON string or a list, of bare function schemas or {"type": "function", ...})."""
    value = _json(value, where) if isinstance(value, str) else value
    if value is None or value == "":
        return []
    if not isinstance(value, list) or not all(isinstance(tool, dict) for tool in value):
        raise ToolDataError(where, said("engine.tool.not_schemas"))
    tools = []
    for index, tool in enumerate(value):
        schema = tool.get("function", tool) if tool.get("type", "function") == "function" else tool
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str) or not schema["name"]:
            raise ToolDataError(f"{where}[{index}]", said("engine.tool.no_name"))
        tools.append({"type": "function", "function": schema})
    return tools


def calls_from_sharegpt(value: Any, where: str) -> list[dict]:
    """The calls of a `function_call` turn: JSON {"name", "arguments"}, or a list of them."""
    value = _json(value, where) if isinstance(value, str) else value
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ToolDataError(where, said("engine.tool.empty_call"))
    return [_call(item, f"{where}[{index}]" if isinstance(value, list) else where) for index, item in enumerate(items)]


def calls_from_openai(value: Any, where: str) -> list[dict]:
    """An assistant turn's `tool_calls` (or legacy `function_call` object)."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ToolDataError(where, said("engine.tool.empty_calls"))
    return [_call(item, f"{where}[{index}]") for index, item in enumerate(items)]


def _call(item: Any, where: str) -> dict:
    if not isinstance(item, dict):
        raise ToolDataError(where, said("engine.tool.not_a_call"))
    function = item.get("function", item)
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ToolDataError(where, said("engine.tool.no_function"))
    arguments = function.get("arguments", function.get("parameters", {}))
    if isinstance(arguments, str):
        arguments = _json(arguments, f"{where}.arguments") if arguments.strip() else {}
    if not isinstance(arguments, dict):
        raise ToolDataError(f"{where}.arguments", said("engine.tool.bad_arguments"))
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if item.get("id"):
        call["id"] = str(item["id"])
    return call


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ToolDataError(where, said("engine.tool.bad_json", reason=error.msg, column=error.colno)) from None


def link_tool_results(messages: Messages) -> Messages:
    """Every call with an id, every result with the id (and name) of the call it answers, in order."""
    out, pending, counter = [], [], 0
    for message in messages:
        if message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                counter += 1
                calls.append({"id": call.get("id") or f"call{counter:05d}", **call})
            message = {**message, "tool_calls": calls}
            pending = list(calls)
        elif message["role"] == "tool":
            answered = pending.pop(0) if pending else None
            if answered is not None:
                message = {"tool_call_id": answered["id"], "name": answered["function"]["name"], **message}
        out.append(message)
    return out


def fit_tool_calls(messages: Messages, *, string_arguments: bool, nine_character_ids: bool) -> Messages:
    """Tool calls as a template that renders them needs them: arguments as a JSON string where it concatenates
    them (DeepSeek's), ids of nine letters and digits where it demands them (Mistral's), each result given the
    new id of the call it answers. Other templates get the messages as they are."""
    if not (string_arguments or nine_character_ids):
        return messages
    ids: dict[str, str] = {}
    out = []
    for message in messages:
        if message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = dict(call["function"])
                if string_arguments and not isinstance(function.get("arguments"), str):
                    function["arguments"] = json.dumps(function.get("arguments", {}), ensure_ascii=False)
                call = {**call, "function": function}
                if nine_character_ids and "id" in call:
                    call["id"] = ids.setdefault(call["id"], _nine_characters(call["id"], len(ids) + 1))
                calls.append(call)
            message = {**message, "tool_calls": calls}
        elif nine_character_ids and message.get("tool_call_id") in ids:
            message = {**message, "tool_call_id": ids[message["tool_call_id"]]}
        out.append(message)
    return out


def _nine_characters(call_id: str, number: int) -> str:
    return call_id if re.fullmatch(r"[A-Za-z0-9]{9}", call_id) else f"call{number:05d}"


def has_tool_turns(messages: Messages) -> bool:
    return any(message.get("tool_calls") or message["role"] == "tool" for message in messages)


# ---------------------------------------------------------------------------------------------- fallback


def plain_tool_messages(messages: Messages, tools: list[dict] | None) -> Messages:
    """The conversation with tools, calls and results written as text, for a template without tool support."""
    out: Messages = []
    if tools:
        listing = "\n".join(json.dumps(tool["function"], ensure_ascii=False) for tool in tools)
        text = f"{TOOLS_INTRO}\n<tools>\n{listing}\n</tools>\n{TOOLS_HOW}"
        if messages and messages[0]["role"] == "system":
            text = messages[0]["content"] + "\n\n" + text
            messages = messages[1:]
        out.append({"role": "system", "content": text})
    for message in messages:
        if message["role"] == "tool":
            result = f"{RESPONSE_OPEN}\n{message['content']}\n{RESPONSE_CLOSE}"
            if out and out[-1].get("tool_result"):
                out[-1] = {**out[-1], "content": out[-1]["content"] + "\n" + result}
            else:
                out.append({"role": "user", "content": result, "tool_result": True})
        elif message.get("tool_calls"):
            blocks = [call_text(call) for call in message["tool_calls"]]
            text = "\n".join(([message["content"]] if message.get("content") else []) + blocks)
            out.append({key: value for key, value in message.items() if key != "tool_calls"} | {"content": text})
        else:
            out.append(message)
    return [{key: value for key, value in message.items() if key != "tool_result"} for message in out]


def call_text(call: dict) -> str:
    function = call["function"]
    body = json.dumps({"name": function["name"], "arguments": function["arguments"]}, ensure_ascii=False)
    return f"{CALL_OPEN}\n{body}\n{CALL_CLOSE}"


# ---------------------------------------------------------------------------------------------- replies

CALL_BLOCK = re.compile(re.escape(CALL_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(CALL_CLOSE) + r"|\Z)", re.DOTALL)
MISTRAL_CALLS, PYTHON_TAG = "[TOOL_CALLS]", "<|python_tag|>"


def calls_in_reply(text: str) -> tuple[str, list[dict]]:
    """A generated reply read for tool calls: (the text beside the calls, the calls as chat messages hold them).

    The syntaxes the templates here write calls in are read: `<tool_call>` blocks (Qwen2.5, QwQ, Hermes-3 and the
    fallback; a last block the reply ends inside counts too), `[TOOL_CALLS][...]` (Mistral-Nemo), and a reply that
    is one JSON object with a name and parameters or arguments (Llama-3.1, after an optional <|python_tag|>). A
    reply with no call, or whose call is not readable JSON, is all text: it is shown as the model wrote it.
    """
    if CALL_OPEN in text:
        calls = _readable_calls(CALL_BLOCK.findall(text))
        return (text, []) if calls is None else (CALL_BLOCK.sub("", text).strip(), calls)
    before, marker, after = text.partition(MISTRAL_CALLS)
    if marker:
        calls = _readable_calls([after])
        return (text, []) if calls is None else (before.strip(), calls)
    calls = _whole_reply_call(text.strip().removeprefix(PYTHON_TAG).strip())
    return ("", calls) if calls else (text, [])


def _whole_reply_call(body: str) -> list[dict] | None:
    """Llama-3.1's syntax: the reply is one JSON object with a name and its parameters (or arguments)."""
    if not body.startswith("{"):
        return None
    try:
        value = json.loads(body)
    except json.JSONDecodeError:  # text that opens with a brace
        return None
    if not isinstance(value, dict) or "name" not in value or not {"parameters", "arguments"} & value.keys():
        return None
    return _readable_calls([body])


def _readable_calls(bodies: list[str]) -> list[dict] | None:
    """The calls written in `bodies` (JSON: one call or a list of them); None where one is not readable, since a
    reply that merely looks like a call is text."""
    try:
        return [call for body in bodies for call in calls_from_sharegpt(body, "reply")]
    except ToolDataError:
        return None


def call_signature(call: dict) -> str:
    """A call as people read it: `name({"argument": value})`."""
    function = call["function"]
    return f"{function['name']}({json.dumps(function['arguments'], ensure_ascii=False)})"

