"""The evaluation's metrics (engine/eval/metrics.py, engine/eval/toolcalls.py) against values worked out by hand on
fixed strings, English and Chinese. No model, no process."""

from __future__ import annotations

import math

import pytest

from engine.eval.metrics import (
    Generated,
    MixedTokenizer,
    bleu_tokenizer,
    changed_share,
    corpus_bleu,
    exact_match,
    rouge_l,
    sentence_bleu,
    text_metrics,
)
from engine.eval.toolcalls import score_calls, score_row


def test_exact_match_ignores_only_the_surrounding_whitespace() -> None:
    assert exact_match("  The cat.\n", "The cat.")
    assert not exact_match("the cat.", "The cat.")
    assert not exact_match("The cat", "The cat.")


def test_the_tokenizer_keeps_words_and_splits_chinese_into_characters() -> None:
    assert MixedTokenizer().tokenize("Hello, World! 我是小助手。ok 42") == [
        "hello", "world", "我", "是", "小", "助", "手", "ok", "42"]


def test_rouge_l_english_by_hand() -> None:
    # LCS "the cat sat" = 3 tokens: precision 3/3, recall 3/6, F = 2 * 1 * 0.5 / 1.5 = 2/3
    assert rouge_l("the cat sat", "The cat sat on the mat.") == pytest.approx(2 / 3)
    assert rouge_l("The cat sat on the mat.", "the cat sat on the mat") == pytest.approx(1.0)
    assert rouge_l("a dog", "the cat") == 0.0


def test_rouge_l_chinese_by_hand() -> None:
    # characters: reply 我是小助手 (5), reference 我是助手 (4), LCS 我是助手 = 4: P 4/5, R 4/4, F = 8/9
    assert rouge_l("我是小助手", "我是助手") == pytest.approx(8 / 9)
    # rouge-score's own tokenizer keeps only [a-z0-9]: Chinese would score 0 against itself
    from rouge_score import rouge_scorer

    assert rouge_scorer.RougeScorer(["rougeL"]).score("我是助手", "我是助手")["rougeL"].fmeasure == 0.0


def test_bleu_english_by_hand() -> None:
    # the cat sat on a mat / the cat sat on the mat: n-gram precisions 5/6, 3/5, 2/4, 1/3; same length: no penalty
    expected = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert sentence_bleu("the cat sat on a mat", "the cat sat on the mat") == pytest.approx(expected, abs=1e-6)
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100)
    assert bleu_tokenizer(["the cat sat"]) == "13a"


def test_bleu_chinese_is_segmented_by_character() -> None:
    # 我是小助手 against 我是小助手呀: every n-gram of the reply matches (5/5, 4/4, 3/3, 2/2); brevity 5 of 6 chars
    assert bleu_tokenizer(["我是小助手呀"]) == "zh"
    assert corpus_bleu(["我是小助手"], ["我是小助手呀"]) == pytest.approx(100 * math.exp(1 - 6 / 5), abs=1e-6)
    import sacrebleu  # unsegmented (13a), each sentence is one token and nothing matches

    assert sacrebleu.corpus_bleu(["我是小助手"], [["我是小助手呀"]], tokenize="13a").score == 0.0


def test_text_metrics_over_rows() -> None:
    generated = [Generated("The cat.", 3, True), Generated("dog", 24, False)]
    figures = text_metrics(generated, ["The cat.", "The cat sat."])
    assert figures["exact_match"] == 0.5
    assert figures["rouge_l"] == pytest.approx(0.5)  # 1.0 and 0.0
    assert figures["mean_new_tokens"] == 13.5 and figures["stopped_share"] == 0.5
    assert [row["exact_match"] for row in figures["per_row"]] == [1.0, 0.0]
    assert changed_share(["a", "b ", "c"], ["a", "b", "d"]) == pytest.approx(1 / 3)


WEATHER = [{"id": "call00001", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}]
TIME = [{"id": "call00001", "type": "function", "function": {"name": "get_time", "arguments": {"city": "Paris"}}}]
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>'
BROKEN = '<tool_call>\n{"name": "get_weather", "arguments": {city: Paris}}\n</tool_call>'


def test_a_memorised_call_scores_one_and_a_wrong_reference_zero() -> None:
    right = score_calls([score_row(CALL, WEATHER)])
    assert right["name_accuracy"] == right["arguments_exact"] == right["argument_keys"] == 1.0
    assert right["valid_json"] == 1.0 and right["invalid_json"] == 0
    wrong = score_calls([score_row(CALL, TIME)])
    assert wrong["name_accuracy"] == wrong["arguments_exact"] == wrong["argument_keys"] == 0.0
    other_unit = score_row(CALL.replace('"c"', '"f"'), WEATHER)
    assert other_unit.name and not other_unit.arguments and (other_unit.keys_equal, other_unit.keys_total) == (1, 2)
    as_llama = score_row('{"name": "get_weather", "parameters": {"unit": "c", "city": "Paris"}}', WEATHER)
    assert as_llama.valid and as_llama.arguments  # the whole-reply JSON syntax, keys in another order


def test_invalid_json_and_call_no_call_precision_recall() -> None:
    rows = [score_row(CALL, WEATHER),  # right
            score_row(BROKEN, WEATHER),  # tried, invalid JSON
            score_row("It is sunny in Paris.", WEATHER),  # missed the call
            score_row("Hello!", []),  # rightly no call
            score_row(CALL, [])]  # a call where none was asked for
    figures = score_calls(rows)
    assert figures["call_rows"] == 3 and figures["attempts"] == 3 and figures["invalid_json"] == 1
    assert figures["valid_json"] == pytest.approx(2 / 3)
    assert figures["name_accuracy"] == pytest.approx(1 / 3) and figures["arguments_exact"] == pytest.approx(1 / 3)
    assert figures["argument_keys"] == pytest.approx(2 / 6)
    assert figures["call_precision"] == pytest.approx(2 / 3) and figures["call_recall"] == pytest.approx(2 / 3)
    assert figures["no_call_precision"] == 0.5 and figures["no_call_recall"] == 0.5
    assert figures["per_tool"] == {"get_weather": {"rows": 3, "name_accuracy": pytest.approx(1 / 3),
                                                   "arguments_exact": pytest.approx(1 / 3),
                                                   "argument_keys": pytest.approx(1 / 3)}}
    assert score_calls([score_row("Hello!", [])])["name_accuracy"] is None  # nothing measured is not 0


def test_best_names_no_single_model_on_a_tie_as_the_page_stars_none() -> None:
    """newuser2: metrics.json's best.exact_match was "base" where every model scored 0.000 (ties went to the first
    model), while the page's table marks no star there. Now best lists the models with the best value (all of those
    tied for it) and names none where every model has the same value, as the page and a comparison's table do."""
    from engine.eval.job import best_per_figure

    results = {"base": {"exact_match": 0.0, "loss": 3.0, "bleu": 1.0},
               "lora": {"exact_match": 0.0, "loss": 2.0, "bleu": 4.0},
               "ia3": {"exact_match": 0.0, "loss": 2.5, "bleu": 4.0}}
    assert best_per_figure(results) == {"loss": ["lora"], "bleu": ["lora", "ia3"]}
    assert best_per_figure({"run": {"loss": 1.0}}) == {}
