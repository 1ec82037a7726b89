"""webui.forms.datasets: the token-length histogram's bins and the uploads folder (pure functions, no page)."""

from __future__ import annotations

import errno
import hashlib
import os
import random
from itertools import pairwise
from pathlib import Path

import pytest

from webui.forms import datasets
from webui.forms.datasets import NICE_WIDTHS, length_bins, length_histogram

# inspect-data's lengths of the starter set (assets/datasets/identity_alpaca.json) on the bundled demo model
STARTER_LENGTHS = [41, 41, 42, 42, 43, 47, 47, 47, 48, 49, 51, 52, 52, 53, 53, 54, 54, 54, 54, 55, 55, 55, 55, 57,
                   59, 79, 79, 80, 83, 84, 84, 86, 87, 92, 93, 96, 96, 96, 98, 103]


def long_tailed(n: int, seed: int) -> list[int]:
    """Lengths shaped like an instruction set (alpaca_en_demo: most rows short, a few very long)."""
    rng = random.Random(seed)
    return [max(1, int(rng.lognormvariate(5.5, 0.8))) for _ in range(n)]


CASES = [(STARTER_LENGTHS, 64), (STARTER_LENGTHS, 256), (STARTER_LENGTHS, 1024), (STARTER_LENGTHS, 50),
         (long_tailed(1000, 0), 256), (long_tailed(1000, 1), 512), (long_tailed(300, 2), 100),
         (long_tailed(50, 3), 257), ([7, 7, 7], 64), ([0, 1, 5], 8), ([1, 100_000], 2048)]


@pytest.mark.parametrize(("lengths", "cutoff"), CASES)
def test_every_row_is_in_one_bin_in_numeric_order(lengths: list[int], cutoff: int):
    bins = length_bins(lengths, cutoff)
    assert sum(b.rows for b in bins) == len(lengths)
    assert 1 <= len(bins) <= datasets.MAX_BINS
    for b in bins:
        assert b.rows == sum(b.low <= n <= b.high for n in lengths)
    assert all(a.high + 1 == b.low for a, b in pairwise(bins))  # adjacent, ascending, no gap, no overlap
    assert bins[0].low <= min(lengths) and bins[-1].high >= max(lengths)


@pytest.mark.parametrize(("lengths", "cutoff"), CASES)
def test_cutoff_is_a_bin_edge_so_colours_are_exact(lengths: list[int], cutoff: int):
    bins = length_bins(lengths, cutoff)
    assert all(b.high <= cutoff or b.low > cutoff for b in bins)  # no bin holds rows on both sides
    table = length_histogram(lengths, cutoff, fits="fits", over="over")
    over_rows = sum(r["rows"] for r in table if r["fits"] == "over")
    assert over_rows == sum(n > cutoff for n in lengths)
    assert sum(r["rows"] for r in table) == len(lengths)


def test_edges_are_round_when_the_cutoff_is():
    bins = length_bins(STARTER_LENGTHS, 64)
    assert [b.label for b in bins] == ["41–48", "49–56", "57–64", "65–72", "73–80", "81–88", "89–96",
                                       "97–104"]
    assert [b.rows for b in bins] == [9, 14, 2, 0, 3, 5, 5, 2]  # empty bins stay, so the axis is to scale
    for lengths, cutoff in [(long_tailed(1000, 0), 256), (long_tailed(1000, 1), 512), (STARTER_LENGTHS, 1024)]:
        width = bins_width(length_bins(lengths, cutoff))
        assert width in NICE_WIDTHS and cutoff % width == 0
        assert all(b.high % width == 0 for b in length_bins(lengths, cutoff))


def bins_width(bins: list[datasets.LengthBin]) -> int:
    return bins[-1].high - bins[-2].high


def test_chart_rows_name_both_colours_in_every_chart():
    """gradio's bar chart builds its colour scale from the first data it draws; a chart first drawn with
    every row fitting then drew later over-cutoff bars with no colour (the rows vanished). Every table names
    both colours, 'fits' first, and lists bins in numeric order."""
    for cutoff in (1024, 64):
        table = length_histogram(STARTER_LENGTHS, cutoff, fits="fits", over="over")
        assert [r["fits"] for r in table[:2]] == ["fits", "over"]
        labels = list(dict.fromkeys(r["tokens"] for r in table))
        lows = [int(label.split("–")[0]) for label in labels]
        assert lows == sorted(lows)
    assert length_histogram([], 64) == []


def test_length_chart_update_orders_and_colours_the_bins():
    from webui.tabs.train.data import FITS_COLOUR, OVER_COLOUR, length_chart

    update = length_chart(STARTER_LENGTHS, 64, None)
    frame = update["value"]
    assert frame["rows"].sum() == 40 and update["visible"] is True
    assert update["sort"] == ["41–48", "49–56", "57–64", "65–72", "73–80", "81–88", "89–96", "97–104"]
    assert update["color_map"] == {"fits": FITS_COLOUR, "over cutoff": OVER_COLOUR}
    assert frame[frame["fits"] == "over cutoff"]["rows"].sum() == 15
    assert "64" in update["color_title"]
    assert length_chart([], 64, None)["visible"] is False


# ---------------------------------------------------------------------------------------------- uploads


def test_the_same_file_uploaded_again_is_the_stored_copy(tmp_path: Path):
    uploads = tmp_path / "uploads"
    first = tmp_path / "a" / "alpaca_en_demo.json"
    first.parent.mkdir()
    first.write_text('[{"instruction": "Hi", "output": "Hello"}]', encoding="utf-8")
    saved = datasets.save_upload(first, uploads)
    assert datasets.save_upload(first, uploads) == saved
    assert sorted(p.name for p in uploads.iterdir()) == ["alpaca_en_demo.json"]

    other = tmp_path / "b" / "alpaca_en_demo.json"  # same name, other bytes (same size, so the hash decides)
    other.parent.mkdir()
    other.write_text('[{"instruction": "Yo", "output": "Hello"}]', encoding="utf-8")
    renamed = datasets.save_upload(other, uploads)
    assert renamed.name == "alpaca_en_demo-2.json" and renamed.read_bytes() == other.read_bytes()
    assert datasets.save_upload(other, uploads) == renamed  # found under its new name too
    assert datasets.save_upload(first, uploads) == saved
    assert len(list(uploads.iterdir())) == 2


def received(gradio: Path, name: str, content: str) -> Path:
    """A file as Gradio's upload route leaves it: GRADIO_TEMP_DIR/<sha256 of the bytes>/NAME."""
    path = gradio / hashlib.sha256(content.encode()).hexdigest() / name
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")
    return path


def test_an_upload_is_stored_once(tmp_path: Path):
    """Moved out of Gradio's upload cache into uploads/, its folder there removed; the same bytes again are
    the stored copy, and Gradio's copy goes too."""
    gradio, uploads = tmp_path / ".gradio", tmp_path / "uploads"
    content = '{"instruction": "Hi", "output": "Hello"}\n'
    first = received(gradio, "facts.jsonl", content)
    saved = datasets.store_upload(first, uploads, received_in=gradio)
    assert saved == uploads / "facts.jsonl" and saved.read_text(encoding="utf-8") == content
    assert not gradio.exists() or not any(gradio.iterdir())  # nothing left in Gradio's cache

    again = received(gradio, "facts.jsonl", content)
    assert datasets.store_upload(again, uploads, received_in=gradio) == saved
    assert not again.exists() and sorted(p.name for p in uploads.iterdir()) == ["facts.jsonl"]

    elsewhere = tmp_path / "mine" / "notes.jsonl"  # not Gradio's: copied, left where it is
    elsewhere.parent.mkdir()
    elsewhere.write_text(content, encoding="utf-8")
    assert datasets.store_upload(elsewhere, uploads, received_in=gradio) == uploads / "notes.jsonl"
    assert elsewhere.read_text(encoding="utf-8") == content


def test_an_upload_on_another_filesystem_is_copied_then_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def cross_device(_source, _target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(datasets.os, "replace", cross_device)
    source = received(tmp_path / ".gradio", "facts.jsonl", '{"text": "x"}\n')
    saved = datasets.store_upload(source, tmp_path / "uploads", received_in=tmp_path / ".gradio")
    assert saved.read_text(encoding="utf-8") == '{"text": "x"}\n' and not source.exists()


def test_dataset_choices_read_the_folder_each_time(tmp_path: Path):
    """The dropdown is refilled from this as a page opens: uploads of earlier visits or server runs show."""
    assets = Path(__file__).resolve().parents[2] / "assets"
    uploads = tmp_path / "uploads"
    before = datasets.dataset_choices(uploads, assets)
    assert before and all(label.startswith("samples/") for label, _ in before)
    source = tmp_path / "mine.jsonl"
    source.write_text('{"text": "x"}\n', encoding="utf-8")
    older = datasets.save_upload(source, uploads)
    os.utime(older, (1, 1))
    source.write_text('{"text": "y"}\n', encoding="utf-8")
    newer = datasets.save_upload(source, uploads)
    after = datasets.dataset_choices(uploads, assets)
    assert after[:2] == [("uploads/mine-2.jsonl", str(newer)), ("uploads/mine.jsonl", str(older))]
    assert after[2:] == before


def test_the_example_shows_where_the_cutoff_cuts_and_nothing_beyond_it_is_trained():
    """Issue 24: a row longer than cutoff_len was shown fully TRAINED; beyond the cut is one piece labelled 'cut'."""
    text = "user: hi\nassistant: hello there, friend"
    report = {"example": {"text": text, "spans": [[20, len(text)]], "cut": 26}}
    assert datasets.example_segments(report) == [("user: hi\nassistant: ", None), ("hello ", "trained"),
                                                 ("there, friend", "cut")]
    report["example"]["cut"] = 5  # cut before the reply: nothing trains
    assert datasets.example_segments(report) == [("user:", None), (" hi\nassistant: hello there, friend", "cut")]
    del report["example"]["cut"]
    assert datasets.example_segments(report)[-1] == ("hello there, friend", "trained")


def test_the_over_cutoff_line_says_it_counts_the_first_rows_of_a_bigger_file():
    from webui.tabs.train.data import over_cutoff_line

    sampled = over_cutoff_line({"over_cutoff": 8, "rows": 24656, "sample_rows": 2000}, 256, None)
    assert sampled.startswith("**8** rows are longer than cutoff_len (256)")
    assert "first 2,000 of 24,656 rows" in sampled
    whole = over_cutoff_line({"over_cutoff": 8, "rows": 40, "sample_rows": 40}, 256, None)
    assert "first" not in whole and over_cutoff_line({"rows": 40}, 256, None) == ""


def test_one_row_is_said_in_the_singular():
    """Issue 24, item 6: "1 rows"."""
    from webui.i18n import message

    assert message(None, "msg.data_summary", format="alpaca", rows="1").endswith("<b>1</b> row")
    assert message(None, "msg.data_summary", format="alpaca", rows="2").endswith("<b>2</b> rows")
    assert message(None, "msg.over_cutoff_truncate", n=1, cutoff=8).startswith("**1** row is longer")
    assert message(None, "msg.over_cutoff_drop", n=3, cutoff=8).startswith("**3** rows are longer")


def test_the_example_legend_names_the_cut_only_where_the_example_is_cut():
    """Issue 24 item 6: the example's categories are one legend (not a badge after every piece), listing only the
    kinds of piece shown: a legend that always listed "beyond cutoff_len" said the row was cut where it was not."""
    from webui.tabs.train.data import example_view

    whole = {"example": {"text": "<|user|>\nHi</s>\n<|assistant|>\nHello</s>\n", "spans": [[26, 36]]}}
    assert list(example_view(whole, None)["color_map"]) == ["trained"]
    cut = {"example": {**whole["example"], "cut": 30}}
    update = example_view(cut, None)
    assert list(update["color_map"]) == ["trained", "beyond cutoff_len: cut, not trained"]
    assert [label for _, label in update["value"]][-2:] == ["trained", "beyond cutoff_len: cut, not trained"]
    before_reply = {"example": {**whole["example"], "cut": 20}}  # all of the reply beyond the cut: nothing trains
    assert list(example_view(before_reply, None)["color_map"]) == ["beyond cutoff_len: cut, not trained"]


def test_preview_columns_are_as_wide_as_their_text_needs():
    from webui.forms.datasets import column_widths

    widths = column_widths(["instruction", "input", "output"], [["Tell me about the kestrel.", "", "x" * 200]])
    assert widths == ["26.0%", "14.0%", "60.0%"]  # 26, 14 (at least) and 60 (at most) characters' worth
