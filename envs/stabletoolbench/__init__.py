"""StableToolBench-v0: StableToolBench's API-server task over real tools (tau2's) or the official cached answers.

:mod:`~wmgym.envs.stabletoolbench.env` holds the env; nothing heavy is imported here.
"""

from __future__ import annotations

__all__ = ["StableToolBenchEnv"]


def __getattr__(name: str):
    if name == "StableToolBenchEnv":
        from wmgym.envs.stabletoolbench.env import StableToolBenchEnv

        return StableToolBenchEnv
    raise AttributeError(name)
