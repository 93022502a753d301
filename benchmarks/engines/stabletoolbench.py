"""StableToolBench-v0: how each source and variant of request is answered (error-free share), and episodes/s.

``python -m wmgym.benchmarks.engines.stabletoolbench [--every 10] [--split test] [--data-dir PATH]``
(or ``wmgym bench engine --env StableToolBench-v0``), one process, one core: every ``--every``-th game of the
split is reset and its request (the expert's: a gold call or its noisy variant) sent; the share answered without
error per source (tau2, bfcl, or the official cache) and variant (expert, drop, mistype), and the time per
episode (reset and step: the real tool replays the earlier gold calls).

Results go to ``results/stabletoolbench/<timestamp>/`` (``result.json`` + ``report.md``) or ``--out``.
"""

from __future__ import annotations

import argparse
import collections
import time
from typing import Any

import gymnasium as gym

from wmgym.benchmarks.common import BenchmarkRun, add_common_args, md_table

ENV_ID = "StableToolBench-v0"


def run(every: int, split: str, data_dir: str | None) -> dict[str, Any]:
    env = gym.make(ENV_ID, split=split, **({"data_dir": data_dir} if data_dir else {}))
    games = env.unwrapped._games(split)
    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    start = time.perf_counter()
    played = 0
    for game in range(0, len(games), every):
        _, info = env.reset(seed=game, options={"game": game})
        _, reward, *_ = env.step(env.unwrapped.expert_action())
        source = "official" if data_dir else games[game][0]
        key = f"{source}/{info['variant']}"
        counts[key][0] += int(reward == 1.0)
        counts[key][1] += 1
        played += 1
    elapsed = time.perf_counter() - start
    env.close()
    return {"answered_without_error": {k: {"ok": v[0], "n": v[1]} for k, v in sorted(counts.items())},
            "games": len(games), "played": played, "seconds_per_episode": elapsed / max(1, played)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wmgym.benchmarks.engines.stabletoolbench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=10, help="play every N-th game of the split")
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--data-dir", default=None, help="StableToolBench's official folder (default: real tools)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.every < 1:
        raise ValueError(f"--every must be >= 1, got {args.every}")
    bench = BenchmarkRun("stabletoolbench", config=vars(args), seeds={"base": args.seed}, out=args.out,
                         envs=[ENV_ID], run_name=args.run_name,
                         argv=None if argv is None else ["python", "-m", "wmgym.benchmarks.engines.stabletoolbench",
                                                         *argv])
    results = run(args.every, args.split, args.data_dir)
    rows = [[k, f"{v['ok']}/{v['n']}"] for k, v in results["answered_without_error"].items()]
    markdown = "\n\n".join([
        f"{results['played']} of {results['games']} {args.split} games, {results['seconds_per_episode']:.3f} s per "
        "episode (reset and the request).",
        md_table(["source/variant", "answered without error"], rows)])
    path = bench.finish(results, markdown, title="StableToolBench-v0 answers")
    for cells in rows:
        print("  ".join(cells))
    print(f"{results['seconds_per_episode']:.3f} s per episode; results in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
