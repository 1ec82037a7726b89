"""The API's error bodies: every refusal and failure of the OpenAI-compatible server keeps OpenAI's shape
({"error": {"message", "type", "param", "code"}}) with its English sentence and a stable machine `code` from
engine.serve.protocol.CODES (never null); the Host guard in front of the server and of the page answers an API
client in that shape, and a browser at the page reads the refusal in its visitor's language. In-process: the
FastAPI app over a catalog and a stand-in session (nothing is loaded), through Starlette's TestClient."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from engine.serve.app import Backend, create_app
from engine.serve.catalog import single_model
from engine.serve.hosts import HOST_CODE, HostGuard
from engine.serve.protocol import CODES
from webui.i18n import scope_sentence

MODEL = "org/some-model"


class FailingSession:
    """A chat session whose model cannot be loaded (what the server answers when its work fails)."""

    def load(self, *_args: object) -> None:
        raise RuntimeError("the weights are damaged")


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(Backend(single_model(MODEL), FailingSession()), api_key="k"),
                      headers={"Authorization": "Bearer k"}, raise_server_exceptions=False)


def chat(**fields: object) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], **fields}


@pytest.mark.parametrize(("method", "path", "body", "status", "code", "param"), [
    ("post", "/v1/chat/completions", chat(model="nope"), 404, "model_not_found", None),
    ("post", "/v1/chat/completions", chat(n=2), 400, "unsupported_value", "n"),
    ("post", "/v1/chat/completions", chat(stop=["\n"]), 400, "unsupported_parameter", "stop"),
    ("post", "/v1/chat/completions", chat(tool_choice="required"), 400, "unsupported_value", "tool_choice"),
    ("post", "/v1/chat/completions", chat(messages=[]), 400, "invalid_request", None),
    ("post", "/v1/chat/completions", {"messages": []}, 400, "missing_required_parameter", "model"),
    ("post", "/v1/chat/completions", chat(temperature="hot"), 400, "invalid_value", "temperature"),
    # a setting the sampling refuses is named as the request spells it (it said max_new_tokens, param null)
    ("post", "/v1/chat/completions", chat(max_tokens=0), 400, "invalid_value", "max_tokens"),
    ("post", "/v1/chat/completions", chat(max_completion_tokens=0), 400, "invalid_value", "max_completion_tokens"),
    ("post", "/v1/chat/completions", chat(temperature=-1), 400, "invalid_value", "temperature"),
    ("post", "/v1/completions", {"model": MODEL, "prompt": "a", "top_p": 0}, 400, "invalid_value", "top_p"),
    ("post", "/v1/completions", {"model": MODEL, "prompt": ["a", "b"]}, 400, "unsupported_value", "prompt"),
    ("get", "/v1/nowhere", None, 404, "unknown_url", None),
    ("get", "/v1/chat/completions", None, 405, "method_not_allowed", None),
    ("post", "/v1/chat/completions", chat(), 500, "server_error", None),
])
def test_every_error_has_openais_shape_and_a_stable_code(client: TestClient, method: str, path: str, body: object,
                                                         status: int, code: str, param: str | None) -> None:
    answer = client.request(method.upper(), path, json=body)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["code"], error["param"]) == (code, param) and code in CODES
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    assert error["message"] and error["message"].isascii()  # the English sentence


def test_a_wrong_key_is_invalid_api_key(client: TestClient) -> None:
    answer = client.get("/v1/models", headers={"Authorization": "Bearer wrong"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"


def test_the_host_guard_answers_a_client_in_english_and_a_browser_in_its_language() -> None:
    guarded = TestClient(HostGuard(FastAPI(), word=scope_sentence))
    api = guarded.get("/", headers={"Host": "evil.example"})
    assert api.status_code == 403 and api.json()["error"]["code"] == HOST_CODE == "host_not_allowed"
    assert api.json()["error"]["message"] == ("This server answers only to the names it was started for, not "
                                              "evil.example: start it with --allow-host evil.example to reach it by "
                                              "that name.")
    browser = guarded.get("/", headers={"Host": "evil.example", "Accept": "text/html", "Accept-Language": "zh-CN"})
    assert browser.status_code == 403 and browser.headers["content-type"].startswith("text/plain")
    assert browser.text == ("本服务器只响应启动时指定的名称，不响应 evil.example：请用 --allow-host evil.example "
                            "启动它，才能通过该名称访问。")
    english = guarded.get("/", headers={"Host": "evil.example", "Accept": "text/html", "Accept-Language": "en"})
    assert english.text == api.json()["error"]["message"]
    bare = TestClient(HostGuard(FastAPI())).get("/", headers={"Host": "evil.example", "Accept": "text/html"})
    assert bare.json()["error"]["code"] == HOST_CODE  # the API server's guard: always the error body


def test_a_body_that_is_not_json_is_one_sentence(client: TestClient) -> None:
    """It said "0: jSON decode error." with param "0" (pydantic's location of the bad character)."""
    answer = client.post("/v1/chat/completions", content=b"not json", headers={"Content-Type": "application/json"})
    error = answer.json()["error"]
    assert answer.status_code == 400 and (error["code"], error["param"]) == ("invalid_request", None)
    assert error["message"] == "The body is not valid JSON: send a JSON object, as OpenAI's API takes."


def test_a_refused_setting_says_the_requests_name(client: TestClient) -> None:
    error = client.post("/v1/chat/completions", json=chat(max_tokens=0)).json()["error"]
    assert error["message"].startswith("max_tokens is 0: ") and "max_new_tokens" not in error["message"]

