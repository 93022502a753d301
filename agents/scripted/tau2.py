"""An observation-only scripted agent for the tool envs (Tau2-*-v0; StableToolBench-v0 plays its one request).

It reads the admissible calls at reset (what a real env and its twin both report), makes each call whose tool
only reads (``get_``, ``find_``, ``search_``, ``list_``, ``check_``, ``can_``, ``calculate``, ...) once, in
the listed order, then sends the listed final message. It writes nothing, so it wins only tasks that need no
database change: a floor that plays a twin's answers exactly as the real tools' ones.
"""

from __future__ import annotations

import json
from typing import Any

from wmgym.agents.base import ScriptedAgent

#: Tool-name prefixes of calls that only read.
READ_PREFIXES = ("get_", "find_", "search_", "list_", "check_", "can_", "calculate", "think", "run_speed_test",
                 "show_", "is_", "ls", "pwd", "cat", "grep", "du", "wc", "tail", "diff", "display_", "view_")


def call_name(action: str) -> str | None:
    """The tool a JSON call names, or ``None`` (not a call: a message, or not JSON)."""
    try:
        value = json.loads(action)
    except json.JSONDecodeError:
        return None
    return value.get("name") if isinstance(value, dict) and isinstance(value.get("name"), str) else None


class Tau2Agent(ScriptedAgent):
    """Read-only calls from the reset's list, then the listed final message (see module docstring)."""

    name = "scripted"

    def start(self, observation: str, info: dict[str, Any]) -> None:
        calls = [c for c in self.commands if (call_name(c) or "").startswith(READ_PREFIXES)]
        finals = [c for c in self.commands if call_name(c) is None]
        self.plan = calls + finals[:1]

    def update(self, action: str | None, observation: str, info: dict[str, Any]) -> None:
        pass  # the plan does not depend on the answers

    def decide(self, observation: str, info: dict[str, Any]) -> str:
        if self.plan:
            return self.plan.pop(0)
        return json.dumps({"message": "Done."})
