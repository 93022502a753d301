"""Packaging: everything under `wmgym`, nothing generic in site-packages, the CLI lists every id."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import wmgym

ROOT = Path(__file__).resolve().parents[1]


def test_no_generic_top_level_modules(tmp_path):
    code = ("import importlib.util as u, sys; "
            "bad = [m for m in ('envs', 'training', 'worldmodels', 'wrappers', 'benchmarks', 'cli', 'tests') "
            "if u.find_spec(m) is not None]; print(bad); sys.exit(1 if bad else 0)")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)


def test_every_subpackage_is_packaged(monkeypatch):
    """setup.py finds the sub-packages (a new env folder ships without a packaging edit), and not tests/."""
    import runpy

    import setuptools

    captured: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.update(kw))
    monkeypatch.chdir(ROOT.parent)  # the package list must not depend on the working directory
    runpy.run_path(str(ROOT / "setup.py"))
    assert captured["package_dir"] == {"wmgym": "."}
    on_disk = {"wmgym"} | {
        "wmgym." + ".".join(p.parent.relative_to(ROOT).parts)
        for p in ROOT.rglob("__init__.py")
        if p.parent != ROOT and p.relative_to(ROOT).parts[0] not in ("tests", "docs", "build")
        and not any(s.startswith(".") for s in p.parts)
    }
    assert {"wmgym.envs.textworld", "wmgym.envs.sciworld", "wmgym.cli"} <= on_disk
    assert set(captured["packages"]) == on_disk


def test_cpu_extra_pins_torch():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "torch==2.13.0" in cfg["options.extras_require"]["cpu"]


def test_cli_lists_every_registered_id():
    out = subprocess.run([sys.executable, "-m", "wmgym.cli", "envs"], capture_output=True, text=True, check=True).stdout
    for env_id in wmgym.registered_ids():
        assert env_id in out


def test_cli_unknown_env_suggests(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "wmgym.cli", "collect", "--env", "TextWorl-v0", "--out",
                           str(tmp_path / "x.jsonl")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Did you mean" in proc.stderr and "Traceback" not in proc.stderr
