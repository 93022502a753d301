"""ActionVerifier: try an irreversible action in the twin before the real env.

Wraps a *real* env. Beside it the wrapper keeps a world-model chat that mirrors
the real episode (started from the real ``init_context``, every real step
appended with ``observe``). When the agent sends an action the predicate calls
irreversible (``eat`` in TextWorld's cooking games, WebShop's ``buy``), the
chat is forked and the twin predicts the outcome:

- it predicts success (the success marker): the action goes to the real env,
  ``info["verified"] = True``;
- else the real env is left untouched and the step returns the twin's
  predicted observation, reward 0, not terminated, ``info["verified"] =
  False`` (the agent can do something else first).

Each verification costs one unit of ``budget`` (per episode); once it is spent,
irreversible actions go through unverified and ``info["budget_exhausted"]``
says so. ``info["verified"]`` is ``None`` on steps that were not verified.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym

from wmgym.worldmodels.base import WMStep, WorldModel
from wmgym.worldmodels.protocol import target_text
from wmgym.wrappers.pairing import world_model_of


def first_word_in(*verbs: str) -> Callable[[str], bool]:
    """A predicate true for actions whose first word is one of ``verbs`` (case-insensitive)."""
    if not verbs or not all(isinstance(v, str) and v.strip() for v in verbs):
        raise ValueError(f"first_word_in needs non-empty verb strings, got {verbs!r}")
    wanted = frozenset(v.strip().lower() for v in verbs)

    def predicate(action: str) -> bool:
        words = action.strip().lower().split(maxsplit=1)
        return bool(words) and words[0] in wanted

    predicate.__name__ = f"first_word_in{tuple(sorted(wanted))}"
    return predicate


def predicts_success(step: WMStep) -> bool:
    """The default acceptance test: the twin marks the step as a win."""
    return step.success


class ActionVerifier(gym.Wrapper[str, str, str, str], gym.utils.RecordConstructorArgs):
    """Let irreversible actions reach the real env only when the twin predicts success.

    Args:
        env: the real env.
        twin: its twin env (``gym.make("WM-<RealId>")``) or a world model
            following :class:`~wmgym.worldmodels.base.WorldModel`.
        irreversible: a predicate on actions, or a list of verbs (first word
            of the action), e.g. ``["eat"]``.
        budget: verifications allowed per episode (``None``: no limit).
        accept: when a prediction lets the action through (default: the
            twin predicts success).
    """

    def __init__(
        self,
        env: gym.Env,
        twin: gym.Env | WorldModel,
        irreversible: Callable[[str], bool] | Sequence[str],
        budget: int | None = None,
        accept: Callable[[WMStep], bool] | None = None,
    ):
        gym.utils.RecordConstructorArgs.__init__(
            self, twin=twin, irreversible=irreversible, budget=budget, accept=accept, _disable_deepcopy=True
        )
        gym.Wrapper.__init__(self, env)
        if isinstance(irreversible, str):
            raise TypeError(f"irreversible must be a predicate or a list of verbs, got the string {irreversible!r}; "
                            f"write irreversible=[{irreversible!r}]")
        if not callable(irreversible):
            irreversible = first_word_in(*irreversible)
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
            raise ValueError(f"budget must be an int >= 0 or None (no limit), got {budget!r}")
        self.twin = twin
        self.irreversible = irreversible
        self.budget = budget
        self.accept = accept or predicts_success
        self._wm: WorldModel | None = None
        self._handle: int | None = None
        self._info: dict[str, Any] = {}
        #: Verifications spent / actions blocked in the current episode.
        self.used = 0
        self.blocked = 0

    @property
    def world_model(self) -> WorldModel:
        if self._wm is None:
            self._wm = world_model_of(self.twin)
        return self._wm

    @property
    def budget_left(self) -> int | None:
        return None if self.budget is None else self.budget - self.used

    def _end_chat(self) -> None:
        if self._handle is not None:
            self.world_model.end(self._handle)
            self._handle = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._end_chat()
        self._handle = self.world_model.start(info["init_context"])
        self.used = self.blocked = 0
        self._info = dict(info)
        return obs, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._handle is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        irreversible = isinstance(action, str) and bool(self.irreversible(action))
        checked = irreversible and (self.budget is None or self.used < self.budget)
        prediction: WMStep | None = None
        if checked:
            self.used += 1
            prediction = self._predict(action)
            if not self.accept(prediction):
                self.blocked += 1
                info = {**self._info, **self._flags(True, False, False), "twin_observation": prediction.observation,
                        "wm_confidence": prediction.confidence}
                return prediction.observation, 0.0, False, False, info
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.world_model.observe(self._handle, action, target_text(obs, bool(info.get("won", False))))
        self._info = dict(info)
        info.update(self._flags(irreversible, True if checked else None, irreversible and not checked))
        if prediction is not None:
            info["twin_observation"] = prediction.observation
        return obs, reward, terminated, truncated, info

    def _predict(self, action: str) -> WMStep:
        fork = self.world_model.fork(self._handle)
        try:
            return self.world_model.step(fork, action)
        finally:
            self.world_model.end(fork)

    def _flags(self, irreversible: bool, verified: bool | None, exhausted: bool) -> dict[str, Any]:
        return {"irreversible": irreversible, "verified": verified, "budget_exhausted": exhausted,
                "verify_budget_left": self.budget_left}

    def close(self) -> None:
        if self._wm is not None:
            self._end_chat()
        super().close()
