"""OpenAI's request and response bodies, mapped to the chat session's and back; plain pydantic, no model.

A chat request becomes the session's messages (engine/chat/session.py reads them: tool_calls with JSON-string
arguments, `tool` results linked to their calls), its tools (offered unless tool_choice is "none") and a
SamplingConfig (engine/sampling.py): max_tokens (or max_completion_tokens), temperature, top_p, seed, and the
extensions top_k and repetition_penalty. A setting left out takes the chat's own default, so temperature is 0
(greedy) unless a request asks for more, as in the page's chat. A reply becomes a chat.completion (or its
chunks), its tool calls in OpenAI's shape: {"id", "type": "function", "function": {"name", "arguments": JSON}}.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.chat.session import ChatError, Generation, check_params
from engine.sampling import SamplingConfig

# Every error body's `code`: stable machine codes a client may branch on (the message is an English sentence that
# may be reworded). OpenAI's own where it has one for the case (model_not_found, invalid_api_key, unsupported_value,
# unsupported_parameter, missing_required_parameter, invalid_value), with `param` naming the field.
CODES = {
    "model_not_found": "the model named is not served here (404)",
    "invalid_api_key": "the API key is missing or wrong (401)",
    "unsupported_parameter": "a setting this server does not support was sent (400, param: the setting)",
    "unsupported_value": "a setting holds a value this server cannot honour (400, param: the setting)",
    "missing_required_parameter": "the body lacks a field the endpoint needs (400, param: the field)",
    "invalid_value": "a field of the body has the wrong type or value (400, param: the field)",
    "invalid_request": "the conversation, tools or settings cannot be used as sent (400; the message says why)",
    "unknown_url": "no such endpoint (404)",
    "method_not_allowed": "the endpoint does not take this HTTP method (405)",
    "host_not_allowed": "the request's Host header names this server by a name it was not started for (403)",
    "server_error": "the server failed to answer (500; the message says why, the server's log has the traceback)",
}


class ServeError(ChatError):
    """A request refused with an HTTP status; the message is one sentence for the client, `code` one of CODES."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request", param: str | None = None):
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


class Request(BaseModel):
    """The settings both endpoints share; fields this server does not read (user, logprobs ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str
    stream: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None  # extensions, as vLLM takes them
    repetition_penalty: float | None = None
    seed: int | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None

    def sampling(self) -> SamplingConfig:
        """The SamplingConfig this request asks for; ServeError for what this server cannot do."""
        if self.n not in (None, 1):
            raise ServeError(f"n is {self.n}: this server writes one choice per request, so send n 1.",
                             code="unsupported_value", param="n")
        if self.stop:
            raise ServeError("stop is not supported: a reply ends at the model's end of turn or at max_tokens.",
                             code="unsupported_parameter", param="stop")
        for name in ("frequency_penalty", "presence_penalty"):
            if getattr(self, name):
                raise ServeError(f"{name} is not supported: leave it out, or use repetition_penalty.",
                                 code="unsupported_parameter", param=name)
        values: dict[str, Any] = {"max_new_tokens": self.longest(), "temperature": self.temperature,
                                  "top_p": self.top_p, "top_k": self.top_k,
                                  "repetition_penalty": self.repetition_penalty}
        if self.seed is not None:
            values["seed"] = self.seed
        for name, value in values.items():  # a refused setting is named as the request spells it
            try:
                check_params({name: value})
            except ChatError as error:
                asked = self.longest_name() if name == "max_new_tokens" else name
                raise ServeError(str(error).replace(name, asked, 1), code="invalid_value", param=asked) from None
        return check_params(values)

    def longest(self) -> int | None:
        return self.max_tokens

    def longest_name(self) -> str:
        """The request's field that longest() read (what the engine calls max_new_tokens)."""
        return "max_tokens"


class ChatRequest(Request):
    messages: list[dict[str, Any]]
    max_completion_tokens: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None

    def longest(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def longest_name(self) -> str:
        return "max_completion_tokens" if self.max_completion_tokens is not None else "max_tokens"

    def offered_tools(self) -> list[dict[str, Any]] | None:
        if self.tool_choice == "none":
            return None
        if self.tool_choice in (None, "auto"):
            return self.tools or None
        raise ServeError(f"tool_choice {json.dumps(self.tool_choice)} is not supported: use \"auto\" or \"none\".",
                         code="unsupported_value", param="tool_choice")

    def conversation(self) -> list[dict[str, Any]]:
        return [chat_message(message, number) for number, message in enumerate(self.messages, 1)]


class CompletionRequest(Request):
    prompt: str | list[str]

    def text(self) -> str:
        if isinstance(self.prompt, list):
            if len(self.prompt) != 1:
                raise ServeError("prompt must be one string (or a list of one): this server answers one prompt "
                                 "per request.", code="unsupported_value", param="prompt")
            return self.prompt[0]
        return self.prompt


def chat_message(message: dict[str, Any], number: int) -> dict[str, Any]:
    """An OpenAI message as the chat session reads it: developer is system, content text (null or a list of text
    parts in OpenAI's shape), tool_calls and tool_call_id kept."""
    out = dict(message)
    if out.get("role") == "developer":
        out["role"] = "system"
    content = out.get("content")
    if content is None:
        out["content"] = ""
    elif isinstance(content, list):
        if not all(isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
                   for part in content):
            raise ServeError(f"Message {number} has content that is not text: this server reads text parts only.",
                             code="unsupported_value", param="messages")
        out["content"] = "".join(part["text"] for part in content)
    return out


# ---------------------------------------------------------------------------------------------- responses


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def tool_calls_out(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The session's calls (arguments an object) in OpenAI's shape: an id each, arguments a JSON string."""
    return [{"id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}", "type": "function",
             "function": {"name": call["function"]["name"],
                          "arguments": json.dumps(call["function"]["arguments"], ensure_ascii=False)}}
            for call in calls]


def finish_reason(reply: Generation, options: SamplingConfig) -> str:
    if reply.tool_calls:
        return "tool_calls"
    return "length" if reply.new_tokens >= options.max_new_tokens else "stop"


def usage(reply: Generation) -> dict[str, int]:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.new_tokens,
            "total_tokens": reply.prompt_tokens + reply.new_tokens}


def assistant_message(reply: Generation) -> dict[str, Any]:
    if not reply.tool_calls:
        return {"role": "assistant", "content": reply.text}
    return {"role": "assistant", "content": reply.content or None, "tool_calls": tool_calls_out(reply.tool_calls)}


def chat_response(response_id: str, model: str, reply: Generation, options: SamplingConfig) -> dict[str, Any]:
    return {"id": response_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": assistant_message(reply), "logprobs": None,
                         "finish_reason": finish_reason(reply, options)}],
            "usage": usage(reply)}


def chat_chunk(response_id: str, model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": response_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def call_deltas(reply: Generation) -> list[dict[str, Any]]:
    """The deltas that end a streamed reply to a request that offered tools (held back until the end, since a
    call is read from the whole reply): the text beside the calls, then the calls."""
    deltas = [{"content": reply.content}] if reply.content else []
    if reply.tool_calls:
        calls = [{"index": index, **call} for index, call in enumerate(tool_calls_out(reply.tool_calls))]
        deltas.append({"tool_calls": calls})
    return deltas


def completion_response(response_id: str, model: str, reply: Generation, options: SamplingConfig) -> dict[str, Any]:
    return {"id": response_id, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": reply.text, "logprobs": None,
                         "finish_reason": finish_reason(reply, options)}],
            "usage": usage(reply)}


def completion_chunk(response_id: str, model: str, text: str, finish: str | None = None) -> dict[str, Any]:
    return {"id": response_id, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}


def model_list(names: dict[str, str]) -> dict[str, Any]:
    """GET /v1/models: name -> owner."""
    created = int(time.time())
    return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": owner}
                                       for name, owner in names.items()]}


def error_body(message: str, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error body: the English sentence, the type by status, the field and a stable `code` (CODES)."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": str(message), "type": kind, "param": param, "code": code}}


def sse(data: dict[str, Any] | str) -> str:
    """One server-sent event: `data: JSON` and a blank line ("[DONE]" ends a stream)."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"
