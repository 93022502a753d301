"""Every results file records the init_context version of the envs its run used."""

from __future__ import annotations

import dataclasses
import json

from bench_checks import check_context_versions

from wmgym.benchmarks.common import BenchmarkRun, context_versions
from wmgym.envs import env_class


@dataclasses.dataclass
class _Config:
    envs: list[str]
    model: str = "WM-ALFWorld-v0-is-no-id"


def test_run_records_the_context_versions_of_its_envs(tmp_path):
    run = BenchmarkRun("unit", config=_Config(envs=["TextWorld-v0"]), out=tmp_path / "r", argv=["wmgym", "x"],
                       envs=["WM-ALFWorld-v0"])
    run.finish({}, "nothing measured")
    data = json.loads((tmp_path / "r" / "result.json").read_text())
    expected = {"ALFWorld-v0": env_class("ALFWorld-v0").context_version,
                "TextWorld-v0": env_class("TextWorld-v0").context_version}
    assert data["metadata"]["context_versions"] == expected  # a twin id counts as its real env
    check_context_versions(data)
    report = (tmp_path / "r" / "report.md").read_text()
    assert f"- context versions: ALFWorld-v0 {expected['ALFWorld-v0']}, TextWorld-v0 {expected['TextWorld-v0']}" \
        in report


def test_context_versions_reads_ids_anywhere_in_a_config():
    config = {"pairs": [("SciWorld-v0", 3)], "nested": {"env": "WM-TextWorld-v0"}, "other": "TextWorld"}
    assert context_versions(config) == {"SciWorld-v0": env_class("SciWorld-v0").context_version,
                                        "TextWorld-v0": env_class("TextWorld-v0").context_version}
    assert context_versions({"results": "results/"}) == {}
