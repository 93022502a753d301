"""``wmgym bench report``: the latest results of every benchmark on one Markdown page.

``python -m wmgym.benchmarks.report [--results results] [--out DIR]``

Reads ``<results>/<bench>/*/result.json`` (for fidelity and consistency the
newest run that covers each env, so runs for different envs combine), and
writes ``report.md`` with a summary table (our EM and CR beside the published
Word2World 7B figures), every benchmark's tables, and their plots (copied next
to the page so it can be moved as one folder). Benchmarks not run yet are
listed with the command that runs them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from wmgym.benchmarks.common import BenchmarkRun, RESULTS_ROOT, add_common_args, fmt, md_table
from wmgym.benchmarks.published import PUBLISHED_CR, PUBLISHED_EM

RUN_HINTS = {
    "fidelity": "wmgym bench fidelity --env TextWorld-v0 --episodes 40",
    "consistency": "wmgym bench consistency --env TextWorld-v0 --games 20",
    "scaling": "wmgym bench scaling --env TextWorld-v0 --sizes 32,64,128",
    "throughput": "wmgym bench throughput --env TextWorld-v0",
    "latency": "wmgym bench latency",
}


def load_runs(root: Path, bench: str) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable run of ``bench`` under ``root``, newest first."""
    runs = []
    for path in (root / bench).glob("*/result.json"):
        try:
            runs.append((path.stat().st_mtime, path.parent, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError):
            continue
    return [(p, d) for _, p, d in sorted(runs, key=lambda t: t[0], reverse=True)]


def newest_per_env(runs: list[tuple[Path, dict[str, Any]]], keep=lambda data: True
                   ) -> dict[str, tuple[Path, dict[str, Any], dict[str, Any]]]:
    """For each env, the newest run (among those ``keep`` accepts) that measured it:
    ``env -> (run dir, run data, env results)``."""
    out: dict[str, tuple[Path, dict[str, Any], dict[str, Any]]] = {}
    for path, data in runs:
        if not keep(data):
            continue
        for env, res in data.get("results", {}).get("envs", {}).items():
            out.setdefault(env, (path, data, res))
    return out


def _real_only(data: dict[str, Any]) -> bool:
    return bool((data.get("config") or {}).get("real_only"))


class Page:
    """Collects sections and copies figures next to the report."""

    def __init__(self, out: Path, root: Path):
        self.out, self.root, self.parts, self.sources = out, root, [], []

    def figure(self, run_dir: Path, name: str, bench: str) -> str:
        src = run_dir / name
        if not src.exists():
            return ""
        dest = f"{bench}-{run_dir.name}-{name}"
        shutil.copyfile(src, self.out / dest)
        return f"![{bench}: {name}]({dest})"

    def source(self, bench: str, run_dir: Path, data: dict[str, Any]) -> str:
        meta = data.get("metadata", {})
        self.sources.append([bench, str(run_dir), meta.get("started", ""), f"`{meta.get('command', '')}`"])
        return f"_from `{run_dir}` ({meta.get('started', '?')})_"


def _fidelity(page: Page, envs: dict) -> dict[str, float | None]:
    ems: dict[str, float | None] = {}
    if not envs:
        return ems
    rows, figs = [], []
    for env, (path, data, res) in sorted(envs.items()):
        ems[env] = res.get("em")
        rows.append([env, fmt(res.get("em"), percent=True), fmt(PUBLISHED_EM.get(env)), fmt(res.get("f1"), 3),
                     res.get("steps"), res.get("episodes"), data["results"].get("models", {}).get(env, ""),
                     page.source("fidelity", path, data)])
        for f in data.get("figures", []):
            if f not in figs and "em_per_step" in f:
                figs.append(page.figure(path, f, "fidelity"))
    page.parts += ["## Fidelity: teacher-forced single-step EM", "",
                   md_table(["env", "EM (%)", "published 7B EM (%)", "token F1", "steps", "episodes", "model",
                             "source"], rows), "", *sorted(set(figs)), ""]
    return ems


def _consistency(page: Page, envs: dict) -> dict[str, float | None]:
    crs: dict[str, float | None] = {}
    if not envs:
        return crs
    rows, figs, anchoring = [], [], []
    for env, (path, data, res) in sorted(envs.items()):
        crs[env] = res.get("pooled_cr")
        src = page.source("consistency", path, data)
        for agent, a in res.get("agents", {}).items():
            rows.append([env, agent, _rate(a["real"]), _rate(a["wm"]), _rate(a["w2r"]), fmt(a.get("cr")),
                         a.get("cr_note") or ""])
        rows.append([env, "**pooled**", "", "", "", fmt(res.get("pooled_cr")),
                     f"published 7B CR {fmt(PUBLISHED_CR.get(env))}; {src}"])
        for f in data.get("figures", []):
            if env in f:
                figs.append(page.figure(path, f, "consistency"))
        study = data["results"].get("anchoring", {}).get(env)
        if study:
            for agent, pts in study.items():
                anchoring.append((env, agent, {p["every"]: p.get("agreement") for p in pts}))
    page.parts += ["## Consistency: Real / WM / W2R / CR", "",
                   md_table(["env", "agent", "Real", "WM", "W2R", "CR", "note"], rows), ""]
    if anchoring:
        periods = sorted({k for _, _, pts in anchoring for k in pts}, key=lambda k: -1 if k is None else k)
        heads = ["env", "agent"] + ["no anchoring" if k is None else f"every {k}" for k in periods]
        rows_a = [[env, agent] + [fmt(pts.get(k), 3) if k in pts else "-" for k in periods]
                  for env, agent, pts in anchoring]
        page.parts += ["### Anchoring: share of steps where the twin's prediction equals the real observation", "",
                       md_table(heads, rows_a), ""]
    page.parts += [*figs, ""]
    return crs


def _skill(page: Page, envs: dict) -> None:
    """The agents' success in the real env alone (``--real-only`` runs): their spread of skill."""
    if not envs:
        return
    agents = sorted({a for _, _, res in envs.values() for a in res.get("agents", {})},
                    key=lambda a: (a == "random", a))
    rows = []
    for env, (path, data, res) in sorted(envs.items()):
        rows.append([env] + [_rate(res["agents"][a]["real"]) if a in res.get("agents", {}) else "-" for a in agents]
                    + [page.source("consistency", path, data)])
    page.parts += ["## Agents in the real envs (skill spread)", "",
                   md_table(["env", *agents, "source"], rows), ""]


def _rate(r: dict[str, Any] | None) -> str:
    if not r or r.get("rate") is None:
        return "n/a"
    return f"{100 * r['rate']:.1f}% ({r['wins']}/{r['n']})"


def _scaling(page: Page, runs: list) -> None:
    """The newest scaling run per (env, training budget, presets, sizes): different budgets or axes are
    separate curves, not replacements."""
    seen: set[tuple] = set()
    for path, data in runs:
        cfg = data.get("config") or {}
        key = (data["results"].get("env"), cfg.get("max_steps"), cfg.get("epochs") if not cfg.get("max_steps") else None,
               tuple(cfg.get("presets") or ()), tuple(cfg.get("sizes") or ()))
        if key in seen:
            continue
        seen.add(key)
        budget = f"{key[1]} optimizer steps per model" if key[1] else f"{key[2]} epochs per model"
        pts = data["results"].get("points", [])
        rows = [[p["preset"], p["trajectories"], f"{p.get('sft_parameters') or 0:,}", fmt(p.get("em"), percent=True),
                 fmt(p.get("f1"), 3), fmt(p.get("cr"))] for p in pts]
        page.parts += [f"## Scaling: {key[0]} ({budget})", page.source("scaling", path, data), "",
                       md_table(["preset", "trajectories", "parameters", "EM (%)", "token F1", "CR"], rows), "",
                       *[page.figure(path, f, "scaling") for f in data.get("figures", [])], ""]


def _per_env(runs: list) -> list:
    """The newest run of each env (runs record their env as ``results["env"]``)."""
    out, seen = [], set()
    for path, data in runs:
        env = (data.get("results") or {}).get("env")
        if env not in seen:
            seen.add(env)
            out.append((path, data))
    return out


def _generic(page: Page, bench: str, runs: list, title: str) -> None:
    for path, data in _per_env(runs):
        env = (data.get("results") or {}).get("env")
        _one(page, bench, path, data, f"{title}: {env}" if env else title)


def _one(page: Page, bench: str, path: Path, data: dict[str, Any], title: str) -> None:
    page.parts += [f"## {title}", page.source(bench, path, data), ""]
    res = data.get("results", {})
    table = res.get("table") if isinstance(res, dict) else None
    if table and isinstance(table, dict) and table.get("headers"):
        page.parts += [md_table(table["headers"], table["rows"]), ""]
    page.parts += [f"Full report: `{path / 'report.md'}`", "",
                   *[page.figure(path, f, bench) for f in data.get("figures", [])], ""]


def _legacy_throughput(page: Page, root: Path) -> bool:
    """The first throughput version wrote ``results/throughput/<env>.json`` (flat); show those too."""
    files = sorted((root / "throughput").glob("*.json"))
    rows = []
    for f in files:
        try:
            d = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for k, v in d.items():
            if k.startswith("steps_per_s") or k.startswith("generation"):
                rows.append([d.get("env", f.stem), k, fmt(v)])
    if rows:
        page.parts += ["## Real-env throughput (first version)", "", md_table(["env", "measure", "value"], rows), ""]
    return bool(rows)


def build(root: Path, out: Path) -> tuple[str, dict[str, Any]]:
    """The report page text and a summary dict."""
    page = Page(out, root)
    fid = newest_per_env(load_runs(root, "fidelity"))
    cons_runs = load_runs(root, "consistency")
    cons = newest_per_env(cons_runs, keep=lambda d: not _real_only(d))
    skill = newest_per_env(cons_runs, keep=_real_only)
    body_start = len(page.parts)
    ems = _fidelity(page, fid)
    crs = _consistency(page, cons)
    _skill(page, skill)
    _scaling(page, load_runs(root, "scaling"))
    _generic(page, "throughput", load_runs(root, "throughput"), "Throughput: real envs and twins")
    legacy = _legacy_throughput(page, root)
    _generic(page, "latency", load_runs(root, "latency"), "World-model step latency")
    known = {"fidelity", "consistency", "scaling", "throughput", "latency", "report"}
    others = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in known) if root.exists() else []
    for name in others:
        _generic(page, name, load_runs(root, name), f"Other: {name}")
    envs = sorted(set(ems) | set(crs) | set(PUBLISHED_EM))
    summary_rows = [[e, fmt(ems.get(e), percent=True), fmt(PUBLISHED_EM.get(e)), fmt(crs.get(e)),
                     fmt(PUBLISHED_CR.get(e))] for e in envs]
    missing = [b for b in RUN_HINTS if not load_runs(root, b) and not (b == "throughput" and legacy)]
    head = ["Our world models' figures beside the published Word2World 7B SFT figures. EM: teacher-forced "
            "single-step exact match (%). CR: consistency ratio W2R / Real, pooled over agents.", "",
            md_table(["env", "EM (ours)", "EM (7B)", "CR (ours)", "CR (7B)"], summary_rows), ""]
    if missing:
        head += ["Not run yet: " + "; ".join(f"{b} (`{RUN_HINTS[b]}`)" for b in missing), ""]
    page.parts[body_start:body_start] = head
    if page.sources:
        page.parts += ["## Sources", "", md_table(["benchmark", "run", "started", "command"], page.sources)]
    summary = {"em": ems, "cr": crs, "missing": missing, "sources": page.sources}
    return "\n".join(page.parts), summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wmgym bench report", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=str(RESULTS_ROOT), help="results root to gather from")
    add_common_args(p)
    args = p.parse_args(argv)
    bench = BenchmarkRun("report", config={"results": args.results}, seeds=None,
                         out=args.out or (Path(args.results) / "report" / (args.run_name or "latest")),
                         argv=None if argv is None else ["wmgym", "bench", "report", *argv])
    for old in bench.path.glob("*.png"):  # figures of an earlier report in the same folder
        old.unlink()
    text, summary = build(Path(args.results), bench.path)
    bench.figures = sorted(f.name for f in bench.path.glob("*.png"))
    bench.finish(summary, text, title="wmgym benchmark report")
    print(f"report: {bench.path / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
