"""Command-line clients against the real router: simonw's `llm` with a schema, and guidellm's
default chat benchmark (which asks for an exact number of output tokens with `ignore_eos`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema

MODEL = "smollm2"
BIN = Path(sys.executable).parent


def test_llm_prompt_with_a_schema(api_base: str, tmp_path: Path) -> None:
    # llm's own way to use an OpenAI-compatible server: a model entry in its user folder.
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: nexa-smollm2\n  model_name: {MODEL}\n  api_base: {api_base}\n  supports_schema: true\n"
    )
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path)}
    argv = [str(BIN / "llm"), "-m", "nexa-smollm2", "--schema", "name, age int", "--no-log"]
    argv += ["-o", "temperature", "0", "-o", "max_tokens", "60", "Jason is 25 years old."]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    # llm turns "name, age int" into this schema and prints what the server answered.
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    jsonschema.validate(json.loads(done.stdout), schema)


def test_guidellm_default_chat_benchmark_gets_the_requested_token_counts(
    router_url: str, smollm2_tokenizer: Path, tmp_path: Path
) -> None:
    output_tokens, requests = 16, 3
    benchmark = _guidellm(router_url, smollm2_tokenizer, tmp_path / "first", requests, output_tokens)
    state = benchmark["scheduler_state"]
    if state["processed_requests"] < requests and state["processing_requests"] and not state["errored_requests"]:
        # guidellm 0.8.1 now and then writes its report while its own state still has the last
        # request in progress (seen once in ~10 runs: 2 of 3 recorded, the third neither errored
        # nor incomplete, the report written 0.1 s after the second ended). Its race, not an
        # answer of ours: run it once more, and that run must record every request.
        benchmark = _guidellm(router_url, smollm2_tokenizer, tmp_path / "again", requests, output_tokens)
    outcome = benchmark["requests"]
    assert len(outcome["successful"]) == requests, {k: len(v) for k, v in outcome.items() if isinstance(v, list)}
    assert not outcome["errored"] and not outcome["incomplete"]
    # The default chat mode sends max_completion_tokens with ignore_eos: each answer is exactly that long.
    assert [r["output_tokens"] for r in outcome["successful"]] == [output_tokens] * requests
    sent = json.loads(outcome["successful"][0]["request_args"])["body"]
    assert sent["max_completion_tokens"] == output_tokens and sent["ignore_eos"] is True


def _guidellm(router_url: str, tokenizer: Path, folder: Path, requests: int, output_tokens: int) -> dict[str, Any]:
    """One synchronous guidellm benchmark of `requests` chats; its report's benchmark."""
    folder.mkdir()
    report = folder / "guidellm.json"
    argv = [
        str(BIN / "guidellm"), "run",
        "--backend", f"kind=openai_http,target={router_url},model={MODEL}",
        "--profile", "kind=synchronous",
        "--constraint", f"kind=max_requests,count={requests}",
        "--data", f"kind=synthetic_text,prompt_tokens=32,output_tokens={output_tokens}",
        "--tokenizer", f"kind=huggingface_auto,model={tokenizer}",
        "--output", f"kind=json,path={report}",
        "--disable-console-interactive",
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=540, check=False)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    benchmark: dict[str, Any] = json.loads(report.read_text())["benchmarks"][0]
    return benchmark
