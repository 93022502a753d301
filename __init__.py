"""wmgym: Gymnasium text environments and their LLM world-model twins.

``import wmgym`` registers every environment id, so ``gym.make("TextWorld-v0")``
and ``gym.make("WM-TextWorld-v0")`` work right after it.
"""

from __future__ import annotations

from wmgym.envs import register_envs, registered_ids

__version__ = "0.1.0"

register_envs()

__all__ = ["register_envs", "registered_ids", "__version__"]
