"""The metrics of docs/design.md, as plain functions on hand-checkable inputs.

- :func:`exact_match`: teacher-forced single-step EM. Prediction and gold are
  compared after ``strip()``, the success marker included (a twin that forgets
  ``[SUCCESS]`` on the winning step is wrong).
- :func:`token_f1`: bag-of-tokens F1 (SQuAD style) on lower-cased word and
  punctuation tokens, so a near miss scores between 0 and 1.
- :func:`first_difference`: where a wrong prediction leaves the gold text (word
  index, gold word, predicted word), so a report can say *what* a twin gets
  wrong ("the room after '-='", "a score line or the end") and not only how often.
- :func:`json_fields`: for JSON answers (the tool envs), whether the prediction parses and which keys match.
- :func:`success_rate`: a rate with its counts (``wins/n``), never a bare float.
- :func:`consistency_ratio`: CR = W2R / Real. With Real = 0 the ratio is
  undefined: it is ``None`` and :func:`cr_note` says why.

The training helpers (``training/evaluate.py``) import these, so the project
has one definition of each metric.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import re
from collections.abc import Iterable, Sequence

from wmgym.worldmodels.protocol import SUCCESS_MARKER, target_text

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def exact_match(prediction: str, gold: str) -> bool:
    """Whether ``prediction`` equals ``gold`` after ``strip()`` (marker included)."""
    return prediction.strip() == gold.strip()


def gold_text(observation: str, won: bool) -> str:
    """The assistant text a perfect twin writes for a step (the marker on a winning step)."""
    return target_text(observation, won)


def json_fields(prediction: str, gold: str) -> dict | None:
    """For a gold answer that is a JSON object (tool envs: ``{"error": ..., "response": ...}``), whether the
    prediction parses as one and which of the gold's top-level keys it gets right: ``{"parses", "keys",
    "matched", "gold_keys"}`` (``keys``: the share of gold keys whose values the prediction equals). ``None`` for other gold
    texts. The success marker is taken off both first."""
    import json

    def load(text: str):
        try:
            value = json.loads(text.replace(SUCCESS_MARKER, "").strip())
        except (json.JSONDecodeError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    ref = load(gold)
    if ref is None:
        return None
    pred = load(prediction)
    matched = sorted(k for k in ref if pred is not None and k in pred and pred[k] == ref[k])
    return {"parses": pred is not None, "keys": len(matched) / len(ref) if ref else float(pred == ref),
            "matched": matched, "gold_keys": sorted(ref)}


def tokenize(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens (``"[SUCCESS]"`` → ``[, success, ]``)."""
    return _TOKEN_RE.findall(text.lower())


#: Words, runs of punctuation and line breaks, case kept: the units :func:`first_difference` counts in.
_DIFF_RE = re.compile(r"\w+|[^\w\s]+|\n")
#: What :func:`first_difference` reports where one text ends before the other.
END = "(end)"


@dataclasses.dataclass(frozen=True)
class FirstDifference:
    """Where a prediction first leaves its gold text (both ``strip()``-ed, in :data:`_DIFF_RE` units)."""

    at: int
    """Index of the first differing unit (0 = the first word already differs)."""
    gold: str
    """The gold unit there (``"(end)"``: the prediction goes on where the gold text ends)."""
    predicted: str
    """The predicted unit there (``"(end)"``: the prediction stops early)."""
    before: str
    """Up to four gold units before it, joined by spaces, for reading."""


def first_difference(prediction: str, gold: str) -> FirstDifference | None:
    """The first unit where ``prediction`` and ``gold`` differ, or ``None`` when they match (after ``strip()``).

    Units are words, punctuation runs and line breaks, case kept: ``"-= Kitchen =-"`` against ``"-= Pantry =-"``
    differs at unit 1, ``Kitchen`` -> ``Pantry``. Texts that differ only in spacing inside a line are reported at
    the unit after the common ones, with both units equal."""
    pred, ref = prediction.strip(), gold.strip()
    if pred == ref:
        return None
    p, g = _DIFF_RE.findall(pred), _DIFF_RE.findall(ref)
    i = 0
    while i < len(p) and i < len(g) and p[i] == g[i]:
        i += 1
    before = " ".join(g[max(0, i - 4):i])  # raw units, as ``gold`` and ``predicted``: reports escape them
    return FirstDifference(i, g[i] if i < len(g) else END, p[i] if i < len(p) else END, before)


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 between prediction and gold (1.0 when both are empty)."""
    pred, ref = tokenize(prediction), tokenize(gold)
    if not pred and not ref:
        return 1.0
    if not pred or not ref:
        return 0.0
    common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def has_marker(text: str) -> bool:
    """Whether an assistant text ends with the success marker."""
    return text.strip().endswith(SUCCESS_MARKER.strip())


@dataclasses.dataclass
class Rate:
    """A success rate with its counts."""

    wins: int
    n: int

    def __post_init__(self) -> None:
        if self.n < 0 or not 0 <= self.wins <= max(self.n, 0):
            raise ValueError(f"a rate needs 0 <= wins <= n, got wins={self.wins}, n={self.n}")

    @property
    def value(self) -> float | None:
        """``wins / n``, or ``None`` for an empty sample."""
        return self.wins / self.n if self.n else None

    def to_dict(self) -> dict[str, float | int | None]:
        return {"rate": self.value, "wins": self.wins, "n": self.n}

    def __str__(self) -> str:
        return "n/a (0 games)" if self.value is None else f"{100 * self.value:.1f}% ({self.wins}/{self.n})"


def success_rate(outcomes: Iterable[bool]) -> Rate:
    """The rate of ``True`` among ``outcomes``, with its counts."""
    values = [bool(o) for o in outcomes]
    return Rate(sum(values), len(values))


def consistency_ratio(w2r: float | Rate | None, real: float | Rate | None) -> float | None:
    """CR = W2R / Real (success rates or :class:`Rate` objects).

    Returns ``None`` when Real is 0 or missing: the agent never wins the real
    env, so there is nothing for the twin to be consistent with (see
    :func:`cr_note`). CR can exceed 1 when twin-planned actions win games the
    agent loses when it plays the real env itself.
    """
    w = w2r.value if isinstance(w2r, Rate) else w2r
    r = real.value if isinstance(real, Rate) else real
    if w is None or r is None or r == 0 or (isinstance(r, float) and math.isnan(r)):
        return None
    if r < 0 or w < 0:
        raise ValueError(f"success rates must be >= 0, got w2r={w}, real={r}")
    return w / r


def cr_note(real: float | Rate | None) -> str | None:
    """Why CR is undefined for this Real rate, or ``None`` when it is defined."""
    r = real.value if isinstance(real, Rate) else real
    if r is None:
        return "CR undefined: no real games were played"
    if r == 0:
        return "CR undefined: Real = 0 (the agent never wins the real env)"
    return None


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean, ``None`` for an empty sequence."""
    return sum(values) / len(values) if values else None


def pooled_consistency_ratio(pairs: Iterable[tuple[Rate, Rate]]) -> float | None:
    """CR over several (W2R, Real) rate pairs, pooling their counts."""
    w_wins = w_n = r_wins = r_n = 0
    for w2r, real in pairs:
        w_wins, w_n, r_wins, r_n = w_wins + w2r.wins, w_n + w2r.n, r_wins + real.wins, r_n + real.n
    if not w_n or not r_n:
        return None
    return consistency_ratio(Rate(w_wins, w_n), Rate(r_wins, r_n))
