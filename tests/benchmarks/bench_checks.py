"""Checks shared by the benchmark tests (a module of its own: ``conftest`` names clash across test folders)."""

from __future__ import annotations

import json
from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_run_folder(path: Path, bench: str) -> dict:
    """Assert a run folder holds well-formed result.json, report.md and PNGs; return the JSON."""
    data = json.loads((path / "result.json").read_text())
    assert data["benchmark"] == bench
    meta = data["metadata"]
    for key in ("command", "seeds", "versions", "machine", "started", "duration_s"):
        assert key in meta, key
    assert meta["machine"]["cpu_count"] >= 1 and meta["machine"]["torch_threads"] == 1
    assert meta["versions"]["torch"] and meta["versions"]["gymnasium"]
    check_context_versions(data)
    report = (path / "report.md").read_text()
    assert report.startswith("# ") and "## Run" in report and meta["command"] in report
    assert data["figures"], "a benchmark run should plot something"
    for fig in data["figures"]:
        assert (path / fig).read_bytes()[:8] == PNG_MAGIC, fig
        assert f"]({fig})" in report
    return data


def check_context_versions(data: dict) -> None:
    """Assert the metadata records the ``context_version`` of every env id the run's config names."""
    from wmgym.envs import env_class, registered_ids

    recorded = data["metadata"]["context_versions"]
    config = json.dumps(data["config"])
    named = {i.removeprefix("WM-") for i in registered_ids() if f'"{i}"' in config}
    assert named <= set(recorded), (named, recorded)
    for env_id, version in recorded.items():
        assert version == env_class(env_id).context_version, env_id
