"""The benchmark's length profiles (tests/bench/run_bench.py) measure as they are meant to, and the packing table's
auto-vs-on/off verdict is computed from the runs. Fast: a BPE tokenizer trained in a second or two, 90 rows per
profile, no model and no training."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "bench"))

import run_bench  # noqa: E402

ROWS, CUTOFF = 90, 256


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    return run_bench.build_tokenizer(tmp_path_factory.mktemp("bench") / "tokenizer")


def lengths(path: Path, tokenizer) -> list[int]:
    return run_bench.token_lengths(json.loads(path.read_text(encoding="utf-8")), "alpaca", tokenizer)


def test_realistic_profile_has_a_third_of_rows_past_the_cutoff(tokenizer, tmp_path: Path) -> None:
    path = run_bench.build_profile("realistic", tmp_path, ROWS, tokenizer, CUTOFF)
    measured = lengths(path, tokenizer)
    assert len(measured) == ROWS
    over = sum(n > CUTOFF for n in measured) / ROWS
    assert 0.25 <= over <= 0.45, over
    assert statistics.median(measured) < CUTOFF
    assert max(measured) <= 4 * CUTOFF
    summary = run_bench.length_summary(path, "alpaca", tokenizer, CUTOFF)
    assert summary["rows"] == ROWS and summary["over_cutoff"] == over and summary["max"] == max(measured)
    assert summary["median"] <= summary["p90"] <= summary["max"]


def test_short_profile_rows_are_short(tokenizer, tmp_path: Path) -> None:
    path = run_bench.build_profile("short", tmp_path, ROWS, tokenizer, CUTOFF)
    measured = lengths(path, tokenizer)
    assert len(measured) == ROWS
    assert max(measured) <= 128
    assert statistics.median(measured) < 64


def test_profiles_are_deterministic(tokenizer, tmp_path: Path) -> None:
    for name in ("realistic", "short"):
        one = run_bench.build_profile(name, tmp_path / "one", ROWS, tokenizer, CUTOFF)
        two = run_bench.build_profile(name, tmp_path / "two", ROWS, tokenizer, CUTOFF)
        assert one.read_bytes() == two.read_bytes()
        other = run_bench.build_profile(name, tmp_path / "three", ROWS, tokenizer, CUTOFF, seed=1)
        assert other.read_bytes() != one.read_bytes()


def runs(kind: str, train_s: list[float]) -> list[run_bench.Run]:
    return [run_bench.Run("engine", f"{kind}-{i}", {"train_s": t, "batching": f"batching: {kind}"}, t + 5, 1000.0,
                          extra={"tokens_per_s": 1000 / t}) for i, t in enumerate(train_s)]


def test_packing_verdict_no_when_auto_is_slower_than_the_spread() -> None:
    # off is the better (median 10.0); spreads 2% (auto), 2% (on), 2% (off); auto 10% slower than off
    fabricated = {"auto": runs("auto", [11.0, 11.22]), "on": runs("on", [12.0, 12.24]), "off": runs("off", [9.9, 10.1])}
    verdict = run_bench.packing_verdict(fabricated)
    assert verdict["better"] == "off" and verdict["better_s"] == pytest.approx(10.0)
    assert verdict["diff"] == pytest.approx(11.11 / 10.0 - 1)
    assert verdict["spread"] == pytest.approx(0.2 / 10.0)
    assert verdict["within"] is False
    text = "\n".join(run_bench.packing_table("30m", fabricated))
    assert "Auto is within the spread of the better of on/off: **no**" in text
    assert "| auto | 11.0 / 11.2 |" in text and "auto chose: auto" in text


def test_packing_verdict_yes_when_auto_is_within_the_spread() -> None:
    # on is the better (median 10.0, runs 9.5 / 10.5: spread 10%); auto 3% slower
    fabricated = {"auto": runs("auto", [10.3, 10.3]), "on": runs("on", [9.5, 10.5]), "off": runs("off", [14.0, 14.0])}
    verdict = run_bench.packing_verdict(fabricated)
    assert verdict["better"] == "on" and verdict["spread_kind"] == "on"
    assert verdict["spread"] == pytest.approx(0.1) and verdict["within"] is True
    assert "**yes**" in "\n".join(run_bench.packing_table("30m", fabricated))
    # faster than the better one counts as within
    fabricated["auto"] = runs("auto", [8.0, 8.0])
    assert run_bench.packing_verdict(fabricated)["within"] is True


def test_the_plain_scripts_runs_count_in_the_ab_spread_and_same_batching_is_named() -> None:
    # auto 2.5% slower than off; auto/on/off spreads 2%; the plain script's runs 18.0 / 18.9 spread 4.9%
    fabricated = {"auto": runs("auto", [10.15, 10.35]), "on": runs("on", [12.0, 12.24]),
                  "off": runs("off", [9.9, 10.1]), "plain": runs("plain", [18.0, 18.9])}
    assert run_bench.packing_verdict({k: v for k, v in fabricated.items() if k != "plain"})["within"] is False
    verdict = run_bench.packing_verdict(fabricated)
    assert verdict["spread_kind"] == "plain" and verdict["within"] is True
    assert verdict["same"] is True  # auto's runs did not pack, and off is the better
    text = "\n".join(run_bench.packing_table("30m", fabricated))
    assert "the same batching as off: the difference is run-to-run noise" in text
    assert "| plain |" not in text  # a row per packing setting only
    for run in fabricated["auto"]:
        run.metrics["packing"] = True
    assert run_bench.packing_verdict(fabricated)["same"] is False
