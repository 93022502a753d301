"""Metric functions on hand-made cases."""

from __future__ import annotations

import json
import math

import pytest

from wmgym.benchmarks import metrics
from wmgym.benchmarks.common import BenchmarkRun, fmt, latest_result, md_table
from wmgym.worldmodels.protocol import SUCCESS_MARKER


def test_exact_match_strips_whitespace_and_keeps_marker():
    gold = metrics.gold_text("You win.", won=True)
    assert gold == "You win." + SUCCESS_MARKER
    assert metrics.exact_match("  You win. [SUCCESS]\n\n", gold)
    assert not metrics.exact_match("You win.", gold)  # the marker is part of the observation
    assert not metrics.exact_match("You win. [SUCCESS]", "You win.")
    assert metrics.exact_match("You see a key.\n", "You see a key.")
    assert not metrics.exact_match("you see a key.", "You see a key.")  # case matters
    assert not metrics.exact_match("You see a  key.", "You see a key.")  # inner whitespace matters


def test_token_f1_hand_made():
    assert metrics.token_f1("the red key", "the red key") == 1.0
    assert metrics.token_f1("", "") == 1.0
    assert metrics.token_f1("", "a") == 0.0
    assert metrics.token_f1("blue box", "red key") == 0.0
    # pred: you, take, the, key, . (5)  gold: you, take, the, red, key, . (6)  common 5
    p, r = 5 / 5, 5 / 6
    assert metrics.token_f1("You take the key.", "You take the red key.") == pytest.approx(2 * p * r / (p + r))
    assert metrics.tokenize("Done [SUCCESS]") == ["done", "[", "success", "]"]


def test_first_difference_names_the_word_where_a_prediction_leaves_the_gold():
    d = metrics.first_difference("-= Kitchen =-\nYou're in a kitchen.", "-= Pantry =-\nYou're in a pantry.")
    assert (d.at, d.gold, d.predicted, d.before) == (1, "Pantry", "Kitchen", "-=")
    # A twin that stops before a score line, and one that writes a line the game did not.
    d = metrics.first_difference("You take the key.", "You take the key.\n\nYour score has just gone up.")
    assert (d.at, d.gold, d.predicted, d.before) == (5, "\n", metrics.END, "take the key .")
    d = metrics.first_difference("You take the key.\n\nYour score", "You take the key.")
    assert (d.gold, d.predicted) == (metrics.END, "\n")
    assert metrics.first_difference(" You win. [SUCCESS]\n", "You win. [SUCCESS]") is None  # EM's strip()
    d = metrics.first_difference("You win.", "You win. [SUCCESS]")  # the marker is part of the text
    assert (d.at, d.gold, d.predicted) == (3, "[", metrics.END)
    assert metrics.first_difference("in 5 turns", "in 15 turns").gold == "15"  # numbers are whole units
    # Case and punctuation runs count; only spacing inside a line is invisible to the units.
    assert metrics.first_difference("you win", "You win").at == 0
    assert metrics.first_difference("Wait...", "Wait.").gold == "."
    d = metrics.first_difference("a  b", "a b")
    assert (d.at, d.gold, d.predicted) == (2, metrics.END, metrics.END)


def test_consistency_ratio_real_zero_is_undefined():
    assert metrics.consistency_ratio(0.5, 0.0) is None
    assert metrics.consistency_ratio(metrics.Rate(0, 10), metrics.Rate(0, 10)) is None
    assert metrics.cr_note(0.0) == "CR undefined: Real = 0 (the agent never wins the real env)"
    assert metrics.cr_note(metrics.Rate(0, 0)) == "CR undefined: no real games were played"
    assert metrics.cr_note(0.4) is None
    assert metrics.consistency_ratio(float("nan"), 0.5) is None or math.isnan(metrics.consistency_ratio(float("nan"), 0.5))
    assert metrics.consistency_ratio(metrics.Rate(9, 20), metrics.Rate(10, 20)) == pytest.approx(0.9)
    assert metrics.consistency_ratio(0.6, 0.5) == pytest.approx(1.2)  # CR may exceed 1
    with pytest.raises(ValueError, match="w2r=-0.1"):
        metrics.consistency_ratio(-0.1, 0.5)


def test_rates_carry_counts():
    rate = metrics.success_rate([True, False, True, True])
    assert (rate.wins, rate.n, rate.value) == (3, 4, 0.75)
    assert str(rate) == "75.0% (3/4)"
    assert metrics.success_rate([]).value is None
    assert str(metrics.success_rate([])) == "n/a (0 games)"
    with pytest.raises(ValueError, match="wins=5, n=3"):
        metrics.Rate(5, 3)
    pooled = metrics.pooled_consistency_ratio([(metrics.Rate(1, 2), metrics.Rate(2, 2)),
                                               (metrics.Rate(3, 8), metrics.Rate(2, 8))])
    assert pooled == pytest.approx((4 / 10) / (4 / 10))


def test_run_folder_writes_strict_json_and_markdown(tmp_path):
    run = BenchmarkRun("unit", config={"games": 2}, seeds=[0, 1], out=tmp_path / "r", argv=["wmgym", "bench", "x"])
    run.finish({"cr": float("nan"), "rate": metrics.Rate(1, 2)}, md_table(["a", "b"], [[None, 0.5], ["x|y", True]]))
    data = json.loads((tmp_path / "r" / "result.json").read_text())
    assert data["results"] == {"cr": None, "rate": {"rate": 0.5, "wins": 1, "n": 2}}
    meta = data["metadata"]
    assert meta["command"] == "wmgym bench x" and meta["seeds"] == [0, 1]
    assert meta["machine"]["cpu_count"] >= 1 and meta["versions"]["gymnasium"]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| n/a | 0.50 |" in md and "x\\|y" in md and "wmgym bench x" in md
    assert fmt(0.1234, percent=True) == "12.34"
    assert latest_result("unit", root=tmp_path) is None  # not under <root>/<bench>/
