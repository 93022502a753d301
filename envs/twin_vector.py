"""``gym.make_vec("WM-<Env>-v0", num_envs=N)``: N twins stepped by ONE batched generation.

Each sub-env is a plain :class:`~wmgym.envs.twin.TwinEnv` (its own real env
for resets, its own ``np_random``), and all of them share one world model.
``step`` first answers what needs no model (autoresets, malformed actions),
then asks the world model's ``step_batch`` for every other row at once, and
hands each twin its row's result, so a sub-episode plays exactly as the
single twin ``gym.make("WM-<Env>-v0")`` would with the same seed and actions
(the hf backend's ``step_batch`` gives the greedy text of one-by-one steps).

Vector API of Gymnasium 1.x, as :class:`gymnasium.vector.SyncVectorEnv` has it:
observations a tuple of ``str``, rewards/terminations/truncations arrays,
infos with ``_key`` masks, ``reset(seed=int)`` seeds row ``i`` with
``seed + i``, ``options={"reset_mask": ...}``, and ``autoreset_mode``
``NEXT_STEP`` (default), ``SAME_STEP`` (final observation and info in
``info["final_obs"]`` / ``info["final_info"]``) or ``DISABLED``. Truncation
comes from ``max_episode_steps`` (the registered TimeLimit's, which
``make_vec`` passes), as for the single twin.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from wmgym.envs.twin import TwinEnv


class TwinVectorEnv(VectorEnv):
    """``num_envs`` twins of ``real_id`` sharing one world model; one ``step_batch`` per vector step.

    Args:
        num_envs: number of sub-episodes.
        real_id: the real env id (set by registration).
        max_episode_steps: truncate a sub-episode after this many steps (``None``: never).
        autoreset_mode: ``"NextStep"`` (default), ``"SameStep"`` or ``"Disabled"`` (or the enum).
        **twin_kwargs: what :class:`TwinEnv` takes (``model=``, ``backend=``, ``split=``, generation settings);
            the model is loaded once and shared.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, real_id: str, max_episode_steps: int | None = None,
                 autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP, **twin_kwargs: Any):
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise ValueError(f"autoreset_mode={autoreset_mode!r} is not supported; choose one of "
                             f"{[m.value for m in AutoresetMode]}") from None
        twin_kwargs.setdefault("share_model", True)
        first = TwinEnv(real_id, **twin_kwargs)
        # Every row uses the first row's loaded world model (a path or hub id is loaded once).
        rest = [TwinEnv(real_id, **{**twin_kwargs, "model": first.world_model}) for _ in range(int(num_envs) - 1)]
        self.envs: list[TwinEnv] = [first, *rest]
        self.world_model = first.world_model
        self.num_envs = int(num_envs)
        self.real_id = real_id
        self.max_episode_steps = max_episode_steps
        self.autoreset_mode = mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.render_mode = first.render_mode
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._obs: list[str] = [""] * self.num_envs
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._rewards = np.zeros(self.num_envs, dtype=np.float64)
        self._terminations = np.zeros(self.num_envs, dtype=np.bool_)
        self._truncations = np.zeros(self.num_envs, dtype=np.bool_)
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)
        self._started = False

    # ----------------------------------------------------------------- reset
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[tuple[str, ...], dict[str, Any]]:
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset got {len(seeds)} seeds for num_envs={self.num_envs}")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            mask = np.ones(self.num_envs, dtype=np.bool_)
        elif not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == (self.num_envs,)):
            raise ValueError(f"options['reset_mask'] must be a bool numpy array of shape ({self.num_envs},), "
                             f"got {mask!r}")
        infos: dict[str, Any] = {}
        for i in np.flatnonzero(mask):
            self._obs[i], info = self.envs[i].reset(seed=seeds[i], options=options or None)
            self._elapsed[i] = 0
            self._terminations[i] = self._truncations[i] = self._autoreset[i] = False
            infos = self._add_info(infos, info, int(i))
        self._started = True
        return tuple(self._obs), infos

    # ------------------------------------------------------------------ step
    def step(self, actions: Any) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        actions = list(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"step got {len(actions)} actions for num_envs={self.num_envs}")
        for i, action in enumerate(actions):  # before any row moves, so a bad batch changes nothing
            if not isinstance(action, str):
                raise TypeError(f"action {i} must be a str, got {type(action).__name__}: {action!r}")
        if self.autoreset_mode == AutoresetMode.DISABLED and self._autoreset.any():
            raise gym.error.ResetNeeded(f"rows {np.flatnonzero(self._autoreset).tolist()} ended; with "
                                        "autoreset_mode Disabled reset them (options={'reset_mask': ...}) first")
        resetting = self._autoreset.copy() if self.autoreset_mode == AutoresetMode.NEXT_STEP else \
            np.zeros(self.num_envs, dtype=np.bool_)
        stepping = [i for i in range(self.num_envs) if not resetting[i]]
        self._predict([i for i in stepping if not self.envs[i]._malformed(actions[i])], actions)
        infos: dict[str, Any] = {}
        for i in range(self.num_envs):
            env = self.envs[i]
            if resetting[i]:
                self._obs[i], info = env.reset()
                self._elapsed[i] = 0
                self._rewards[i], self._terminations[i], self._truncations[i] = 0.0, False, False
            else:
                self._obs[i], self._rewards[i], self._terminations[i], truncated, info = env.step(actions[i])
                self._elapsed[i] += 1
                self._truncations[i] = truncated or (self.max_episode_steps is not None
                                                     and self._elapsed[i] >= self.max_episode_steps)
                if self.autoreset_mode == AutoresetMode.SAME_STEP and (self._terminations[i] or self._truncations[i]):
                    infos = self._add_info(infos, {"final_obs": self._obs[i], "final_info": info}, i)
                    self._obs[i], info = env.reset()
                    self._elapsed[i] = 0
            infos = self._add_info(infos, info, i)
        self._autoreset = np.logical_or(self._terminations, self._truncations)
        return (tuple(self._obs), self._rewards.copy(), self._terminations.copy(), self._truncations.copy(), infos)

    def _predict(self, rows: list[int], actions: list[str]) -> None:
        """One batched generation for the rows whose action reaches the model; each twin gets its result."""
        if not rows:
            return
        handles = [self.envs[i].handle for i in rows]
        results = self.world_model.step_batch(handles, [actions[i].strip() for i in rows])
        for i, result in zip(rows, results):
            self.envs[i].next_model_step = result

    # ------------------------------------------------------------------ rest
    def render(self) -> tuple[Any, ...]:
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()

    def __repr__(self) -> str:
        return f"TwinVectorEnv({self.real_id!r}, num_envs={self.num_envs}, autoreset_mode={self.autoreset_mode.value})"
