"""`make bench` / `python -m bench`: run every benchmark once, write bench/results.json and bench/REPORT.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nexa_cli.catalogue_cmds import build
from nexa_cli.supervisor import ProcessSpec, Supervisor, free_port
from nexa_common import catalogue
from nexa_common.settings import default_cache_dir, physical_cores

from . import engines, media, peers, pool, router_overhead, speech, text
from .harness import Stack
from .report import render

HERE = Path(__file__).resolve().parent
AUDIO_FILE = HERE.parent.parent / "shared" / "data" / "jfk.flac"


def _section(results: dict[str, Any], out: Path, name: str, measure: Callable[[], Any]) -> None:
    """Run one benchmark; a failure is recorded in its place and the others still run. The results
    so far are written after each one, so an interrupted run keeps what it measured."""
    print(name, flush=True)
    try:
        results[name] = measure()
    except Exception as exc:
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"  {name} failed: {results[name]['error']}", flush=True)
    _write(results, out)


def _write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    try:
        report = render(results)
    except (KeyError, TypeError) as exc:  # a section failed or is still to come: keep what there is
        failed = [
            f"- {name}: {value['error']}"
            for name, value in results.items()
            if isinstance(value, dict) and "error" in value
        ]
        report = "\n".join(
            [
                "# Benchmark report (incomplete)",
                "",
                f"The full report could not be drawn (missing: {exc}); failed sections:",
                "",
                *(failed or ["- none"]),
                "",
                "The figures measured so far are in bench/results.json.",
                "",
            ]
        )
    (out / "REPORT.md").write_text(report)


def _stop_on_sigterm() -> None:
    # SIGTERM's default kills the process at once, leaving the services it started running;
    # as an exception it unwinds through the Supervisor, which stops them.
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument(
        "--report-only", action="store_true", help="draw REPORT.md again from the results.json in --out"
    )
    parser.add_argument(
        "--only-peers",
        action="store_true",
        help="run only the peers section (llama-server, llama-cpp-python's server, ours) into the existing results",
    )
    args = parser.parse_args()
    if args.report_only:
        (args.out / "REPORT.md").write_text(render(json.loads((args.out / "results.json").read_text())))
        return
    if args.only_peers:
        _stop_on_sigterm()
        _peers_only(args.out, 2 if args.quick else args.repetitions, args.quick)
        return
    reps = 2 if args.quick else args.repetitions
    _stop_on_sigterm()
    out: Path = args.out
    cache = default_cache_dir()
    threads = physical_cores()

    tiny = catalogue.lookup("tiny-sd")
    assert tiny is not None
    if not catalogue.is_present(tiny, cache):
        build(tiny, cache)
    gguf = catalogue.resolve("smollm2", cache).path
    whisper = catalogue.resolve("whisper-tiny.en", cache).path
    voice = catalogue.resolve("piper-joe", cache).path
    pipeline = catalogue.resolve("tiny-sd", cache).path

    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {
            "cpus_physical": threads,
            "cpus_logical": os.cpu_count(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "repetitions": reps,
        "load_average_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as logs, Supervisor(Path(logs)) as supervisor:
        stack = Stack(supervisor)
        text_url = stack.start("text", "nexa_text", "NEXA_TEXT_", {"NEXA_TEXT_MODEL": "smollm2"})
        audio_url = stack.start("audio", "nexa_audio", "NEXA_AUDIO_", {"NEXA_AUDIO_MODEL": "whisper-tiny.en"})
        image_url = stack.start("image", "nexa_image", "NEXA_IMAGE_", {"NEXA_IMAGE_MODEL": "tiny-sd"})
        router_url = stack.start(
            "router",
            "nexa_router",
            "NEXA_ROUTER_",
            {"NEXA_ROUTER_TEXT_URL": text_url, "NEXA_ROUTER_AUDIO_URL": audio_url, "NEXA_ROUTER_IMAGE_URL": image_url},
        )

        from nexa_audio.settings import Settings as AudioSettings
        from nexa_text.gguf_info import trained_context
        from nexa_text.settings import Settings as TextSettings

        text_settings, audio_settings = TextSettings(), AudioSettings()
        # The context the text service gives this model by default (its trained length, capped).
        n_ctx = text_settings.context_size(trained_context(gguf))

        def single_stream() -> dict[str, Any]:
            direct = text.DirectLlama(gguf, n_ctx, text_settings.threads)
            try:
                return text.single_stream(direct, text_url, router_url, reps)
            finally:
                direct.llm.close()  # its threads and memory are not needed any more

        def against_peers() -> dict[str, Any]:
            # Concurrency and a busy machine: our default and one-sequence engines beside
            # llama-server and llama-cpp-python's server (processes of their own).
            return peers.measure(supervisor, stack, gguf, text_settings.threads, n_ctx, reps, args.quick)

        def audio() -> dict[str, Any]:
            figures = {
                "compute_type": audio_settings.resolved_compute_type(),
                "cpu_threads": audio_settings.threads,
                "vad": audio_settings.vad,
            }
            return media.audio(whisper, AUDIO_FILE, figures, audio_url, router_url, reps)

        def overhead() -> dict[str, Any]:
            port = free_port()
            spec = ProcessSpec(
                "instant-upstream", [sys.executable, "-m", "bench.instant_upstream", "--port", str(port)], port
            )
            upstream = supervisor.start(spec)
            supervisor.wait_ready(upstream, 30)
            overhead_router = stack.start(
                "router-overhead", "nexa_router", "NEXA_ROUTER_", {"NEXA_ROUTER_TEXT_URL": upstream.spec.url}
            )
            return router_overhead.measure(upstream.spec.url, overhead_router)

        _section(results, out, "text", single_stream)
        _section(results, out, "peers", against_peers)
        _section(
            results, out, "pool", lambda: pool.measure(stack, cache, n_ctx, text_settings.threads, max(2, reps // 2))
        )
        _section(
            results,
            out,
            "engines",
            lambda: engines.compare(gguf, n_ctx, text_settings.threads, max(2, reps // 2)),
        )
        _section(results, out, "audio", audio)
        # The same audio service speaks too (its default voice, piper-joe).
        _section(results, out, "speech", lambda: speech.measure(voice, audio_url, router_url, reps))
        _section(results, out, "image", lambda: media.image(pipeline, threads, image_url, router_url, reps))
        results["memory_peak_rss_mb"] = stack.memory()
        _section(results, out, "router_overhead", overhead)

    # Another engine's comparison, in processes of its own (after the stack above has stopped).
    from . import onnx

    _section(results, out, "onnx", lambda: onnx.compare(cache, reps))
    results["load_average_at_end"] = os.getloadavg()
    _write(results, out)
    print(f"wrote {out / 'results.json'} and {out / 'REPORT.md'}")


def _peers_only(out: Path, reps: int, quick: bool) -> None:
    """`make bench-peers`: the peers section alone, written into the last run's results."""
    path = out / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    results.setdefault("when", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    results["peers_when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["peers_load_average_at_start"] = os.getloadavg()
    from nexa_text.gguf_info import trained_context
    from nexa_text.settings import Settings as TextSettings

    settings = TextSettings()
    gguf = catalogue.resolve("smollm2", default_cache_dir()).path
    with tempfile.TemporaryDirectory() as logs, Supervisor(Path(logs)) as supervisor:
        stack = Stack(supervisor)
        _section(
            results,
            out,
            "peers",
            lambda: peers.measure(
                supervisor, stack, gguf, settings.threads, settings.context_size(trained_context(gguf)), reps, quick
            ),
        )
    results["peers_load_average_at_end"] = os.getloadavg()
    _write(results, out)
    print(f"wrote {path} and {out / 'REPORT.md'}")


if __name__ == "__main__":
    main()
