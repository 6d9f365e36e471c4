"""The peers section of REPORT.md (bench/peers.py's figures) and its targets (issue #19)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LABELS = {
    "llama-server": "llama-server `-np 8`",
    "llama-cpp-python": "llama-cpp-python's own server",
    "ours": "ours, default (router → text service)",
    "ours-one-sequence": "ours, one-sequence engine (`NEXA_TEXT_MAX_CONCURRENCY=1`)",
}


def _f(value: float | None, digits: int = 1) -> str:
    return "?" if value is None else f"{value:.{digits}f}"


def _rate(p: dict[str, Any], name: str, streams: str) -> float:
    return float(p["quiet"][name][streams]["aggregate_tokens_per_s"]["median"])


def section(r: dict[str, Any]) -> list[str]:
    p = r["peers"]
    quiet = p["quiet"]
    levels = list(next(iter(quiet.values())).keys())
    lines = [
        "",
        f"## Text against its peers ({p['max_tokens']}-token chat answers, temperature 0, {p['threads']} threads)",
        "",
        f"Same GGUF (SmolLM2-135M Q4_1), same llama.cpp (llama-cpp-python {p['llama_cpp_python']}; llama-server "
        "built from the sources it vendors), same context, rounds interleaved. Aggregate tokens/s, median of the "
        "rounds; in brackets the ratio to the same server's single stream; TTFT p50 in ms.",
        "",
        "| server | " + " | ".join(f"{n} stream{'s' if n != '1' else ''}" for n in levels) + " | TTFT p50 ms "
        "(" + " / ".join(levels) + ") |",
        "|---|" + "---|" * len(levels) + "---|",
    ]
    for name, rows in quiet.items():
        single = _rate(p, name, levels[0])
        cells = []
        for n in levels:
            rate = _rate(p, name, n)
            cells.append(_f(rate) if n == levels[0] else f"{_f(rate)} ({_f(rate / single, 2)}×)")
        ttft = " / ".join(_f(rows[n]["ttft_p50_s"] * 1000, 0) for n in levels)
        errors = sum(rows[n]["errors"] for n in levels)
        note = f", {errors} errors" if errors else ""
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + f" | {ttft}{note} |")
    ours = {n: _rate(p, "ours", n) / _rate(p, "llama-server", n) for n in levels}
    lines += ["", "Ours ÷ llama-server: " + ", ".join(f"{n} stream(s) {_f(v, 2)}×" for n, v in ours.items()) + "."]
    lines += _busy(p) + _memory(p)
    return lines


def _busy(p: dict[str, Any]) -> list[str]:
    b = p.get("busy")
    if not b:
        return []
    if "error" in b:
        return ["", f"Busy machine: not measured ({b['error']})."]
    lines = [
        "",
        "With one CPU-bound process at nice 10 beside the servers (one stream at a time, "
        f"{p.get('busy_tokens', 48)}-token answers): "
        "tokens/s, its ratio to the same server's quiet single stream, and the first answer after the process "
        "started (which includes noticing it).",
        "",
        "| server | tokens/s busy | × own quiet single stream | first answer tokens/s |",
        "|---|---|---|---|",
    ]
    for name in ("llama-server", "llama-cpp-python", "ours"):
        row = b.get(name)
        if row:
            lines.append(
                f"| {LABELS[name]} | {_f(row['tokens_per_s']['median'])} | {_f(row['ratio_to_quiet_single'], 3)} | "
                f"{_f(row['first_answer_tokens_per_s'])} |"
            )
    recovery = b.get("ours", {}).get("recovery", {})
    back = recovery.get("seconds_to_90pct")
    series = ", ".join(f"{at} s: {rate}" for at, rate in recovery.get("series", [])[:8])
    lines += [
        "",
        f"Ours after the process stopped: back to 90% of the quiet rate after {_f(back)} s (32-token answers "
        f"one after another; seconds after the stop: tokens/s) {series}.",
    ]
    return lines


def _memory(p: dict[str, Any]) -> list[str]:
    m = p.get("memory")
    if not m or "error" in m:
        return []
    return [
        "",
        f"Peak RSS after the same rounds: our default text service {m['default_peak_rss_mb']} MB, the one-sequence "
        f"engine's {m['one_sequence_peak_rss_mb']} MB ({_f(m['ratio'], 2)}×); llama-server "
        f"{m['llama_server_peak_rss_mb']} MB, llama-cpp-python's server {m['llama_cpp_python_peak_rss_mb']} MB.",
    ]


def targets(r: dict[str, Any], status: Callable[[bool], str]) -> list[tuple[str, Callable[[], str]]]:
    """Rows for the report's Targets table."""

    def versus(streams: str, at_least: float) -> str:
        p = r["peers"]
        ratio = _rate(p, "ours", streams) / _rate(p, "llama-server", streams)
        return (
            f"| {streams} stream(s): ours ≥ {at_least:g} × llama-server | {_f(ratio, 3)} × "
            f"({_f(_rate(p, 'ours', streams))} vs {_f(_rate(p, 'llama-server', streams))} tokens/s) | "
            f"{status(ratio >= at_least)} |"
        )

    def ttft() -> str:
        q = r["peers"]["quiet"]
        ours, peer = q["ours"]["8"]["ttft_p50_s"] * 1000, q["llama-server"]["8"]["ttft_p50_s"] * 1000
        return (
            f"| TTFT p50 at 8 streams ≤ llama-server's | {_f(ours, 0)} vs {_f(peer, 0)} ms | {status(ours <= peer)} |"
        )

    def busy() -> str:
        b = r["peers"]["busy"]
        ours, peer = b["ours"]["ratio_to_quiet_single"], b["llama-server"]["ratio_to_quiet_single"]
        return (
            f"| busy machine: ours ≥ 0.5 × its quiet single stream (llama-server: < 0.02 ×) | {_f(ours, 3)} × "
            f"(llama-server {_f(peer, 3)} ×) | {status(ours >= 0.5)} |"
        )

    def recovery() -> str:
        back = r["peers"]["busy"]["ours"]["recovery"]["seconds_to_90pct"]
        return (
            f"| back to the quiet rate within seconds once the machine is free | {_f(back)} s | "
            f"{status(back is not None and back <= 10)} |"
        )

    def rss() -> str:
        m = r["peers"]["memory"]
        return (
            f"| default text service RSS ≤ 1.3 × the one-sequence engine's | {_f(m['ratio'], 2)} × "
            f"({m['default_peak_rss_mb']} vs {m['one_sequence_peak_rss_mb']} MB) | {status(m['ratio'] <= 1.3)} |"
        )

    return [
        ("1 stream: ours ≥ 0.95 × llama-server", lambda: versus("1", 0.95)),
        ("4 streams: ours ≥ 1.0 × llama-server", lambda: versus("4", 1.0)),
        ("8 streams: ours ≥ 1.0 × llama-server", lambda: versus("8", 1.0)),
        ("TTFT p50 at 8 streams ≤ llama-server's", ttft),
        ("busy machine: ours ≥ 0.5 × its quiet single stream", busy),
        ("back to the quiet rate within seconds", recovery),
        ("default text service RSS ≤ 1.3 × one-sequence", rss),
    ]
