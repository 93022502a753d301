"""ALFWorld-v0: ALFWorld's real text engine on games generated offline (or the official games).

Modules: :mod:`~wmgym.envs.alfworld.scenes` (floor plans from the package's
layouts), :mod:`~wmgym.envs.alfworld.problem` (task sampling by ALFRED's rules,
PDDL problems), :mod:`~wmgym.envs.alfworld.generator` (splits, lazy cached
generation, expert-checked games), :mod:`~wmgym.envs.alfworld.engine` (playing a
``.tw-pddl`` game with the engine's pitfalls fixed),
:mod:`~wmgym.envs.alfworld.grammar` (memoized text grammar),
:mod:`~wmgym.envs.alfworld.official` (``ALFWORLD_DATA``) and
:mod:`~wmgym.envs.alfworld.env` (the Gymnasium env). Nothing heavy is imported
here: textworld loads when a game is first played.
"""

from __future__ import annotations

from wmgym.envs.alfworld.problem import TASK_TYPES

__all__ = ["TASK_TYPES", "ALFWorldEnv"]


def __getattr__(name: str):
    if name == "ALFWorldEnv":
        from wmgym.envs.alfworld.env import ALFWorldEnv

        return ALFWorldEnv
    raise AttributeError(name)
