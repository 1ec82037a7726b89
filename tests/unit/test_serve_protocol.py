"""launch.py serve without a model: OpenAI's request bodies mapped to the chat session's messages, tools and
sampling settings, replies mapped back to OpenAI's shape, and which runs of a workspace are served under which
names (engine/serve/protocol.py, engine/serve/catalog.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.chat.plan import ChatError
from engine.chat.session import Generation, check_messages
from engine.jobs.rundir import RunDir
from engine.sampling import SamplingConfig
from engine.serve import protocol
from engine.serve.catalog import single_model, workspace_catalog
from engine.serve.protocol import ChatRequest, CompletionRequest, ServeError

USER = [{"role": "user", "content": "Hi"}]


def chat(**fields: object) -> ChatRequest:
    return ChatRequest.model_validate({"model": "m", "messages": USER, **fields})


def test_sampling_is_the_chats_settings_with_openais_names() -> None:
    assert chat().sampling() == SamplingConfig()  # left out: the chat's defaults, greedy
    assert chat(max_tokens=9, temperature=0.7, top_p=0.9, seed=3, top_k=5, repetition_penalty=1.1).sampling() == (
        SamplingConfig(max_new_tokens=9, temperature=0.7, top_p=0.9, seed=3, top_k=5, repetition_penalty=1.1))
    assert chat(max_tokens=9, max_completion_tokens=4).sampling().max_new_tokens == 4
    assert CompletionRequest(model="m", prompt=["Once"], max_tokens=3).text() == "Once"
    with pytest.raises(ChatError, match=r"^temperature is -1\.0: input should be greater than or equal to 0\.$"):
        chat(temperature=-1).sampling()


@pytest.mark.parametrize(("fields", "message"), [
    ({"n": 2}, "n is 2: this server writes one choice per request, so send n 1."),
    ({"stop": ["\n"]}, "stop is not supported: a reply ends at the model's end of turn or at max_tokens."),
    ({"presence_penalty": 0.5}, "presence_penalty is not supported: leave it out, or use repetition_penalty."),
])
def test_what_the_server_cannot_do_is_one_sentence(fields: dict, message: str) -> None:
    with pytest.raises(ServeError) as refused:
        chat(**fields).sampling()
    assert (str(refused.value), refused.value.status) == (message, 400)


def test_tools_are_offered_unless_tool_choice_is_none() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert chat(tools=tools).offered_tools() == tools == chat(tools=tools, tool_choice="auto").offered_tools()
    assert chat(tools=tools, tool_choice="none").offered_tools() is None and chat().offered_tools() is None
    with pytest.raises(ServeError, match='^tool_choice "required" is not supported'):
        chat(tools=tools, tool_choice="required").offered_tools()


def test_openai_messages_become_the_sessions_conversation() -> None:
    """developer is system, text parts are joined, an assistant's null content with tool calls (arguments a JSON
    string) and the tool's result are read as the chat reads them, linked by the call's id."""
    request = chat(messages=[
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Paris?"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21"},
    ])
    conversation = check_messages(request.conversation())
    assert [m["role"] for m in conversation] == ["system", "user", "assistant", "tool"]
    assert conversation[1]["content"] == "Weather in Paris?" and conversation[2]["content"] == ""
    assert conversation[2]["tool_calls"] == [{"id": "call_1", "type": "function",
                                              "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert conversation[3] == {"role": "tool", "content": "21", "tool_call_id": "call_1", "name": "get_weather"}
    with pytest.raises(ServeError, match="^Message 1 has content that is not text"):
        chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]).conversation()


def test_a_reply_in_openais_shape() -> None:
    options = SamplingConfig(max_new_tokens=5)
    text = Generation(text="Hello there", content="Hello there", new_tokens=3, prompt_tokens=7)
    body = protocol.chat_response("chatcmpl-1", "run", text, options)
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello there"}
    assert (body["object"], body["choices"][0]["finish_reason"]) == ("chat.completion", "stop")
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert protocol.finish_reason(Generation(new_tokens=5), options) == "length"

    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich"}}}
    calling = Generation(text="<tool_call>...", content="", tool_calls=[call], new_tokens=4)
    message = protocol.chat_response("chatcmpl-2", "run", calling, options)["choices"][0]["message"]
    (out,) = message["tool_calls"]
    assert message["content"] is None and out["id"].startswith("call_") and out["type"] == "function"
    assert out["function"] == {"name": "get_weather", "arguments": '{"city": "Zürich"}'}
    assert protocol.finish_reason(calling, options) == "tool_calls"
    (delta,) = protocol.call_deltas(calling)
    assert delta["tool_calls"][0]["index"] == 0 and delta["tool_calls"][0]["function"] == out["function"]
    assert protocol.sse({"a": 1}) == 'data: {"a": 1}\n\n' and protocol.sse("[DONE]") == "data: [DONE]\n\n"
    assert protocol.error_body("No.", 401, "invalid_api_key") == {"error": {
        "message": "No.", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}


def write_run(workspace: Path, name: str, state: str, base: str = "org/base", weights: bool = True,
              start: str | None = None) -> Path:
    run = RunDir(workspace / "runs" / name)
    run.path.mkdir(parents=True)
    model = {"name_or_path": base, **({"adapter": start} if start else {})}
    run.config.write_text(yaml.safe_dump({"model": model, "method": {"name": "lora"},
                                          "data": {"path": "rows.json"}, "output_dir": str(run.path)}))
    run.write_status(state)
    if weights:
        run.adapter.mkdir()
        (run.adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
        (run.adapter / "adapter_model.safetensors").write_bytes(b"")
    return run.path


def test_a_workspace_serves_its_finished_runs_and_their_base(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    write_run(workspace, "alpha", "completed")
    write_run(workspace, "beta", "completed")
    write_run(workspace, "failed-one", "failed")
    write_run(workspace, "running", "running")
    write_run(workspace, "no-weights", "completed", weights=False)
    write_run(tmp_path / "elsewhere", "outside", "completed")
    (workspace / "runs" / "linked").symlink_to(tmp_path / "elsewhere" / "runs" / "outside")
    catalog = workspace_catalog(workspace)
    assert list(catalog.models) == ["alpha", "beta", "org/base"]
    assert len(catalog.groups) == 1 and next(iter(catalog.groups.values())).adapters == {
        "alpha": str(workspace / "runs" / "alpha"), "beta": str(workspace / "runs" / "beta")}
    assert (catalog.find("beta").adapter, catalog.find("org/base").adapter) == ("beta", None)
    for name in ("linked", "failed-one", "../elsewhere/runs/outside", str(workspace / "runs" / "alpha")):
        with pytest.raises(ChatError, match=f"^The model '{name}' is not served here: use one of alpha, beta"):
            catalog.find(name)
    with pytest.raises(ChatError, match="holds no finished run to serve"):
        workspace_catalog(tmp_path / "empty")


def test_a_run_started_from_another_run_is_loaded_apart_from_it(tmp_path: Path) -> None:
    """SFT -> DPO from it: the DPO run loads over the base with the SFT run merged, which the chat refuses to load
    beside the SFT run itself; so each is a group of its own, and the base answers from neither merged start."""
    from engine.chat.plan import plan_load

    workspace = tmp_path / "workspace"
    sft = write_run(workspace, "sft", "completed")
    write_run(workspace, "dpo", "completed", start=str(sft))
    write_run(workspace, "dpo-2", "completed", start=str(sft))
    catalog = workspace_catalog(workspace)
    assert list(catalog.models) == ["dpo", "dpo-2", "sft", "org/base"]
    for name in catalog.models:  # each model's group is one load the chat accepts
        group = catalog.groups[catalog.find(name).group]
        plan = plan_load(group.model, dict(group.adapters))
        assert plan.start == (str(sft) if name.startswith("dpo") else None)
    assert catalog.find("dpo").group == catalog.find("dpo-2").group != catalog.find("sft").group
    assert catalog.find("org/base").group == catalog.find("sft").group

    only_dpo = tmp_path / "only"
    write_run(only_dpo, "dpo", "completed", start=str(sft))
    catalog = workspace_catalog(only_dpo)
    base = catalog.groups[catalog.find("org/base").group]
    assert base.adapters == {} and plan_load(base.model, {}).start is None  # the base itself, nothing merged


def test_a_model_folder_is_served_by_its_name(tmp_path: Path) -> None:
    export = tmp_path / "exports" / "merged" / "model"
    export.mkdir(parents=True)
    assert list(single_model(str(export)).models) == ["merged"]  # an export's model/ by the export's name
    assert list(single_model("org/some-model").models) == ["org/some-model"]
    assert list(single_model(str(export), "mine").models) == ["mine"]
