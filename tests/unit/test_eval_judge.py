"""The optional judge (engine/eval/judge.py) against a fake OpenAI-compatible server on a thread of this process:
what a request carries (the rubric, the question, the reference, every answer, no model name), the seeded random
order, the scores read back to the right models whatever the order, and each failure as one sentence: a
malformed reply fails its row alone, a refused key or an unreachable endpoint ends the judging."""

from __future__ import annotations

import socket

import pytest

from engine.config_eval import DEFAULT_RUBRIC, JudgeConfig
from engine.eval.judge import Item, JudgeError, judge, parse_scores
from tests.fake_judge import answers_of, by_reference, completion, fake_judge

ROWS = [Item(n, f"Question {n}?", f"Right {n}.", {"base": f"Wrong {n}.", "tuned": f"Right {n}."})
        for n in range(1, 13)]


def test_requests_are_blind_in_seeded_random_order_and_scores_go_back_to_their_models(monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    with fake_judge() as (url, requests):
        config = JudgeConfig(base_url=url, model="grader", api_key_env="JUDGE_KEY", seed=3)
        verdicts = judge(config, ROWS, "test")
        again = judge(config, ROWS, "test")
    assert verdicts.error is None and verdicts.failed == 0
    assert verdicts.means() == {"base": 2.0, "tuned": 9.0}  # whatever letter each answer had
    first = requests[0]
    assert first["_path"] == "/v1/chat/completions" and first["_auth"] == "Bearer sk-test"
    assert first["model"] == "grader" and first["messages"][0] == {"role": "system", "content": DEFAULT_RUBRIC}
    text = first["messages"][-1]["content"]
    assert "Question 1?" in text and "Reference answer:\nRight 1." in text
    assert sorted(answers_of(first).values()) == ["Right 1.", "Wrong 1."]
    assert not any(name in str(request["messages"]) for request in requests for name in ("base", "tuned"))
    firsts = [answers_of(request)["A"].split()[0] for request in requests[:len(ROWS)]]
    assert {"Right", "Wrong"} == set(firsts)  # the order changes from row to row
    assert [line["order"] for line in verdicts.lines] == [line["order"] for line in again.lines]  # seeded
    assert all(line["reply"].startswith("Scores:") for line in verdicts.lines)  # kept as they came
    assert verdicts.lines[0]["scores"] == {"base": 2.0, "tuned": 9.0}


def test_a_malformed_reply_fails_its_row_alone():
    def sometimes_nonsense(request):
        if "Question 2?" in request["messages"][-1]["content"]:
            return 200, completion("Both answers are fine, I think.")
        if "Question 3?" in request["messages"][-1]["content"]:
            return 200, {"choices": []}
        if "Question 4?" in request["messages"][-1]["content"]:
            return 500, {"error": "overloaded"}
        return by_reference(request)

    with fake_judge(sometimes_nonsense) as (url, _):
        verdicts = judge(JudgeConfig(base_url=url, model="m"), ROWS[:5], "test")
    assert verdicts.error is None and verdicts.failed == 3
    assert verdicts.summary(5) == {"rows": 5, "scored": 2, "failed": 3, "error": None}
    errors = {line["row"]: line.get("error") for line in verdicts.lines}
    assert errors[1] is None and errors[5] is None
    assert "no JSON object" in errors[2] and "no chat completion" in errors[3] and "HTTP 500" in errors[4]
    assert verdicts.lines[1]["reply"] == "Both answers are fine, I think."


@pytest.mark.parametrize(("scores", "reason"), [('{"A": 11, "B": 3}', "answer A"), ('{"A": 4}', "answer B"),
                                                 ('{"A": true, "B": 3}', "answer A"), ("{A: 4, B: 3}", "no JSON")])
def test_scores_out_of_range_or_missing_are_malformed(scores, reason):
    with pytest.raises(Exception, match=reason):
        parse_scores(f"Here: {scores}", "AB")
    assert parse_scores('```json\n{"A": 7, "B": 3.5}\n```', "AB") == {"A": 7.0, "B": 3.5}


def test_a_refused_key_ends_the_judging_in_one_sentence(monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "sk-wrong")
    with fake_judge(lambda _request: (401, {"error": {"message": "bad key"}})) as (url, requests):
        verdicts = judge(JudgeConfig(base_url=url, model="m", api_key_env="JUDGE_KEY"), ROWS, "test")
        keyless = judge(JudgeConfig(base_url=url, model="m"), ROWS, "test")
    assert len(requests) == 2 and verdicts.means() == {} and requests[1]["_auth"] is None
    assert "refused the key in JUDGE_KEY (HTTP 401)" in verdicts.error and "\n" not in verdicts.error
    assert "refused a request without a key (HTTP 401)" in keyless.error and "api_key_env" in keyless.error


def test_an_unreachable_judge_and_an_unset_key_variable_are_one_sentence_each(monkeypatch):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    verdicts = judge(JudgeConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=5), ROWS, "test")
    assert "cannot be reached" in verdicts.error and "eval.judge.base_url" in verdicts.error
    assert len(verdicts.lines) == 1
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(JudgeError, match="NO_SUCH_KEY, which is not set"):
        judge(JudgeConfig(base_url="http://127.0.0.1:1/v1", model="m", api_key_env="NO_SUCH_KEY"), ROWS, "test")
