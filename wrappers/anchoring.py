"""RealAnchoring: keep a twin honest by stepping the real env beside it.

Wraps a *twin*. Every action goes to the twin and to its real env (same game:
both are reset with the same seed and the real episode's game pinned). The
twin's last observation in its chat is replaced by the real one (*anchoring*)

- every ``every`` steps (steps ``every``, ``2 * every``, ...),
- when the twin's confidence (``info["wm_confidence"]``, mean token
  log-probability) falls under ``min_confidence``,
- when the real episode ends (the twin has nothing left to anchor to later),

so later predictions start from reality. On an anchored step the wrapper
returns what the real env returned (observation, reward, termination, its
``info`` keys on top of the twin's); otherwise the twin's step unchanged.

Every step's ``info`` also carries ``anchored`` (bool), ``anchor_reason``
(``"every"``, ``"confidence"``, ``"real_end"`` or ``None``),
``real_observation``, ``twin_observation`` (the twin's prediction, before any
anchoring), ``real_reward``, ``real_won`` and ``agreed`` (twin and real
observations equal after ``strip()`` and the same win flag), which is what a
consistency measurement needs (share of steps with ``agreed``).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym

from wmgym.wrappers.pairing import make_real, same_game, same_text, twin_core


class RealAnchoring(gym.Wrapper[str, str, str, str], gym.utils.RecordConstructorArgs):
    """Anchor a twin to its real env every ``every`` steps and/or under ``min_confidence``.

    Args:
        env: the twin (``gym.make("WM-<RealId>", model=...)``).
        real: the real env, or its id; default: the twin's own real env (which
            the twin only uses at reset, so no second engine starts).
        every: anchor at every ``every``-th step (``1`` = every step).
        min_confidence: anchor when the twin's mean token log-prob is below this.
    """

    def __init__(
        self,
        env: gym.Env,
        real: gym.Env | str | None = None,
        *,
        every: int | None = None,
        min_confidence: float | None = None,
    ):
        gym.utils.RecordConstructorArgs.__init__(
            self, real=real, every=every, min_confidence=min_confidence, _disable_deepcopy=True
        )
        gym.Wrapper.__init__(self, env)
        if every is None and min_confidence is None:
            raise ValueError("RealAnchoring needs every=K (anchor every K steps) and/or min_confidence=C "
                             "(anchor when the twin's mean token log-prob < C)")
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        if min_confidence is not None and not math.isfinite(float(min_confidence)):
            raise ValueError(f"min_confidence must be a finite log-probability, got {min_confidence!r}")
        twin_core(env)  # fail now if env is not a twin
        self.real, self._owns_real = make_real(env, real)
        self._shared = real is None
        self.every = every
        self.min_confidence = None if min_confidence is None else float(min_confidence)
        self.steps = 0
        #: Anchorings in the current episode.
        self.anchors = 0
        self._real_done = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        if self._shared:  # the twin's reset resets its real env: both start the same game
            obs, info = self.env.reset(seed=seed, options=options)
            real_obs, real_info = obs, info
        else:
            real_obs, real_info = self.real.reset(seed=seed, options=options)
            obs, info = self.env.reset(seed=seed, options=same_game(options, real_info))
        if info.get("game_id") != real_info.get("game_id"):
            raise RuntimeError(f"twin and real env reset to different games: {info.get('game_id')!r} vs "
                               f"{real_info.get('game_id')!r}")
        self.steps, self.anchors, self._real_done = 0, 0, False
        info["real_observation"] = real_obs
        return obs, info

    def _reason(self, info: dict[str, Any], real_ended: bool) -> str | None:
        if self.every is not None and self.steps % self.every == 0:
            return "every"
        confidence = info.get("wm_confidence")
        if self.min_confidence is not None and confidence is not None and confidence < self.min_confidence:
            return "confidence"
        if real_ended:
            return "real_end"
        return None

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if self._real_done:  # stepped past the end of the real episode: nothing to anchor to
            info.update(anchored=False, anchor_reason=None, real_observation=None, twin_observation=obs,
                        real_reward=None, real_won=None, agreed=None)
            return obs, reward, terminated, truncated, info
        real_obs, real_reward, real_term, real_trunc, real_info = self.real.step(action)
        self._real_done = real_term or real_trunc
        real_won = bool(real_info.get("won", False))
        report = {
            "real_observation": real_obs,
            "twin_observation": obs,
            "real_reward": float(real_reward),
            "real_won": real_won,
            "agreed": same_text(obs, real_obs) and bool(info.get("won", False)) == real_won,
        }
        reason = self._reason(info, self._real_done)
        if reason is None:
            info.update(report, anchored=False, anchor_reason=None)
            return obs, reward, terminated, truncated, info
        twin_core(self.env).anchor(real_obs, won=real_won)
        self.anchors += 1
        merged = {**info, **real_info, **report, "anchored": True, "anchor_reason": reason}
        return real_obs, float(real_reward), bool(real_term), bool(truncated or real_trunc), merged

    def close(self) -> None:
        if self._owns_real:
            self.real.close()
        super().close()

