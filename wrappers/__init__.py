"""Wrappers that connect a twin with its real env, and mix envs.

- :class:`RealAnchoring`: step the real env beside the twin and anchor the
  twin's chat to real observations every k steps / under a confidence.
- :class:`W2RReplay`: replay each twin episode's actions in the real env.
- :class:`MixedEnv`: sample the env per episode (Mix3/4/5 or any ids).
- :class:`ActionVerifier`: try irreversible actions in the twin first.
"""

from __future__ import annotations

from wmgym.wrappers.anchoring import RealAnchoring
from wmgym.wrappers.mixed import MIXES, MixedEnv
from wmgym.wrappers.verifier import ActionVerifier, first_word_in
from wmgym.wrappers.w2r import W2RReplay

__all__ = ["ActionVerifier", "MIXES", "MixedEnv", "RealAnchoring", "W2RReplay", "first_word_in"]
