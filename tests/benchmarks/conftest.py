"""Fixtures of the benchmark tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def textworld_gold_file(tmp_path_factory, textworld_expert_episodes) -> str:
    """The two expert episodes the tiny TextWorld model was trained on, as a trajectory file."""
    from wmgym.training.trajectories import TrajectoryWriter

    path = tmp_path_factory.mktemp("gold") / "tw-gold.jsonl"
    with TrajectoryWriter(path) as w:
        for ep in textworld_expert_episodes:
            w.write(ep)
    return str(path)
