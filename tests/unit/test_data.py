"""engine.data.pipeline: every file format reads to the same messages, prompts are masked token by token, cutoff
counts add up, every bad file gets its one sentence, splits are seeded, and the inspect-data CLI works."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.config import DataConfig, RunConfig
from engine.data.formats import detect_format
from engine.data.masking import render_with_spans
from engine.data.pipeline import IGNORE_INDEX, build_splits, inspect_dataset, load_rows, tokenize_rows
from engine.data.readers import read_records
from engine.data.tokens import CHATML_EOS_TEMPLATE, CHATML_TEMPLATE, ensure_chat_template, ensure_pad_token
from engine.jobs.failures import DataError

ROOT = Path(__file__).resolve().parents[2]
PROMPT_2 = "What is the capital\n\nof France?"
PAIRS = [("Who are you?", "I am a helpful assistant."), (PROMPT_2, "Paris.")]


def chat(
    user: str, reply: str, role: str = "role", content: str = "content", names: tuple[str, str] = ("user", "assistant")
) -> list[dict[str, str]]:
    """One user turn and one reply, with the role/content keys and role names of a given format."""
    return [{role: names[0], content: user}, {role: names[1], content: reply}]


EXPECTED = [{"messages": chat(user, reply)} for user, reply in PAIRS]
SAME_CONTENT: dict[str, list[dict[str, Any]]] = {
    "alpaca": [
        {"instruction": "Who are you?", "input": "", "output": "I am a helpful assistant."},
        {"instruction": "What is the capital", "input": "of France?", "output": "Paris."},
    ],
    "sharegpt": [
        {"conversations": chat(*PAIRS[0], "from", "value", ("human", "gpt"))},
        {"conversations": chat(*PAIRS[1], "from", "value")},
    ],
    "openai": [{"messages": chat(user, reply)} for user, reply in PAIRS],
    "prompt_completion": [{"prompt": user, "completion": reply} for user, reply in PAIRS],
}


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write records in the format the file's extension names."""
    suffix = path.suffix
    if suffix == ".json":
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    elif suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        raise AssertionError(f"no writer for {suffix}")
    return path


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert tok.chat_template is None and tok.pad_token is None  # the fixture is what the fallbacks are for
    assert ensure_chat_template(tok) is True
    ensure_pad_token(tok)
    return tok


# ---------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [
        ("alpaca", ".json"), ("alpaca", ".jsonl"), ("alpaca", ".csv"), ("alpaca", ".parquet"),
        ("sharegpt", ".json"), ("sharegpt", ".jsonl"),
        ("openai", ".jsonl"), ("openai", ".json"),
        ("prompt_completion", ".csv"), ("prompt_completion", ".jsonl"), ("prompt_completion", ".parquet"),
    ],
)  # fmt: skip
def test_same_content_in_every_format_and_file_type(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = write(tmp_path / f"data{suffix}", SAME_CONTENT[fmt])
    rows, detected = load_rows(DataConfig(path=str(path)))
    assert detected == fmt
    assert rows == EXPECTED


def test_json_with_data_key_and_response_alias(tmp_path: Path) -> None:
    records = [{"prompt": r["prompt"], "response": r["completion"]} for r in SAME_CONTENT["prompt_completion"]]
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"data": records}), encoding="utf-8")
    assert load_rows(DataConfig(path=str(path))) == (EXPECTED, "prompt_completion")


def test_alpaca_system_and_history(tmp_path: Path) -> None:
    record = {
        "instruction": "And two plus two?", "input": "", "output": "Four.", "system": "Be brief.",
        "history": [["Who are you?", "I am a helpful assistant."]],
    }  # fmt: skip
    rows, _ = load_rows(DataConfig(path=str(write(tmp_path / "a.jsonl", [record]))))
    assert [(m["role"], m["content"]) for m in rows[0]["messages"]] == [
        ("system", "Be brief."),
        ("user", "Who are you?"),
        ("assistant", "I am a helpful assistant."),
        ("user", "And two plus two?"),
        ("assistant", "Four."),
    ]


def test_sharegpt_system_turn_and_messages_variant(tmp_path: Path) -> None:
    turns = [{"from": "system", "value": "Be brief."}, *chat("Hi", "Hello!", "from", "value", ("human", "gpt"))]
    rows, fmt = load_rows(DataConfig(path=str(write(tmp_path / "s.jsonl", [{"messages": turns}]))))
    assert fmt == "sharegpt"
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"]


def test_text_from_txt_paragraphs_and_from_a_column(tmp_path: Path) -> None:
    txt = tmp_path / "book.txt"
    txt.write_text("First paragraph,\nstill first.\n\n\n  \nSecond one.\n\n", encoding="utf-8")
    assert load_rows(DataConfig(path=str(txt))) == (
        [{"text": "First paragraph,\nstill first."}, {"text": "Second one."}],
        "text",
    )
    column = write(tmp_path / "t.csv", [{"id": "1", "text": "Hello world!"}, {"id": "2", "text": "Goodbye."}])
    assert load_rows(DataConfig(path=str(column))) == ([{"text": "Hello world!"}, {"text": "Goodbye."}], "text")


def test_columns_mapping(tmp_path: Path) -> None:
    records = [{"question": r["prompt"], "answer": r["completion"]} for r in SAME_CONTENT["prompt_completion"]]
    path = write(tmp_path / "qa.csv", records)
    cfg = DataConfig(path=str(path), columns={"prompt": "question", "response": "answer"})
    assert load_rows(cfg) == (EXPECTED, "prompt_completion")


def test_mapped_columns_keep_the_files_order_and_a_mapped_name_wins() -> None:
    """The pages' Columns dropdowns list a refused file's columns as the mapped rows name them, mapped back: in the
    file's order before and after a pick. The order changed under a visitor's pick (mapped columns went last), and a
    click meant for one column chose another."""
    from engine.data.formats import apply_columns

    row = {"id": 1, "question": "q", "note": "n", "answer": "a", "prompt": "old"}
    renamed = apply_columns([row], {"prompt": "question"}, "qa.csv")[0]
    assert list(renamed) == ["id", "prompt", "note", "answer"] and renamed["prompt"] == "q"
    both = apply_columns([row], {"response": "answer", "completion": "answer"}, "qa.csv")[0]
    assert list(both) == ["id", "question", "note", "response", "completion", "prompt"]


def test_format_override_and_max_samples(tmp_path: Path) -> None:
    records = [{"instruction": f"Q{i}", "output": f"A{i}", "text": f"plain {i}"} for i in range(4)]
    path = write(tmp_path / "both.jsonl", records)
    assert load_rows(DataConfig(path=str(path)))[1] == "alpaca"
    rows, fmt = load_rows(DataConfig(path=str(path), format="text", max_samples=2))
    assert fmt == "text"
    assert rows == [{"text": "plain 0"}, {"text": "plain 1"}]


def test_detect_format_directly(tmp_path: Path) -> None:
    assert detect_format(SAME_CONTENT["openai"], tmp_path / "x.jsonl") == "openai"
    assert detect_format([{"text": "a"}], tmp_path / "x.jsonl") == "text"
    assert read_records(write(tmp_path / "r.csv", [{"a": "1"}])) == [{"a": "1"}]


# ---------------------------------------------------------------------------------------------- masking


def labelled_runs(ids: list[int], labels: list[int], tokenizer: Any) -> tuple[list[str], str]:
    """Decoded runs of consecutive labelled tokens, and the decoded unlabelled rest."""
    runs: list[list[int]] = []
    rest: list[int] = []
    previous = False
    for token, label in zip(ids, labels, strict=True):
        labelled = label != IGNORE_INDEX
        if labelled:
            assert label == token, "a labelled position must predict its own token"
            if not previous:
                runs.append([])
            runs[-1].append(token)
        else:
            rest.append(token)
        previous = labelled
    return [tokenizer.decode(run) for run in runs], tokenizer.decode(rest)


def test_assistant_only_masking_token_by_token(tokenizer: Any) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "I am a helpful assistant."},
    ]
    (row,), stats = tokenize_rows([{"messages": messages}], tokenizer, 512, "truncate")
    runs, rest = labelled_runs(row["input_ids"], row["labels"], tokenizer)
    assert runs == ["I am a helpful assistant.<|im_end|>"]
    prompt = (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nWho are you?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert rest == prompt + "\n"  # the prompt, and the newline after <|im_end|>
    assert stats.target_tokens == sum(label != IGNORE_INDEX for label in row["labels"])
    assert stats.lengths == [len(row["input_ids"])]


def test_multi_turn_trains_every_assistant_turn(tokenizer: Any) -> None:
    messages = [
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "I am a helpful assistant."},
        {"role": "user", "content": "What can you do?"},
        {"role": "assistant", "content": "I can write text."},
    ]
    text, spans = render_with_spans(messages, tokenizer)
    replies = ["I am a helpful assistant.<|im_end|>", "I can write text.<|im_end|>"]
    assert [text[start:end] for start, end in spans] == replies
    (row,), _ = tokenize_rows([{"messages": messages}], tokenizer, 512, "truncate")
    runs, rest = labelled_runs(row["input_ids"], row["labels"], tokenizer)
    assert runs == replies
    assert "Who are you?" in rest and "What can you do?" in rest


def test_masking_with_a_model_template_that_ends_turns_with_eos(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    assert ensure_chat_template(tok) is False
    messages = [{"role": "user", "content": "Hello world!"}, {"role": "assistant", "content": "Goodbye."}]
    (row,), _ = tokenize_rows([{"messages": messages}], tok, 512, "truncate")
    assert row["input_ids"][0] == tok.bos_token_id
    assert labelled_runs(row["input_ids"], row["labels"], tok)[0] == ["Goodbye.</s>"]


def test_template_that_is_not_prefix_stable_still_trains_exactly_the_reply(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)  # a generation prompt the full render never writes
    tok.chat_template = CHATML_TEMPLATE.replace("assistant\\n' }}{% endif %}", "assistant\\n<think>' }}{% endif %}")
    (row,), _ = tokenize_rows([{"messages": EXPECTED[0]["messages"]}], tok, 512, "truncate", source="train.jsonl")
    assert labelled_runs(row["input_ids"], row["labels"], tok)[0] == ["I am a helpful assistant.<|im_end|>"]


def test_plain_text_trains_on_every_token_and_ends_with_eos(tokenizer: Any) -> None:
    (row,), stats = tokenize_rows([{"text": "Paris is the capital of France."}], tokenizer, 512, "truncate")
    assert row["labels"] == row["input_ids"]
    assert row["input_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(row["input_ids"]) == "Paris is the capital of France.</s>"
    assert stats.target_tokens == len(row["input_ids"])


def test_chatml_fallback_never_grows_the_vocabulary_and_pad_falls_back_to_eos() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({"<unk>": 0, "</s>": 1, "hi": 2}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="</s>")
    assert ensure_chat_template(tok) is True
    assert len(tok) == 3 and tok.chat_template == CHATML_EOS_TEMPLATE  # no untrainable new tokens
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hi"}]
    rendered = tok.apply_chat_template(messages, tokenize=False)
    assert rendered == "<|im_start|>user\nhi</s>\n<|im_start|>assistant\nhi</s>\n"
    text, spans = render_with_spans(messages, tok)
    assert [text[a:b] for a, b in spans] == ["hi</s>"]  # the model learns to stop at eos
    assert ensure_chat_template(tok) is False
    ensure_pad_token(tok)
    assert tok.pad_token == "</s>"


# ---------------------------------------------------------------------------------------------- cutoff


def test_cutoff_truncate_versus_drop(tokenizer: Any) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "word " * 40}]},
        {"messages": [{"role": "user", "content": "word " * 40}, {"role": "assistant", "content": "ok"}]},
    ]
    cutoff = 32
    kept, stats = tokenize_rows(rows, tokenizer, cutoff, "truncate")
    assert stats.lengths[0] <= cutoff < min(stats.lengths[1:])
    assert (stats.rows_in, stats.rows_out, stats.truncated, stats.dropped) == (3, 2, 1, 1)
    assert all(len(row["input_ids"]) <= cutoff for row in kept)
    assert stats.target_tokens == sum(sum(label != IGNORE_INDEX for label in row["labels"]) for row in kept)

    kept, stats = tokenize_rows(rows, tokenizer, cutoff, "drop")
    assert (stats.rows_in, stats.rows_out, stats.truncated, stats.dropped) == (3, 1, 0, 2)
    assert len(kept) == 1 and len(stats.lengths) == 3


# ---------------------------------------------------------------------------------------------- bad files


def _jsonl(*records: Any) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


GOOD = {"instruction": "Who are you?", "output": "I am a helpful assistant."}
QA = {"question": "q", "answer": "a"}
EMPTY_GPT = {"conversations": chat("Hi", "", "from", "value", ("human", "gpt"))}
ROBOT = {"conversations": chat("Hi", "x", "from", "value", ("robot", "gpt"))}
NULL_REPLY = {"messages": chat("Hi", None)}  # type: ignore[arg-type]
NO_REPLY = {"messages": chat("Hi", "")[:1]}
LATIN_1 = "prompt,completion\nCaf\xe9,ok\n".encode("latin-1")
FORMAT_NAMES = ["alpaca", "sharegpt", "openai", "prompt_completion", "data.columns"]
BAD_FILES: list[tuple[str, str | bytes, list[str]]] = [
    ("empty.jsonl", "", ["is empty"]),
    ("blank.json", "  \n ", ["is empty"]),
    ("no_rows.json", "[]", ["no rows"]),
    ("bad.json", '[{"instruction": "a",', ["not valid JSON", "line 1"]),
    ("lines.json", _jsonl(GOOD, GOOD), ["rename it to .jsonl"]),
    ("obj.json", '{"rows": []}', ["JSON dict", "'data' key"]),
    ("bad.jsonl", _jsonl(GOOD, GOOD) + "{oops}\n", ["line 3", "not valid JSON"]),
    ("list_row.jsonl", _jsonl(GOOD, [1, 2]), ["row 2", "not an object"]),
    ("qa.jsonl", _jsonl(QA), ["row 1", "question, answer", *FORMAT_NAMES]),
    ("out.jsonl", _jsonl(GOOD, {"instruction": "Hi", "output": "  "}), ["row 2", "'output'", "is empty"]),
    ("instr.jsonl", _jsonl({"instruction": "", "input": "", "output": "x"}), ["row 1", "'instruction'", "is empty"]),
    ("missing.jsonl", _jsonl(GOOD, {"instruction": "Hi"}), ["row 2", "'output'", "alpaca"]),
    ("mixed.jsonl", _jsonl(GOOD, GOOD, SAME_CONTENT["openai"][0]), ["row 3", "looks like openai", "row 1 was alpaca"]),
    ("share.jsonl", _jsonl(EMPTY_GPT), ["row 1", "'conversations[1].value'", "empty assistant turn"]),
    ("role.jsonl", _jsonl(ROBOT), ["row 1", "'conversations[0].from'", "robot"]),
    ("oa.json", json.dumps([SAME_CONTENT["openai"][0], NULL_REPLY]), ["row 2", "'messages[1].content'", "empty"]),
    ("ends.jsonl", _jsonl(NO_REPLY), ["row 1", "'messages'", "ends with a user turn"]),
    ("pc.csv", "prompt,completion\nHi,Hello\nHow,Fine\nWhy,\n", ["row 3", "'completion'", "is empty"]),
    ("wide.csv", "prompt,completion\nHi,Hello,extra\n", ["row 1", "more fields than the header"]),
    ("header_only.csv", "prompt,completion\n", ["no rows"]),
    ("latin.csv", LATIN_1, ["not UTF-8", "line 2"]),
    ("data.xlsx", "whatever", ["unsupported extension", ".xlsx"]),
    ("broken.parquet", "not parquet at all", ["not a readable Parquet"]),
]


def assert_one_sentence(message: str) -> None:
    assert "\n" not in message and message.endswith(".")
    assert not re.search(r"\.\s+[A-Z]", message), f"more than one sentence: {message}"


@pytest.mark.parametrize(("name", "content", "expected"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_file_gives_one_sentence(tmp_path: Path, name: str, content: str | bytes, expected: list[str]) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_rows(DataConfig(path=str(path)))
    message = str(caught.value)
    for part in [name, *expected]:
        assert part in message, f"{part!r} not in {message!r}"
    assert_one_sentence(message)


def test_bad_columns_mapping_and_override(tmp_path: Path) -> None:
    path = write(tmp_path / "qa.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError, match=r"qa\.jsonl has no column 'q' to use as 'prompt' \(found: question, answer\)"):
        load_rows(DataConfig(path=str(path), columns={"prompt": "q"}))
    with pytest.raises(DataError, match=r"qa\.jsonl: data\.columns names 'query'"):
        load_rows(DataConfig(path=str(path), columns={"query": "question"}))
    with pytest.raises(DataError, match=r"qa\.jsonl row 1 has no 'instruction' field, which the alpaca format needs"):
        load_rows(DataConfig(path=str(path), format="alpaca"))
    with pytest.raises(DataError, match=r"does not exist"):
        load_rows(DataConfig(path=str(tmp_path / "nowhere.jsonl")))


# ---------------------------------------------------------------------------------------------- splits


def run_config(path: Path, tiny_model: Path, val_size: float, seed: int = 42) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": {"name_or_path": str(tiny_model)},
            "data": {"path": str(path), "val_size": val_size},
            "train": {"seed": seed, "cutoff_len": 64},
            "output_dir": str(path.parent / "run"),
        }
    )


def test_val_split_is_seeded_and_sizes_add_up(tmp_path: Path, tiny_model: Path, tokenizer: Any) -> None:
    records = [{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(20)]
    path = write(tmp_path / "many.jsonl", records)
    train, val, stats = build_splits(run_config(path, tiny_model, 0.25, seed=1), tokenizer)
    assert (len(train), len(val), stats.rows_out) == (15, 5, 20)
    again, val_again, _ = build_splits(run_config(path, tiny_model, 0.25, seed=1), tokenizer)
    assert (again, val_again) == (train, val)
    _, other_val, _ = build_splits(run_config(path, tiny_model, 0.25, seed=2), tokenizer)
    assert other_val != val
    everything, _, _ = build_splits(run_config(path, tiny_model, 0.0), tokenizer)
    assert sorted(map(str, train + val)) == sorted(map(str, everything))

    _, none, _ = build_splits(run_config(path, tiny_model, 0.0), tokenizer)
    assert none == []
    one = write(tmp_path / "one.jsonl", [{"prompt": "Hi", "completion": "Hello."}])
    with pytest.raises(DataError, match=r"one\.jsonl has only 1 usable rows"):
        build_splits(run_config(one, tiny_model, 0.5), tokenizer)


@pytest.mark.parametrize(("overlength", "advice"), [
    ("truncate", r"cut at 8 tokens, every row ends before its reply begins: raise train\.cutoff_len\.$"),
    ("drop", r"raise train\.cutoff_len or set data\.overlength to truncate\.$"),
])
def test_no_row_left_at_the_cutoff_says_what_to_change(overlength: str, advice: str, tmp_path: Path,
                                                       tiny_model: Path, tokenizer: Any) -> None:
    """A cutoff below every prompt leaves nothing to train on; the advice fits the overlength setting (it was told
    to set truncate when it was set already)."""
    path = write(tmp_path / "long.jsonl", [{"prompt": "A long question " * 6 + "?", "completion": "Yes."}] * 3)
    config = run_config(path, tiny_model, 0.0).model_copy(deep=True)
    config.train.cutoff_len, config.data.overlength = 8, overlength
    with pytest.raises(DataError, match=r"^long\.jsonl has no row left with a token to train on after "
                                        r"cutoff_len=8: " + advice):
        build_splits(config, tokenizer)


# ---------------------------------------------------------------------------------------------- inspect


def test_inspect_dataset_with_and_without_tokenizer(tmp_path: Path, tokenizer: Any) -> None:
    path = write(tmp_path / "a.jsonl", SAME_CONTENT["alpaca"])
    report = inspect_dataset(DataConfig(path=str(path)))
    assert report["format"] == "alpaca" and report["rows"] == 2
    assert report["columns"] == ["instruction", "input", "output"]
    assert report["preview"] == SAME_CONTENT["alpaca"]
    assert "example" not in report and "lengths" not in report

    report = inspect_dataset(DataConfig(path=str(path), overlength="drop"), tokenizer, cutoff_len=16)
    (start, end), = report["example"]["spans"]  # fmt: skip
    assert report["example"]["text"][start:end] == "I am a helpful assistant.<|im_end|>"
    assert len(report["lengths"]) == 2
    assert report["over_cutoff"] == sum(length > 16 for length in report["lengths"]) >= 1
    assert report["overlength"] == "drop"


def test_the_example_says_where_the_cutoff_cuts_it(tmp_path: Path, tokenizer: Any) -> None:
    """A row longer than cutoff_len: the example carries the character where its first token beyond the cutoff
    starts (issue 24: a 589-token row at cutoff 256 was shown fully trained); a row that fits carries none."""
    path = write(tmp_path / "a.jsonl", SAME_CONTENT["alpaca"])
    fits = inspect_dataset(DataConfig(path=str(path)), tokenizer, cutoff_len=4096)["example"]
    assert "cut" not in fits
    example = inspect_dataset(DataConfig(path=str(path)), tokenizer, cutoff_len=16)["example"]
    ids = tokenizer(example["text"][:example["cut"]], add_special_tokens=False)["input_ids"]
    assert 0 < example["cut"] < len(example["text"]) and len(ids) == 16, (example, ids)


def engine_cli(*args: str) -> subprocess.CompletedProcess[str]:
    python = ROOT / ".venv" / "bin" / "python"
    command = [str(python if python.exists() else sys.executable), "-m", "engine", "inspect-data", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_jsonl_strings_may_hold_unicode_line_separators(tmp_path):
    """json.dumps(ensure_ascii=False) writes U+2028, U+0085 and U+000C as they are; only \\n and \\r end a line."""
    from engine.data.readers import read_records

    rows = [{"instruction": "a\u2028b", "output": "c\u0085d"}, {"instruction": "e\x0cf", "output": "g"}]
    path = tmp_path / "separators.jsonl"
    path.write_text("\r\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")
    assert read_records(path) == rows


def test_the_inspection_shows_the_rows_with_their_placeholders_filled(tmp_path: Path, tokenizer: Any) -> None:
    """Issue 24, item 3: with data.replace given, the preview, example and lengths are of the filled rows; the
    placeholders found are still listed (the page keeps a field for each), and one left unfilled stays as written."""
    rows = [{"instruction": "Who are you?", "input": "", "output": "I am {{name}}, made by {{author}}."}]
    path = write(tmp_path / "identity.json", rows)
    plain = inspect_dataset(DataConfig(path=str(path)), tokenizer, cutoff_len=512)
    filled = inspect_dataset(DataConfig(path=str(path), replace={"name": "Aria the long-named assistant"}),
                             tokenizer, cutoff_len=512)
    assert [p["name"] for p in filled["placeholders"]] == ["name", "author"]
    assert filled["preview"][0]["output"] == "I am Aria the long-named assistant, made by {{author}}."
    assert "I am Aria the long-named assistant, made by {{author}}." in filled["example"]["text"]
    assert filled["lengths"][0] > plain["lengths"][0]
