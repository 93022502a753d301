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
    report = (path / "report.md").read_text()
    assert report.startswith("# ") and "## Run" in report and meta["command"] in report
    assert data["figures"], "a benchmark run should plot something"
    for fig in data["figures"]:
        assert (path / fig).read_bytes()[:8] == PNG_MAGIC, fig
        assert f"]({fig})" in report
    return data
