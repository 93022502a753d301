"""MixedEnv: one env that plays a different member env each episode.

``MixedEnv("mix3")`` samples ALFWorld-v0, SciWorld-v0 or TextWorld-v0 at every
``reset``, with the given weights, from its own ``np_random``; so a seeded mix
plays the same sequence of envs and games every run. ``info["active_env"]``
names the member that plays the current episode.

Real and twin ids alike: a preset name with the ``wm-`` prefix (``"wm-mix3"``)
or ``twin=True`` maps every member ``X`` to its twin ``WM-X``; a list of ids
may mix real and twin ids freely.

To wrap members (say, W2R replay of each twin), pass made envs:
``MixedEnv([W2RReplay(gym.make("WM-ALFWorld-v0")), W2RReplay(gym.make("WM-TextWorld-v0"))])``.

Members are made lazily, the first time they are drawn, so a mix of five envs
does not start five engines (or load five models) per copy under a vector env.
Every member must have the observation and action spaces of wmgym's text envs;
a member whose spaces differ is refused when it is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from wmgym.envs import TWIN_PREFIX, twin_id
from wmgym.envs.spaces import action_space, observation_space

#: The preset mixes (Word2World's Mix3/4/5), by real id.
MIXES: dict[str, tuple[str, ...]] = {
    "mix3": ("ALFWorld-v0", "SciWorld-v0", "TextWorld-v0"),
    "mix4": ("ALFWorld-v0", "SciWorld-v0", "TextWorld-v0", "WebShop-v0"),
    "mix5": ("ALFWorld-v0", "SciWorld-v0", "TextWorld-v0", "WebShop-v0", "StableToolBench-v0"),
}


def resolve_members(envs: str | Sequence[str | gym.Env], twin: bool = False) -> list[str | gym.Env]:
    """The member list of a mix: a preset name expanded, ``twin`` applied to ids.

    Raises:
        ValueError: unknown preset name, empty list, or a duplicate id.
    """
    if isinstance(envs, str):
        name = envs.lower()
        if name.startswith(TWIN_PREFIX.lower()):
            name, twin = name[len(TWIN_PREFIX):], True
        if name not in MIXES:
            valid = sorted(MIXES) + sorted(TWIN_PREFIX.lower() + m for m in MIXES)
            raise ValueError(f"unknown mix {envs!r}; valid mixes: {valid} (or a list of env ids)")
        members: list[str | gym.Env] = list(MIXES[name])
    else:
        members = list(envs)
    if not members:
        raise ValueError("a MixedEnv needs at least one member env")
    members = [twin_id(m) if twin and isinstance(m, str) else m for m in members]
    ids = [m for m in members if isinstance(m, str)]
    duplicates = sorted({m for m in ids if ids.count(m) > 1})
    if duplicates:
        raise ValueError(f"duplicate member ids {duplicates}; give each env once and use weights instead")
    return members


def check_registered(ids: Sequence[str]) -> None:
    """Raise a clear error naming every id that is not registered."""
    missing = [i for i in ids if i not in gym.registry]
    if missing:
        known = sorted(i for i in gym.registry if i.startswith(TWIN_PREFIX) or i.endswith("-v0"))
        raise gym.error.UnregisteredEnv(
            f"MixedEnv members not registered: {missing}. Registered text env ids: {known}. "
            "Build the missing envs first, or mix only registered ids (e.g. MixedEnv(['TextWorld-v0']))."
        )


def _normalise_weights(weights: Sequence[float] | Mapping[str, float] | None, names: list[str]) -> np.ndarray:
    if weights is None:
        return np.full(len(names), 1.0 / len(names))
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(f"weights name unknown members {unknown}; members are {names}")
        weights = [float(weights.get(n, 0.0)) for n in names]
    w = np.asarray(list(weights), dtype=np.float64)
    if w.shape != (len(names),):
        raise ValueError(f"got {w.size} weights for {len(names)} members {names}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {list(w)}")
    return w / w.sum()


class MixedEnv(gym.Env[str, str], gym.utils.RecordConstructorArgs):
    """Samples the member env per episode (see module docstring).

    Args:
        envs: a preset (``"mix3"``, ``"mix4"``, ``"mix5"``, or with the twin
            prefix ``"wm-mix3"``...), or a list of registered ids and/or
            already-made envs.
        weights: sampling weights, one per member (a list in member order, or
            a mapping id -> weight); default uniform. Normalised to sum to 1.
        twin: use the twin ``WM-X`` of every member id ``X``.
        member_kwargs: extra ``gym.make`` kwargs for single members, by id
            (e.g. a different ``model`` per twin).
        **make_kwargs: ``gym.make`` kwargs for every member (``split``,
            ``model``, ``max_episode_steps``, ...).

    Raises:
        gymnasium.error.UnregisteredEnv: a member id is not registered (all
            missing ids are named).
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(
        self,
        envs: str | Sequence[str | gym.Env],
        weights: Sequence[float] | Mapping[str, float] | None = None,
        *,
        twin: bool = False,
        member_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        **make_kwargs: Any,
    ):
        gym.utils.RecordConstructorArgs.__init__(
            self, envs=envs, weights=weights, twin=twin, member_kwargs=member_kwargs, _disable_deepcopy=True,
            **make_kwargs,
        )
        members = resolve_members(envs, twin)
        check_registered([m for m in members if isinstance(m, str)])
        self.member_ids: list[str] = [m if isinstance(m, str) else _env_name(m) for m in members]
        twin = twin or (isinstance(envs, str) and envs.lower().startswith(TWIN_PREFIX.lower()))
        if twin:  # let weights and member_kwargs name the real ids of a twin mix
            if isinstance(weights, Mapping):
                weights = {twin_id(k): v for k, v in weights.items()}
            member_kwargs = {twin_id(k): v for k, v in (member_kwargs or {}).items()}
        self.weights = _normalise_weights(weights, self.member_ids)
        member_kwargs = dict(member_kwargs or {})
        unknown = sorted(set(member_kwargs) - set(self.member_ids))
        if unknown:
            raise ValueError(f"member_kwargs name unknown members {unknown}; members are {self.member_ids}")
        self._make_kwargs = {mid: {**make_kwargs, **member_kwargs.get(mid, {})} for mid in self.member_ids}
        self.observation_space = observation_space()
        self.action_space = action_space()
        self.render_mode = make_kwargs.get("render_mode")
        self._envs: list[gym.Env | None] = [None if isinstance(m, str) else self._checked(m) for m in members]
        self.active: int | None = None

    # ----------------------------------------------------------------- members
    def _checked(self, env: gym.Env) -> gym.Env:
        if env.observation_space != self.observation_space or env.action_space != self.action_space:
            raise ValueError(
                f"member {_env_name(env)} has spaces {env.observation_space} / {env.action_space}, but a MixedEnv "
                f"needs identical spaces across members: {self.observation_space} / {self.action_space}"
            )
        return env

    def member(self, index: int) -> gym.Env:
        """Member ``index``, made on first use."""
        env = self._envs[index]
        if env is None:
            env = self._checked(gym.make(self.member_ids[index], **self._make_kwargs[self.member_ids[index]]))
            self._envs[index] = env
        return env

    @property
    def active_env(self) -> gym.Env:
        """The member playing the current episode."""
        if self.active is None:
            raise gym.error.ResetNeeded("call reset() before using the active member")
        return self.member(self.active)

    def _draw(self) -> tuple[int, int]:
        """The next episode's member index and member seed, from ``np_random``."""
        index = int(self.np_random.choice(len(self.member_ids), p=self.weights))
        # The member's own seed comes from our generator, so the whole mix is reproducible from `seed`.
        return index, int(self.np_random.integers(2**31 - 1))

    # ---------------------------------------------------------------- contract
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.active, member_seed = self._draw()
        obs, info = self.active_env.reset(seed=member_seed, options=options)
        info["active_env"] = self.member_ids[self.active]
        return obs, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.active_env.step(action)
        info["active_env"] = self.member_ids[self.active]
        return obs, reward, terminated, truncated, info

    def expert_action(self) -> str | None:
        """The active member's expert command (so scripted policies work through the mix)."""
        expert = getattr(self.active_env.unwrapped, "expert_action", None)
        return expert() if expert is not None else None

    def render(self) -> str | None:
        return None if self.active is None else self.active_env.render()

    def close(self) -> None:
        for env in self._envs:
            if env is not None:
                env.close()
        super().close()

    def __repr__(self) -> str:
        return f"MixedEnv({self.member_ids}, weights={[round(float(w), 4) for w in self.weights]})"


def _env_name(env: gym.Env) -> str:
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__
