"""``wmgym serve``: serve a world model over an OpenAI-compatible HTTP API."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_serve(args: argparse.Namespace) -> int:
    from wmgym.worldmodels.hf import HFWorldModel
    from wmgym.worldmodels.loading import default_model_dir, train_default_command
    from wmgym.worldmodels.server import make_server

    if (args.model is None) == (args.env is None):
        raise ValueError("give exactly one of --model DIR_OR_HUB_ID or --env ID (serves that env's default model)")
    model = args.model
    if args.env is not None:
        model = default_model_dir(args.env)
        if not (model / "config.json").is_file():
            raise FileNotFoundError(f"no world model for {args.env} at {model}; train it with "
                                    f"`{train_default_command(args.env)}`")
    generation = {"max_new_tokens": args.max_new_tokens}
    if args.max_context_tokens:
        generation["max_context_tokens"] = args.max_context_tokens
    wm = HFWorldModel(model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                      **generation)
    name = args.served_model_name or Path(str(model)).name
    httpd = make_server(wm, name, host=args.host, port=args.port, max_episodes=args.max_episodes,
                        max_batch=args.max_batch)
    print(f"serving {name!r} ({model}) at http://{args.host}:{httpd.server_port}/v1  (Ctrl-C stops)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a world model over an OpenAI-compatible chat-completions API")
    p.add_argument("--model", help="model directory or hub id")
    p.add_argument("--env", help="serve this real env's default world model (WMGYM_HOME/models/ID)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000, help="port (0 picks a free one)")
    p.add_argument("--served-model-name", help="name clients send as 'model' (default: the directory name)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16")
    p.add_argument("--max-new-tokens", type=int, default=512, help="default cap when a request sets no max_tokens")
    p.add_argument("--max-context-tokens", type=int, default=None, help="prompt + generation cap (default: model's)")
    p.add_argument("--max-episodes", type=int, default=64, help="chats whose KV caches are kept for reuse")
    p.add_argument("--max-batch", type=int, default=16, help="most requests generated together")
    p.add_argument("--trust-remote-code", action="store_true", help="run the checkpoint's own code (off by default)")
    p.set_defaults(func=cmd_serve)
