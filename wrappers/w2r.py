"""W2RReplay: replay each twin episode's actions in the real env (world-to-real).

Wraps a *twin*. It records the actions (and the twin's observations) of each
episode; when the episode ends (terminated or truncated) it replays the actions
in the real env on the same game (same seed, the twin episode's game and split
pinned in the reset options) and adds to that last step's ``info``:

- ``w2r_won``: the real env was won by the replayed actions (DESIGN's W2R);
- ``w2r_first_divergence``: index (0-based) of the first step where real and
  twin disagreed (observation after ``strip()``, or termination, or win),
  ``None`` if they agreed throughout;
- ``w2r_reward``: the real return; ``w2r_steps``: real steps played (the real
  episode may end before the actions run out).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from wmgym.wrappers.pairing import make_real, same_game, same_text


class W2RReplay(gym.Wrapper[str, str, str, str], gym.utils.RecordConstructorArgs):
    """Replay twin episodes in the real env at their end (see module docstring).

    Args:
        env: the twin (``gym.make("WM-<RealId>", model=...)``).
        real: the real env, or its id; default: the twin's own real env (which
            the twin only uses at reset).
    """

    def __init__(self, env: gym.Env, real: gym.Env | str | None = None):
        gym.utils.RecordConstructorArgs.__init__(self, real=real, _disable_deepcopy=True)
        gym.Wrapper.__init__(self, env)
        self.real, self._owns_real = make_real(env, real)
        self._seed: int | None = None
        self._options: dict[str, Any] = {}
        #: (action, twin observation, twin terminated, twin won) of the current episode.
        self.record: list[tuple[str, str, bool, bool]] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._seed, self._options = seed, same_game(options, info)
        self.record = []
        return obs, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.record.append((action, obs, bool(terminated), bool(info.get("won", False))))
        if terminated or truncated:
            info.update(self.replay())
        return obs, reward, terminated, truncated, info

    def replay(self) -> dict[str, Any]:
        """Replay the recorded actions in the real env; the ``w2r_*`` results."""
        self.real.reset(seed=self._seed, options=self._options)
        won, total, divergence, played = False, 0.0, None, 0
        for i, (action, twin_obs, twin_term, twin_won) in enumerate(self.record):
            obs, reward, terminated, truncated, info = self.real.step(action)
            played, total = i + 1, total + float(reward)
            won = bool(info.get("won", False))
            same = same_text(twin_obs, obs) and twin_term == bool(terminated) and twin_won == won
            if divergence is None and not same:
                divergence = i
            if terminated or truncated:
                break
        if divergence is None and played < len(self.record):  # real ended while the twin went on
            divergence = played
        return {"w2r_won": won, "w2r_first_divergence": divergence, "w2r_reward": total, "w2r_steps": played}

    def close(self) -> None:
        if self._owns_real:
            self.real.close()
        super().close()
