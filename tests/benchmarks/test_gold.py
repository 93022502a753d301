"""Gold episodes: spread over a split's games, collected once and cached."""

from __future__ import annotations

import pytest


def test_spread_games_covers_the_split():
    from wmgym.benchmarks.gold import spread_games

    assert spread_games(10, 20) == list(range(10))
    assert spread_games(1000, 4) == [0, 250, 500, 750]
    assert len(spread_games(1017, 200)) == 200


@pytest.mark.slow
def test_gold_episodes_are_collected_once_and_cached(tmp_path):
    from wmgym.benchmarks.gold import gold_episodes

    eps = gold_episodes("ALFWorld-v0", 3, policies=("expert",), split="valid_unseen", cache_dir=tmp_path)
    assert [e.index for e in eps] == [0, 66, 133] and all(e.won for e in eps)
    assert {e.split for e in eps} == {"valid_unseen"} and {e.seed for e in eps} == {0, 66, 133}
    (cache,) = tmp_path.glob("*.jsonl")
    size = cache.stat().st_size
    again = gold_episodes("ALFWorld-v0", 3, policies=("expert",), split="valid_unseen", cache_dir=tmp_path)
    assert [e.to_json() for e in again] == [e.to_json() for e in eps] and cache.stat().st_size == size
