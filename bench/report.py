"""The markdown report: each figure beside its baseline, and where each target stands."""

from __future__ import annotations

from typing import Any

from . import peers_report


def _f(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def _spread(s: dict[str, float], digits: int = 1) -> str:
    return f"{_f(s['median'], digits)} ({_f(s['min'], digits)}–{_f(s['max'], digits)})"


def _load(values: Any) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "?"


ENGINE_CHOICE = [
    "**Engine choice.** The default text engine decodes concurrent requests together in one llama.cpp context "
    "(`nexa_text/batched_engine.py`: continuous batching over one KV cache shared by its slots, a sampler chain "
    "per sequence with its grammar, new prompts joining between steps, cached prefixes reused across slots). "
    "The other design, several model instances splitting the threads, is measured in-process below: instances "
    "stop at one stream each, load the model once per instance and would need a dispatcher of their own. "
    "`NEXA_TEXT_MAX_CONCURRENCY=1` keeps the one-sequence engine (requests take turns).",
]


def _target(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(r: dict[str, Any]) -> str:
    """The whole report; a section whose benchmark failed (or did not run) says so and the rest stay."""
    lines = _header(r)
    for title, part in (
        ("Text", _text),
        ("Text against its peers", _peers),
        ("Audio and image", _media),
        ("Speech", _speech),
        ("Models on demand", _pool),
        ("Router overhead", _router),
        ("Text: ONNX Runtime vs GGUF", lambda r: _onnx(r.get("onnx"))),
        ("Peak memory", _memory),
    ):
        try:
            lines += part(r)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            lines += ["", f"## {title}", "", f"Not measured: {_why(r, exc)}"]
    lines += _targets(r)
    return "\n".join(lines)


def _why(r: dict[str, Any], exc: BaseException) -> str:
    errors = [
        f"{name}: {str(v['error']).splitlines()[0]}" for name, v in r.items() if isinstance(v, dict) and "error" in v
    ]
    return "; ".join(errors) or f"missing {exc}"


def _header(r: dict[str, Any]) -> list[str]:
    machine = r.get("machine", {})
    return [
        "# Benchmark report",
        "",
        f"Measured {r.get('when', '?')} by `make bench` on {machine.get('cpus_physical', '?')} physical cores "
        f"({machine.get('processor', '?')}, Python {machine.get('python', '?')}), load average "
        f"{_load(r.get('load_average_at_start'))} at the start and {_load(r.get('load_average_at_end'))} at the end "
        "(the machine is shared: a load above the core count slows every path alike, since they are interleaved); "
        f"{r.get('repetitions', '?')} repetitions per figure "
        "after a warm-up run; medians with (min–max). Every ratio compares paths measured side by side, "
        "interleaved, in the same run.",
    ]


def _text(r: dict[str, Any]) -> list[str]:
    t = r["text"]
    lines = [
        "",
        "## Text (SmolLM2-135M Q4_1, 128 tokens, temperature 0)",
        "",
        "| path | decode tokens/s (streamed) | TTFT ms | tokens/s (not streamed) | ratio streamed | ratio not streamed |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("direct", "llama-cpp-python, direct"),
        ("service", "text service"),
        ("router", "router → text service"),
    ):
        row = t[name]
        ratio_s = _f(row.get("ratio_decode", 1.0), 3)
        ratio_w = _f(row.get("ratio_whole", 1.0), 3)
        lines.append(
            f"| {label} | {_spread(row['decode_tokens_per_s'])} | {_spread(row['ttft_ms'], 2)} | "
            f"{_spread(row['whole_tokens_per_s'])} | {ratio_s} | {ratio_w} |"
        )
    return lines


def _peers(r: dict[str, Any]) -> list[str]:
    return [*peers_report.section(r), "", *ENGINE_CHOICE, *_engines(r.get("engines"))]


def _media(r: dict[str, Any]) -> list[str]:
    a, im = r["audio"], r["image"]
    lines = [
        "",
        f"## Audio (jfk.flac, {_f(a['audio_seconds'])} s, whisper-tiny.en) and image (tiny pipeline, 64×64, 4 steps)",
        "",
        "| path | audio s | real-time factor | ratio | image s | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (("direct", "library, direct"), ("service", "service"), ("router", "router → service")):
        lines.append(
            f"| {label} | {_spread(a[name]['seconds'], 3)} | {_f(a[name]['real_time_factor'], 3)} | "
            f"{_f(a[name]['ratio'], 3)} | {_spread(im[name]['seconds'], 3)} | {_f(im[name]['ratio'], 3)} |"
        )
    return lines


def _speech(r: dict[str, Any]) -> list[str]:
    sp = r["speech"]
    lines = [
        "",
        f"## Speech (piper-joe, {sp['sentences']} sentences, {sp['text_chars']} characters, WAV)",
        "",
        "Real-time factor: synthesis time / seconds of audio produced (below 1 is faster than real time); ratio: the "
        "library's real-time factor over the path's, median over the rounds (1.0 = no overhead). First byte: when the first audio bytes "
        "reached the client; the library (like any server that sends the file whole) has none before the end.",
        "",
        "| path | seconds | audio s | real-time factor | ratio | first byte ms | first byte / whole |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("direct", "piper-tts, direct (synthesize_wav)"),
        ("service", "audio service, streamed"),
        ("router", "router → audio service, streamed"),
    ):
        row = sp[name]
        lines.append(
            f"| {label} | {_spread(row['seconds'], 3)} | {_f(row['audio_seconds']['median'], 2)} | "
            f"{_spread(row['real_time_factor'], 3)} | {_f(row['ratio'], 3)} | {_spread(row['first_byte_ms'], 0)} | "
            f"{_f(row['first_byte_vs_whole'], 3)} |"
        )
    return lines


def _router(r: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Router overhead (upstream answers instantly)",
        "",
        "| clients | direct p50 / p99 ms | through router p50 / p99 ms | added p50 ms | added p99 ms |",
        "|---|---|---|---|---|",
    ]
    for clients, row in r["router_overhead"].items():
        lines.append(
            f"| {clients} | {_f(row['direct_p50_ms'], 2)} / {_f(row['direct_p99_ms'], 2)} | "
            f"{_f(row['router_p50_ms'], 2)} / {_f(row['router_p99_ms'], 2)} | {_f(row['added_p50_ms'], 2)} | "
            f"{_f(row['added_p99_ms'], 2)} |"
        )
    return lines


def _memory(r: dict[str, Any]) -> list[str]:
    lines = ["", "## Peak memory (VmHWM, MB)", "", "| process | peak RSS MB |", "|---|---|"]
    return lines + [f"| {name} | {value} |" for name, value in r["memory_peak_rss_mb"].items()]


def _targets(r: dict[str, Any]) -> list[str]:
    def text() -> str:
        t = r["text"]["router"]
        ratio = min(t["ratio_decode"], t["ratio_whole"])
        return (
            f"| text through router ≥ 0.95 × direct tokens/s | {_f(t['ratio_decode'], 3)} streamed, "
            f"{_f(t['ratio_whole'], 3)} not | {_target(ratio >= 0.95)} |"
        )

    def ttft() -> str:
        over = r["text"]["router"]["ttft_overhead_ms"]
        return f"| TTFT overhead < 5 ms | {_f(over, 2)} ms | {_target(over < 5)} |"

    def media(kind: str) -> str:
        ratio = r[kind]["router"]["ratio"]
        return f"| {kind} through router ≥ 0.95 × direct | {_f(ratio, 3)} | {_target(ratio >= 0.95)} |"

    def speech() -> str:
        sp = r["speech"]["router"]
        return (
            f"| speech through router ≥ 0.95 × direct real-time factor | {_f(sp['ratio'], 3)} "
            f"(first byte at {_f(sp['first_byte_vs_whole'], 2)} of the whole) | {_target(sp['ratio'] >= 0.95)} |"
        )

    def router(q: str, limit: float) -> str:
        added = r["router_overhead"]["50"][f"added_{q}_ms"]
        # A negative difference means the load generator, not the router, set both latencies: no verdict.
        status = "**not judged** (client-bound reading)" if added < 0 else _target(added < limit)
        return f"| router added {q} < {limit:g} ms at 50 clients | {_f(added, 2)} ms | {status} |"

    def rss() -> str:
        mb = r["memory_peak_rss_mb"]["router"]
        return f"| router RSS < 100 MB | {mb} MB | {_target(mb < 100)} |"

    rows: list[tuple[str, Any]] = [
        ("text through router ≥ 0.95 × direct", text),
        ("TTFT overhead < 5 ms", ttft),
        ("audio through router ≥ 0.95 × direct", lambda: media("audio")),
        ("image through router ≥ 0.95 × direct", lambda: media("image")),
        ("speech through router ≥ 0.95 × direct real-time factor", speech),
        ("router added p50 < 1 ms at 50 clients", lambda: router("p50", 1)),
        ("router added p99 < 5 ms at 50 clients", lambda: router("p99", 5)),
        ("router RSS < 100 MB", rss),
        *peers_report.targets(r, _target),
    ]
    lines = ["", "## Targets", "", "| target | measured | status |", "|---|---|---|"]
    for label, row in rows:
        try:
            lines.append(row())
        except (KeyError, TypeError, ValueError):
            lines.append(f"| {label} | not measured | **not met** |")
    return [*lines, ""]


def _pool(r: dict[str, Any]) -> list[str]:
    """Cold and warm time to first token, and swapping models, against llama-cpp-python's own load."""
    p = r["pool"]
    first, second = p["models"]
    return [
        "",
        f"## Models on demand ({first} and {second} in one text service with room for one, n_ctx {p['n_ctx']})",
        "",
        "Time to the first streamed token through the service, and llama-cpp-python loading the same GGUF "
        "directly (then its first token), interleaved in the same run.",
        "",
        "| path | seconds | × direct |",
        "|---|---|---|",
        f"| direct load of {second} | {_spread(p['direct_load_s'][second], 2)} | |",
        f"| direct load + first token of {second} | {_spread(p['direct_cold_ttft_s'][second], 2)} | 1 |",
        f"| service, {second} cold (loaded by the request) | {_spread(p['service_cold_ttft_s'], 2)} | "
        f"{_f(p['cold_vs_direct_cold'], 2)} |",
        f"| service, {second} warm | {_spread(p['service_warm_ttft_s'], 2)} | |",
        *(
            f"| service, swap to {name} (the other unloaded) | {_spread(p['swap_ttft_s'][name], 2)} | "
            f"{_f(p['swap_vs_direct_cold'][name], 2)} (× load alone {_f(p['swap_vs_direct_load'][name], 2)}) |"
            for name in (first, second)
        ),
        "",
        f"Cold / warm: {_f(p['cold_vs_warm'], 1)} ×.",
    ]


def _onnx(o: dict[str, Any] | None) -> list[str]:
    """ONNX Runtime vs GGUF on the same weights (bench/onnx.py), when that comparison ran."""
    if not o:
        return []
    lines = ["", "## Text: ONNX Runtime vs GGUF (same SmolLM2 weights, greedy, one stream)", ""]
    if "error" in o:
        return [*lines, f"Not measured: {o['error']}"]
    lines += [
        f"{o.get('max_tokens', '?')} tokens, {o.get('threads', '?')} threads, {o.get('repetitions', '?')} repetitions; "
        "each direct run in a fresh process, the services one after the other.",
        "",
        "| where | backend | tokens/s | peak RSS MB |",
        "|---|---|---|---|",
    ]
    for where in ("direct", "service"):
        for backend in ("gguf", "onnx"):
            row = o.get(where, {}).get(backend, {})
            if "error" in row:
                lines.append(f"| {where} | {backend} | error: {row['error']} | |")
                continue
            tps = row.get("tokens_per_s")
            lines.append(f"| {where} | {backend} | {_spread(tps) if tps else '?'} | {row.get('peak_rss_mb', '?')} |")
    ratios = o.get("onnx_vs_gguf", {})
    lines += ["", "ONNX / GGUF tokens/s: " + ", ".join(f"{k} {v}" for k, v in ratios.items())]
    return lines


def _engines(e: dict[str, Any] | None) -> list[str]:
    """The in-process comparison behind the choice (bench/engines.py)."""
    if not e:
        return []
    if "error" in e:
        return ["", f"In-process comparison not measured: {e['error']}"]
    lines = [
        "",
        f"In-process, no HTTP ({e['max_tokens']} tokens per stream, {e['threads']} threads in all, same run):",
        "",
        "| path | aggregate tokens/s | × direct |",
        "|---|---|---|",
    ]
    for name, row in e["paths"].items():
        lines.append(f"| {name} | {_spread(row['tokens_per_s'])} | {_f(row['ratio_to_direct'], 2)} |")
    return lines
