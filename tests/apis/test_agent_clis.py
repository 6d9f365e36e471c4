"""Codex CLI and Claude Code, installed from npm at pinned versions (scripts/install-agent-clis.sh),
pointed at the router and given a one-line prompt non-interactively: each either completes, or
stops with our context-length error (their system prompts and tool definitions are several thousand
tokens; the text service here gets SmolLM2 with a 2048-token context, so each run ends the same way
whatever the service's default context). Which one happened is printed in the run's summary."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from apis_helpers import CLI_OUTCOMES, StartRouter, need
from support import service_spec

from nexa_cli.supervisor import Supervisor

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".tools" / "agent-clis" / "node_modules" / ".bin"
PROMPT = "Say hello in one word."
RUN_TIMEOUT_S = 300
MODEL = "smollm2"


@pytest.fixture(scope="module")
def small_context_url(supervisor: Supervisor, nexa_cache: Path, start_router: StartRouter) -> str:
    """A router in front of a text service of its own whose context is 2048 tokens."""
    if not BIN.is_dir():
        need(f"the agent clients ({BIN})", "run scripts/install-agent-clis.sh")
    spec = service_spec("text", {"NEXA_TEXT_MODEL": MODEL, "NEXA_TEXT_N_CTX": "2048"}, name="text-service-2k")
    supervisor.wait_ready(supervisor.start(spec), 120.0)
    url, _ = start_router("router-agent-clis", {"NEXA_ROUTER_TEXT_URL": spec.url})
    return url


def _binary(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        need(f"{name} ({path})", "run scripts/install-agent-clis.sh")
    return path


def _rejected_for_length(url: str, route: str) -> float:
    """How many requests to `route` the router answered 400 so far (read before and after a run; the
    tests run one at a time, so the difference is the client's)."""
    text = httpx.get(url + "/metrics", timeout=10).text
    pattern = rf'^nexa_http_requests_total\{{method="POST",route="{re.escape(route)}",status="400"\}} (\S+)$'
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    # A clean environment: no API keys or settings of the machine's user leak into the clients.
    base = {k: os.environ[k] for k in ("PATH", "LANG", "TERM") if k in os.environ}
    done = subprocess.run(
        argv, cwd=cwd, env={**base, **env}, stdin=subprocess.DEVNULL, capture_output=True, timeout=RUN_TIMEOUT_S
    )
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def _outcome(tool: str, code: int, output: str, length_error: str, rejected: float) -> None:
    if code == 0:
        CLI_OUTCOMES.append(f"{tool}: completed the prompt: {output.strip().splitlines()[-1][:200]!r}")
        return
    assert length_error in output, output[-3000:]
    assert rejected >= 1, "the router answered no 400: the error did not come from this server"
    CLI_OUTCOMES.append(f"{tool}: stopped with our context-length error, shown as {length_error!r}")


def test_codex_cli(small_context_url: str, tmp_path: Path) -> None:
    codex = _binary("codex")
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    # A custom model provider on the Responses wire API. web_search is a server tool (refused here);
    # every other tool Codex sends (its subagent tools included) is a function tool the server takes.
    (home / "config.toml").write_text(
        f'model = "{MODEL}"\nmodel_provider = "nexa"\napproval_policy = "never"\nsandbox_mode = "read-only"\n'
        'web_search = "disabled"\n\n'
        f'[model_providers.nexa]\nname = "nexa"\nbase_url = "{small_context_url}/v1"\nwire_api = "responses"\n'
    )
    before = _rejected_for_length(small_context_url, "/v1/responses")
    code, output = _run(
        [str(codex), "exec", "--skip-git-repo-check", PROMPT], work, {"CODEX_HOME": str(home), "HOME": str(tmp_path)}
    )
    rejected = _rejected_for_length(small_context_url, "/v1/responses") - before
    # Codex turns our `context_length_exceeded` code into its own words.
    _outcome("Codex CLI", code, output, "ran out of room in the model's context window", rejected)


def test_claude_code(small_context_url: str, tmp_path: Path) -> None:
    claude = _binary("claude")
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "HOME": str(tmp_path),
        "ANTHROPIC_BASE_URL": small_context_url,
        "ANTHROPIC_API_KEY": "dummy-key",
        "ANTHROPIC_MODEL": MODEL,
        "ANTHROPIC_SMALL_FAST_MODEL": MODEL,
        # Nothing outside this machine is reachable: no telemetry, updates or error reports.
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    before = _rejected_for_length(small_context_url, "/v1/messages")
    # Every tool Claude Code sends, Workflow included, is a client tool the server takes.
    code, output = _run([str(claude), "-p", PROMPT], work, env)
    rejected = _rejected_for_length(small_context_url, "/v1/messages") - before
    # Our message starts with Anthropic's own words, "prompt is too long", which Claude Code recognizes.
    _outcome("Claude Code", code, output, "Prompt is too long", rejected)
