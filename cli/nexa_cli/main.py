"""`nexa`: serve, pull and list models, and see or change which models a running server has loaded.

nexa server [-h] [--host HOST] [--port PORT] [--reload] [--local] [--gpu] [onnx] MODEL...
nexa pull NAME...
nexa list
nexa ps | nexa load NAME [--pin] [--keep-alive 5m] | nexa unload NAME   (of a running server)
"""

from __future__ import annotations

import argparse
import sys

from nexa_common.catalogue import ModelError

from . import catalogue_cmds, docker_mode, local, operator_cmds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nexa", description="Local, OpenAI-compatible AI inference server.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{server,pull,list,ps,load,unload}")

    server = sub.add_parser(
        "server",
        help="serve models behind one OpenAI-compatible API",
        usage="nexa server [-h] [--host HOST] [--port PORT] [--reload] [--local] [--gpu] [onnx] MODEL...",
        description="Start the API for the given models (catalogue names or local paths; with none, the "
        "embedded defaults: text and audio). Several models of one modality share its service, which loads "
        "them on demand; the first named is the one requests without `model` get. By default GGUF models "
        "are run; put `onnx` before the model names to run ONNX models.",
    )
    server.add_argument("--host", default="127.0.0.1", help="host to bind the server to (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=8000, help="port to bind the server to (default 8000)")
    server.add_argument("--reload", action="store_true", help="enable automatic reloading on code changes")
    server.add_argument(
        "--local",
        action="store_true",
        help="run the services as local processes (the default where Docker with compose v2 is not available)",
    )
    server.add_argument(
        "--gpu", action="store_true", help="docker mode: the CUDA images on NVIDIA GPUs (compose.cuda.yaml)"
    )
    server.add_argument("--nctx", type=int, default=None, help="context size of a text model (default 2048)")
    server.add_argument("models", nargs="*", metavar="MODEL", help="catalogue name or local model path")

    pull = sub.add_parser("pull", help="download (or build) models into the cache")
    pull.add_argument("names", nargs="+", metavar="NAME", help="catalogue name (see `nexa list`)")

    sub.add_parser("list", help="the model catalogue and what is present on this machine")

    def running(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--url", help=f"the server (default $NEXA_URL, else {operator_cmds.DEFAULT_URL})")
        return command

    running("ps", "the models a running server has loaded, with their memory")
    load = running("load", "load a model on a running server now")
    load.add_argument("name", help="catalogue name or alias (see /v1/models)")
    load.add_argument("--pin", action="store_true", help="keep it loaded until `nexa unload`")
    load.add_argument("--keep-alive", help="how long it stays loaded once idle (e.g. 30s, 5m, 1h; -1: for ever)")
    unload = running("unload", "unload a model from a running server")
    unload.add_argument("name", help="catalogue name or alias")
    return parser


def parse_server_models(models: list[str]) -> tuple[bool, list[str]]:
    """The seed's `nexa server onnx MODEL`: a leading `onnx` selects the ONNX backends."""
    if models and models[0] == "onnx":
        return True, models[1:]
    return False, models


def serve(args: argparse.Namespace, models: list[str], onnx: bool) -> int:
    """Docker mode when Docker and compose v2 are available (and neither --local nor --reload is given)."""
    if not args.local:
        if args.reload:
            reason: str | None = "--reload runs local processes"
        elif onnx:
            reason = "the container images carry no ONNX Runtime backend"
        else:
            reason = docker_mode.unavailable_reason()
        if reason is None:
            return docker_mode.serve(models, host=args.host, port=args.port, gpu=args.gpu, onnx=onnx, n_ctx=args.nctx)
        print(f"nexa: {reason}; using local mode (the services run as processes on this machine).", file=sys.stderr)
    if args.gpu:
        print("nexa: --gpu applies to docker mode only; local mode uses the GPU the installed packages support.")
    return local.serve(models, host=args.host, port=args.port, reload=args.reload, onnx=onnx, n_ctx=args.nctx)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "server":
            onnx, models = parse_server_models(args.models)
            code = serve(args, models, onnx)
        elif args.command == "pull":
            code = max(catalogue_cmds.pull(name) for name in args.names)
        elif args.command == "ps":
            code = operator_cmds.ps(args.url)
        elif args.command == "load":
            code = operator_cmds.load(args.url, args.name, args.pin, args.keep_alive)
        elif args.command == "unload":
            code = operator_cmds.unload(args.url, args.name)
        else:
            code = catalogue_cmds.list_models()
    except ModelError as exc:
        print(f"nexa: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)
