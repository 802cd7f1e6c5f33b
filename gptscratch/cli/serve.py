"""`gptscratch serve`: an OpenAI-compatible HTTP server over one model (library: gptscratch.serve).

FastAPI and uvicorn come with the `serve` extra (`pipx install 'gptscratch[serve]'`) and are imported only here,
when the command runs. The server binds 127.0.0.1 unless --host widens it; with --api-key (or GPTSCRATCH_API_KEY)
every /v1 request must carry `Authorization: Bearer KEY`. The address it listens on is logged to stderr as
`serving NAME at http://HOST:PORT/v1` (with --port 0 the system picks a free port). SIGTERM or Ctrl-C stops
accepting connections, finishes the requests in flight, then exits 0.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Annotated, Optional

import typer

from gptscratch.cli.render import announce_device, log, warn
from gptscratch.errors import UsageError

Opt = typer.Option
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(
    checkpoint: Annotated[Optional[str], typer.Argument(help="Run folder, checkpoint folder, run or pretrained name (default: the most recent run).")] = None,
    host: Annotated[str, Opt(help="Address to listen on; 0.0.0.0 opens it to the network (use --api-key then).")] = "127.0.0.1",
    port: Annotated[int, Opt(help="Port to listen on; 0 picks a free one (logged).")] = 8000,
    api_key: Annotated[Optional[str], Opt("--api-key", envvar="GPTSCRATCH_API_KEY", help="Require `Authorization: Bearer KEY` on every /v1 request.")] = None,
    model_name: Annotated[Optional[str], Opt("--model-name", help="The model id clients ask for (default: the checkpoint's name).")] = None,
    max_batch: Annotated[int, Opt(help="Most outputs decoded together (requests are batched step by step).")] = 8,
    max_queue: Annotated[int, Opt(help="Most requests waiting for a place in the batch; beyond it the answer is 429.")] = 64,
    chat_template: Annotated[str, Opt(help="Chat template: auto (the model's own), gptscratch, or a Jinja file.")] = "auto",
    dtype: Annotated[str, Opt(help="Inference precision: auto, bf16 or fp32.")] = "auto",
) -> None:
    """Serve a model over OpenAI's API: /v1/models, /v1/completions, /v1/chat/completions (streaming too)."""
    try:
        import uvicorn

        from gptscratch.serve.app import create_app
    except ImportError as exc:
        raise UsageError(f"`gptscratch serve` needs the serve extra ({exc.name or exc} is missing): "
                         "pipx install 'gptscratch[serve]' or pip install 'gptscratch[serve]'") from None
    from gptscratch.generation.precision import INFERENCE_DTYPES

    if max_batch < 1 or max_queue < 1:
        raise UsageError("--max-batch and --max-queue must be ≥ 1")
    if not 0 <= port < 65536:
        raise UsageError(f"--port must be in 0..65535, got {port}")
    if dtype not in INFERENCE_DTYPES:
        raise UsageError(f"unknown --dtype {dtype!r}; choose one of {', '.join(INFERENCE_DTYPES)}")
    if api_key is not None and not api_key.strip():
        raise UsageError("--api-key is empty; give a key, or leave the option out")
    listener = _bind(host, port)       # before loading: a taken port fails in a second, not after a minute
    served = _load(checkpoint, chat_template, dtype, model_name)
    app = create_app(served, api_key=api_key, max_batch=max_batch, max_queue=max_queue)
    if host not in LOOPBACK and api_key is None:
        warn(f"listening on {host} without --api-key: anyone who can reach this machine can use the model")
    bound_host, bound_port = listener.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    log(f"serving {served.model_id} at http://{shown}:{bound_port}/v1 (max batch {max_batch}, queue {max_queue}"
        f"{', API key required' if api_key else ''}); Ctrl-C stops")
    config = uvicorn.Config(app, log_config=_log_config(uvicorn), timeout_graceful_shutdown=60,
                            ws="none", lifespan="on")
    # uvicorn catches SIGTERM/SIGINT, shuts down gracefully, then raises the signal again for the handler that
    # was there before it: a stop that was asked for is a normal end (exit 0), not a death by signal.
    stopped = []
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda number, frame: stopped.append(number))
    uvicorn.Server(config).run(sockets=[listener])
    log("server stopped" + (f" ({signal.Signals(stopped[0]).name})" if stopped else ""))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port or --host") from None
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _load(checkpoint: str | None, chat_template: str, dtype: str, model_name: str | None):
    from gptscratch.chat.template import chat_format, needs_chat_tokens
    from gptscratch.generation.precision import load_for_inference
    from gptscratch.serve.app import Served

    loaded, chosen = load_for_inference(checkpoint, announce_device(), dtype)
    tokenizer = loaded.tokenizer
    fmt = None if needs_chat_tokens(tokenizer, chat_template) else chat_format(tokenizer, chat_template)
    name = model_name or _model_id(checkpoint, loaded.path)
    log(f"checkpoint: {loaded.path} ({chosen}; chat template: {fmt.name if fmt else 'none, completions only'})")
    return Served(loaded.model, tokenizer, fmt, name)


def _model_id(checkpoint: str | None, path: Path) -> str:
    """A run or pretrained name as given; for a folder, the run's name (not `latest`/`best`)."""
    from gptscratch.checkpoint import RUN_CHECKPOINTS

    if checkpoint and not Path(checkpoint).expanduser().exists():
        return checkpoint
    return path.parent.name if path.name in RUN_CHECKPOINTS else path.name


def _log_config(uvicorn) -> dict:
    """uvicorn's logging with every handler on stderr (stdout is for data; a server writes none)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for handler in config["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
    return config
