"""Dataset inspection has a memory bound and never outlives the web server (issue 11, defect 6).

- A big file (about 60 MB here; tests/bench/inspect_big.py does 300 MB) is inspected the way the page does
  it, and the inspecting process's own peak memory (wait4's ru_maxrss) stays under the bound the README
  states, while the row count is exact and the answer says how many rows were measured.
- The bounded reading (engine/data/sample.py, engine/data/streams.py) gives the same rows and the same error sentences
  as reading the whole file, also when the file is read in pieces of a few bytes.
- Visitors asking for the same inspection at once share one process (and its failure).
- An inspection started the way the server starts it dies when the server is killed with SIGKILL; the memory
  cap is set, lets the tokenizer load, and answers with one sentence when it is hit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.__main__ import MEMORY_ENV, PARENT_ENV
from engine.data import sample, streams
from engine.data.readers import read_records
from engine.jobs.failures import DataError
from tests.bench.inspect_big import DEMO_MODEL, measure, row_pool, write_dataset
from webui.jobs import commands as engine_cli

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
# The bounds the README states: an inspection's peak memory, whatever the file's size.
BOUND_WITHOUT_TOKENIZER_MB = 150
BOUND_WITH_DEMO_TOKENIZER_MB = 512


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, int]]]:
    """About 60 MB of .jsonl, .json (one top-level list) and .parquet (one row group): (path, rows written);
    removed after this module's tests (pytest keeps the temporary folders of the last runs)."""
    folder = tmp_path_factory.mktemp("big")
    files = {suffix: (path, write_dataset(path, 60)) for suffix in ("jsonl", "json", "parquet")
             for path in [folder / f"big.{suffix}"]}
    yield files
    for path, _ in files.values():
        path.unlink()


@pytest.mark.parametrize("suffix", ["jsonl", "json", "parquet"])
def test_a_big_file_is_counted_exactly_in_bounded_memory(big, suffix):
    path, rows = big[suffix]
    result = measure(path)
    answer = result.answer
    assert answer["rows"] == rows and answer["sample_rows"] == sample.SAMPLE_ROWS
    assert f"first {sample.SAMPLE_ROWS:,} of {rows:,} rows" in answer["note"]
    assert result.peak_mb < BOUND_WITHOUT_TOKENIZER_MB, f"{result.peak_mb:.0f} MB for {path.name}"


def test_a_big_file_with_the_demo_tokenizer_stays_under_the_bound(big):
    path, rows = big["jsonl"]
    result = measure(path, DEMO_MODEL)  # under the memory cap the server sets: torch and tokenizers load
    answer = result.answer
    assert answer["rows"] == rows and len(answer["lengths"]) == sample.SAMPLE_ROWS
    assert answer["example"]["spans"] and answer["over_cutoff"] >= 0
    assert result.peak_mb < BOUND_WITH_DEMO_TOKENIZER_MB, f"{result.peak_mb:.0f} MB"


def test_a_row_of_megabytes_reaches_the_page_cut():
    from engine.data.pipeline import EXAMPLE_CHARS, PREVIEW_CHARS, clip, clipped_example

    cell = clip({"text": "x" * 10**6, "turns": [{"content": "y" * 10**6}], "n": 3}, PREVIEW_CHARS)
    assert len(cell["text"]) == len(cell["turns"][0]["content"]) == PREVIEW_CHARS and cell["n"] == 3
    example = clipped_example("u" * 10 + "a" * 10**6, [(10, 10**6 + 10)], EXAMPLE_CHARS)
    assert len(example["text"]) == EXAMPLE_CHARS + 1 and example["spans"] == [[10, EXAMPLE_CHARS]]
    assert clipped_example("short", [(0, 5)], EXAMPLE_CHARS) == {"text": "short", "spans": [[0, 5]]}


def test_a_small_file_is_measured_whole(tmp_path):
    path = tmp_path / "small.jsonl"
    rows = write_dataset(path, 0.01)
    answer = measure(path).answer
    assert answer["rows"] == answer["sample_rows"] == rows and "note" not in answer


# ---------------------------------------------------------------------------------------------- the same rows


ASSETS = sorted(p for p in (ROOT / "assets" / "datasets").iterdir() if p.suffix in (".json", ".jsonl", ".csv", ".txt"))


@pytest.mark.parametrize("path", ASSETS, ids=[p.name for p in ASSETS])
def test_the_sample_of_a_small_file_is_every_row(path, monkeypatch):
    monkeypatch.setattr(streams, "CHUNK_BYTES", 7)  # windows end inside strings, numbers and characters
    whole = sample.read_sample(path, max_rows=10**9, max_bytes=10**12)
    assert whole.complete and whole.records == read_records(path)
    first = sample.read_sample(path, max_rows=3)
    assert first.records == whole.records[:3] and first.rows == whole.rows and not first.complete


@pytest.mark.parametrize("suffix", ["jsonl", "json", "csv", "txt", "parquet"])
def test_each_format_is_counted_with_a_sample(tmp_path, suffix):
    path = tmp_path / f"rows.{suffix}"
    rows = write_dataset(path, 0.2, row_pool(50))
    found = sample.read_sample(path, max_rows=10)
    assert found.rows == rows and len(found.records) == 10
    assert found.records == read_records(path)[:10]


def test_the_sample_stops_at_its_byte_budget(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text("".join(json.dumps({"text": "x" * 1000}) + "\n" for _ in range(50)), encoding="utf-8")
    found = sample.read_sample(path, max_rows=40, max_bytes=10_000)
    assert found.rows == 50 and len(found.records) == 10  # the row that passes the budget is the last one


BROKEN = {
    "lines.json": '{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n',
    "syntax.json": '[{"a": 1}, {"a": 2},\n {"a" 3}]',
    "unterminated.json": '[{"a": 1},\n {"a": "never ends}]',
    "rows-not-objects.json": "[1, 2]",
    "a-string.json": '"hello"',
    "no-data.json": '{"x": [{"a": 1}]}',
    "empty-list.json": "[]",
    "blank.json": "  \n ",
    "trailing-comma.json": '[{"a": 1},]',
    "missing-comma.json": '[{"a": 1} {"a": 2}]',
    "bom-and-bad-literal.json": '\ufeff[{"a": tru}]',
    "cut.json": '[{"a": 123456789}',
    "garbage-after.json": '[{"a": 1}]  x',
    "data-key.json": ' {"meta": {"x": [1, 2]}, "data": [{"a": 1}, {"a": 22}], "z": null} ',
    "bad-line.jsonl": '{"a": 1}\n\n{"a": \n',
    "blank.jsonl": "\n  \n",
    "cr-only.jsonl": '{"a": 1}\r{"a": 2}\r\r{"a": 3}\r',
    "paragraphs.txt": "first\r\n  \r\nsecond line\nstill second\n\n\n  third  ",
    "extra-field.csv": "a,b\n1,2\n3,4,5\n",
    "header-only.csv": "a,b\n",
    "quoted-newline.csv": 'a,b\n"1\n2",3\n',
    "cr-only.csv": 'a,b\r1,"x\ry"\r3,4\r',
    "crlf.csv": 'a,b\r\n1,"x\r\ny"\r\n3,4\r\n',
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_same_rows_and_sentences_as_reading_the_whole_file(tmp_path, monkeypatch, name):
    monkeypatch.setattr(streams, "CHUNK_BYTES", 5)
    path = tmp_path / name
    path.write_text(BROKEN[name], encoding="utf-8", newline="")
    assert outcome(lambda: sample.read_sample(path).records) == outcome(lambda: read_records(path))


def test_bytes_that_are_not_utf8_are_found_on_their_line(tmp_path, monkeypatch):
    monkeypatch.setattr(streams, "CHUNK_BYTES", 3)
    for suffix in ("json", "jsonl", "csv", "txt"):
        path = tmp_path / f"latin1.{suffix}"
        path.write_bytes({"json": b'[{"a": "x"},\n{"a": "caf\xe9"}]', "jsonl": b'{"a": 1}\n\n{"a": "caf\xe9"}\n'}
                         .get(suffix, b"a\n\ncaf\xe9\n"))
        expected = outcome(lambda: read_records(path))  # noqa: B023 (called at once)
        assert "not UTF-8" in expected and outcome(lambda: sample.read_sample(path)) == expected  # noqa: B023


def test_a_row_longer_than_the_limit_is_refused_with_a_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(streams, "MAX_ROW_BYTES", 1000)
    monkeypatch.setattr(streams, "CHUNK_BYTES", 100)
    monkeypatch.setattr(sample, "MAX_ROW_BYTES", 1000)
    for name, text in {"one.jsonl": '{"a": "' + "x" * 2000 + '"}\n', "one.json": '[{"a": "' + "x" * 2000 + '"}]',
                       "one.txt": "word " * 500}.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        said = outcome(lambda: sample.read_sample(path))  # noqa: B023
        assert said.startswith(f"{name} ") and "longer than" in said and ": split it" in said, said


def outcome(read) -> object:
    """What `read()` returns, or the sentence of the DataError it raises."""
    try:
        return read()
    except DataError as error:
        return str(error)


# ---------------------------------------------------------------------------------------------- shared


def test_visitors_asking_at_once_share_one_process(tmp_path, monkeypatch):
    dataset = tmp_path / "identity.json"
    dataset.write_bytes((ROOT / "assets" / "datasets" / "identity_alpaca.json").read_bytes())
    started: list[list[str]] = []
    real = engine_cli.run_json

    def counted(args, *rest, **kwargs):
        started.append(args)
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(engine_cli, "run_json", counted)
    cache = engine_cli.EngineCache(tmp_path / "cache")
    answers = at_once(3, lambda: cache.answer(engine_cli.inspect_job(dataset)))
    assert len(started) == 1  # one real inspect-data process for the three visitors
    assert answers[0]["rows"] == 40 and answers[0] == answers[1] == answers[2]


def test_visitors_waiting_for_a_failing_process_share_its_error(tmp_path, monkeypatch):
    dataset = tmp_path / "broken.jsonl"
    dataset.write_text('{"a": 1}\n{not json\n', encoding="utf-8")
    started: list[list[str]] = []
    real = engine_cli.run_json
    monkeypatch.setattr(engine_cli, "run_json", lambda args, *r, **k: started.append(args) or real(args, *r, **k))
    cache = engine_cli.EngineCache(tmp_path / "cache")
    errors = at_once(3, lambda: failure_of(lambda: cache.answer(engine_cli.inspect_job(dataset))))
    assert len(started) == 1 and len(set(errors)) == 1 and "line 2" in errors[0]
    failure_of(lambda: cache.answer(engine_cli.inspect_job(dataset)))
    assert len(started) == 2  # a later request tries again (the file may have been fixed)


def at_once(visitors: int, ask) -> list:
    answers: list = [None] * visitors
    threads = [threading.Thread(target=lambda i=i: answers.__setitem__(i, ask())) for i in range(visitors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


def failure_of(ask) -> str:
    try:
        ask()
    except engine_cli.EngineCommandError as error:
        return str(error)
    raise AssertionError("no EngineCommandError")


# ---------------------------------------------------------------------------------------------- lifetime


SERVER = textwrap.dedent("""
    import sys, threading
    sys.path.insert(0, sys.argv[1])
    from webui.jobs import commands as engine_cli
    args = ["inspect-data", "--data", sys.argv[2], "--model", sys.argv[3], "--sample-rows", "1000000"]
    worker = threading.Thread(target=engine_cli.run_json, args=(args,))  # as gradio runs a handler
    worker.start()
    worker.join()
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal and /proc are Linux's")
def test_no_inspection_is_left_when_the_server_is_killed(big, tmp_path):
    """A stand-in for the server starts a long inspection (every row tokenized) from a worker thread, the way
    the page does, and is killed with SIGKILL: the inspection must end within seconds, not run on."""
    script = tmp_path / "server.py"
    script.write_text(SERVER, encoding="utf-8")
    server = subprocess.Popen([PYTHON, str(script), str(ROOT), str(big["jsonl"][0]), str(DEMO_MODEL)])
    try:
        child = wait_for_child(server.pid, "inspect-data")
        time.sleep(1.0)  # well into its work (loading torch); it would need minutes to finish
        assert alive(child)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = alive(child)
    finally:
        server.kill()
        for pid in children_of(server.pid):
            os.kill(pid, signal.SIGKILL)
    if left:
        os.kill(child, signal.SIGKILL)
    assert not left, "the inspection outlived the server"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended while listed
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def wait_for_child(pid: int, marker: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children_of(pid):
            if marker in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace"):
                return child
        time.sleep(0.05)
    raise AssertionError(f"no {marker} process started within {timeout} s")


def alive(pid: int) -> bool:
    """Running: not gone, and not a zombie waiting for a parent (pid 1 here) to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def engine(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_a_parent_that_is_already_gone_ends_the_command_at_once():
    done = engine("inspect-data", "--data", str(ROOT / "assets" / "datasets" / "identity_alpaca.json"),
                  env={PARENT_ENV: "1"})  # not this process's parent
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "The process that started this command (pid 1) has already ended."


def test_the_memory_cap_is_set_and_hitting_it_is_one_sentence(tmp_path):
    probe = ("import resource; from engine.__main__ import apply_limits; assert apply_limits() is None; "
             "print(resource.getrlimit(resource.RLIMIT_DATA)[0] >> 20)")
    shown = subprocess.run([PYTHON, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                           env={**os.environ, MEMORY_ENV: "1234"})
    assert shown.stdout.strip() == "1234", shown.stderr

    path = tmp_path / "long-rows.jsonl"
    path.write_text("".join(json.dumps({"text": "x" * (8 << 20)}) + "\n" for _ in range(4)), encoding="utf-8")
    done = engine("inspect-data", "--data", str(path), env={MEMORY_ENV: "48"})  # two rows of 8 MB are sampled
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("Measuring the first 2,000 rows of long-rows.jsonl needed more than the 48 MB")
    assert engine("inspect-data", "--data", str(path), env={}).returncode == 0  # no cap: measured


# ---------------------------------------------------------------------------------------------- the page


def test_the_dataset_view_says_how_many_rows_were_measured():
    from types import SimpleNamespace

    from webui.tabs.train.data import summary_line

    def visitor(language: str) -> SimpleNamespace:
        return SimpleNamespace(session_hash="a", headers={"accept-language": language}, cookies={})

    big_file = {"format": "alpaca", "rows": 920030, "sample_rows": 2000}
    shown = summary_line(big_file, visitor("en-US"))
    assert "<b>920,030</b> rows" in shown and "token lengths from the first <b>2,000</b> rows" in shown
    assert "前 <b>2,000</b> 行" in summary_line(big_file, visitor("zh-CN"))
    whole = summary_line({"format": "alpaca", "rows": 40, "sample_rows": 40}, visitor("en-US"))
    assert "<b>40</b> rows" in whole and "first" not in whole
