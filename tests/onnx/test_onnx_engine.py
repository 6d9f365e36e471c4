"""The ONNX engine and builder in-process, on the session's built model: what the HTTP tests
cannot see (literal special tokens, cancellation between tokens, load and build failures)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexa_common.catalogue import ModelError
from nexa_text.engine import Sampling, Sequence
from nexa_text.onnx_build import build_from_gguf
from nexa_text.onnx_engine import OnnxEngine


@pytest.fixture(scope="module")
def engine(onnx_model: Path) -> Iterator[OnnxEngine]:
    loaded = OnnxEngine(onnx_model, n_ctx=512, n_threads=1)
    yield loaded
    loaded.close()


def test_special_tokens_in_user_text_stay_text(engine: OnnxEngine) -> None:
    control = engine.tokenize("<|im_start|>", add_bos=False, special=True)
    literal = engine.tokenize("<|im_start|>", add_bos=False, special=False)
    assert len(control) == 1
    assert control[0] not in literal and len(literal) > 1
    assert engine.chat_template and "<|im_start|>" in engine.chat_template
    assert engine.eos_token == "<|im_end|>"


def test_context_is_capped_by_the_setting(engine: OnnxEngine) -> None:
    assert engine.n_ctx == 512


def test_cancel_stops_generation_at_the_next_token(engine: OnnxEngine) -> None:
    sequence = Sequence(engine.tokenize("Once upon a time", add_bos=False, special=True), 50, Sampling(temperature=0))
    produced = []
    for token in engine.generate(sequence):
        produced.append(token)
        if len(produced) == 3:
            sequence.cancel.set()
    assert len(produced) == 3


def test_same_seed_same_sample(engine: OnnxEngine) -> None:
    def sample() -> list[int]:
        prompt = engine.tokenize("My favourite colour is", add_bos=False, special=True)
        sampling = Sampling(temperature=1.0, top_k=0, seed=7)
        return [t.id for t in engine.generate(Sequence(prompt, 8, sampling, cancel=threading.Event()))]

    assert sample() == sample()


def test_a_folder_without_genai_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no genai_config\.json"):
        OnnxEngine(tmp_path, n_ctx=512, n_threads=1)


def test_a_broken_model_fails_without_leaking_its_path(tmp_path: Path) -> None:
    (tmp_path / "genai_config.json").write_text('{"model": {"type": "llama", "decoder": {"filename": "x.onnx"}}}')
    with pytest.raises(ModelError) as failure:
        OnnxEngine(tmp_path, n_ctx=512, n_threads=1)
    assert str(tmp_path) not in str(failure.value)


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    bogus = tmp_path / "source" / "bogus.gguf"
    bogus.parent.mkdir()
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    dest = tmp_path / "built" / "bogus-onnx"
    with pytest.raises(Exception):  # noqa: B017 - whatever transformers raises for a corrupt file
        build_from_gguf(bogus, dest)
    assert list(dest.parent.iterdir()) == []
