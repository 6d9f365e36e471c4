"""The built model, the engine and the batcher in-process (no HTTP), against sentence-transformers."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from embedding_helpers import SENTENCES, cosine
from prometheus_client import CollectorRegistry

from nexa_common import catalogue
from nexa_common.catalogue import ModelError
from nexa_common.errors import APIError
from nexa_text.arrivals import Arrivals
from nexa_text.embedding_batcher import EmbeddingBatcher, EmbeddingMetrics
from nexa_text.embedding_build import build_from_sentence_transformers
from nexa_text.embedding_engine import EmbeddingEngine


@pytest.fixture(scope="module")
def engine(embedding_model: Path) -> Any:
    built = EmbeddingEngine(embedding_model, n_threads=2, batch_size=32)
    yield built
    built.close()


def test_the_build_is_a_catalogue_model(embedding_model: Path, nexa_cache: Path) -> None:
    resolved = catalogue.resolve("all-minilm-l6-v2", nexa_cache)
    assert resolved.path == embedding_model
    assert resolved.entry.embeddings
    manifest = json.loads((embedding_model / "nexa_embedding.json").read_text())
    assert manifest["dimensions"] == 384
    assert manifest["max_tokens"] == 256  # sentence-transformers' max_seq_length for this model
    assert manifest["pooling"] == "mean"
    # The folder itself is recognised as a local model too.
    assert catalogue.find(str(embedding_model)).embeddings
    assert not any(p.name.endswith(".partial") for p in embedding_model.parent.iterdir())


@pytest.mark.parametrize("batch", [1, 32])
def test_vectors_match_sentence_transformers(engine: EmbeddingEngine, reference: Any, batch: int) -> None:
    texts = [SENTENCES[i % len(SENTENCES)] + ("" if i < len(SENTENCES) else f" ({i})") for i in range(32)]
    want = reference.encode(texts, normalize_embeddings=True, batch_size=batch)
    tokens = engine.tokenize_batch(texts)
    got = np.concatenate([engine.embed(tokens[i : i + batch]) for i in range(0, len(tokens), batch)])
    assert got.shape == (32, 384) and got.dtype == np.float32
    for i, text in enumerate(texts):
        assert cosine(got[i], want[i]) >= 0.99, text
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_tokens_match_the_reference_tokenizer(engine: EmbeddingEngine, reference: Any) -> None:
    for text in SENTENCES:
        assert engine.tokenize(text) == reference.tokenizer(text)["input_ids"], text
        bare = reference.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert engine.wrap(bare) == engine.tokenize(text)


def test_truncation_keeps_the_closing_token(engine: EmbeddingEngine, reference: Any) -> None:
    long = "word " * 300
    full = engine.tokenize(long)
    cut = engine.tokenize(long, truncate=True)
    assert len(full) == 302 and len(cut) == engine.max_tokens == 256
    assert cut[-1] == full[-1] and cut[:255] == full[:255]
    want = reference.encode([long], normalize_embeddings=True)[0]  # sentence-transformers truncates at 256
    assert cosine(engine.embed([cut])[0], want) >= 0.99


def test_padding_does_not_change_a_vector(engine: EmbeddingEngine) -> None:
    short = engine.tokenize("A man is eating food.")
    alone = engine.embed([short])[0]
    beside_long = engine.embed([short, engine.tokenize("The quick brown fox jumps over the lazy dog. " * 10)])[0]
    assert cosine(alone, beside_long) > 0.9999


def test_concurrent_requests_share_engine_calls(engine: EmbeddingEngine, embedding_model: Path) -> None:
    registry = CollectorRegistry()
    texts = [f"Sentence {i} about cats and dogs." for i in range(32)]

    async def run() -> list[np.ndarray]:
        # Its own engine: closing the batcher closes the engine.
        own = EmbeddingEngine(embedding_model, n_threads=2)
        batcher = EmbeddingBatcher(own, EmbeddingMetrics(registry), max_batch=32, wait_s=0.05, queue_size=64)
        try:
            results = await asyncio.gather(*(batcher.embed([own.tokenize(t)]) for t in texts))
        finally:
            batcher.close()
        return [r[0] for r in results]

    vectors = asyncio.run(run())
    assert registry.get_sample_value("nexa_text_embedding_batches_total") == 1  # 32 at once: one engine call
    assert registry.get_sample_value("nexa_text_embedding_inputs_total") == 32
    want = engine.embed(engine.tokenize_batch(texts))
    for i in range(32):
        assert cosine(vectors[i], want[i]) > 0.9999


def test_a_lone_request_does_not_wait_for_company(embedding_model: Path) -> None:
    registry = CollectorRegistry()

    async def run() -> None:
        own = EmbeddingEngine(embedding_model, n_threads=2)
        # An hour's wait window: only requests known to be on their way are waited for.
        batcher = EmbeddingBatcher(own, EmbeddingMetrics(registry), max_batch=32, wait_s=3600, queue_size=8)
        try:
            out = await asyncio.wait_for(batcher.embed([own.tokenize("alone")]), 60)
            assert out.shape == (1, 384)
        finally:
            batcher.close()

    asyncio.run(run())


def test_requests_on_their_way_are_waited_for(embedding_model: Path) -> None:
    registry = CollectorRegistry()
    arrivals = Arrivals()

    async def run() -> None:
        own = EmbeddingEngine(embedding_model, n_threads=2)
        batcher = EmbeddingBatcher(
            own, EmbeddingMetrics(registry), max_batch=32, wait_s=3600, queue_size=8, arrivals=arrivals
        )
        try:
            with arrivals.coming() as second:  # a request still being read when the first is queued
                first = asyncio.create_task(batcher.embed([own.tokenize("first")]))
                await asyncio.sleep(0.2)
                assert not first.done()  # held for the request on its way
                later = await asyncio.wait_for(batcher.embed([own.tokenize("second")], second), 60)
            assert (await asyncio.wait_for(first, 60)).shape == later.shape == (1, 384)
            with arrivals.coming():  # one that fails before it is queued releases the wait too
                third = asyncio.create_task(batcher.embed([own.tokenize("third")]))
                await asyncio.sleep(0.2)
                assert not third.done()
            assert (await asyncio.wait_for(third, 60)).shape == (1, 384)
        finally:
            batcher.close()

    asyncio.run(run())
    assert registry.get_sample_value("nexa_text_embedding_batches_total") == 2  # first+second, then third


def test_the_batchers_of_two_models_both_hear_of_arrivals(embedding_model: Path) -> None:
    """One service, two loaded embedding models: a request on its way holds both batchers back,
    and both go on once it is queued (or failed), not after their whole wait window."""
    arrivals = Arrivals()

    async def run() -> None:
        engines = [EmbeddingEngine(embedding_model, n_threads=1) for _ in range(2)]
        batchers = [
            EmbeddingBatcher(e, EmbeddingMetrics(CollectorRegistry()), max_batch=32, wait_s=3600, queue_size=8,
                             arrivals=arrivals)
            for e in engines
        ]  # fmt: skip
        try:
            with arrivals.coming():
                queued = [
                    asyncio.create_task(b.embed([e.tokenize("a")])) for b, e in zip(batchers, engines, strict=True)
                ]
                await asyncio.sleep(0.2)
                assert not any(task.done() for task in queued)
            done = await asyncio.wait_for(asyncio.gather(*queued), 60)
            assert [v.shape for v in done] == [(1, 384), (1, 384)]
        finally:
            for batcher in batchers:
                batcher.close()
        assert not arrivals.listeners  # closed batchers are no longer woken

    asyncio.run(run())


def test_queue_full_is_a_429(embedding_model: Path) -> None:
    arrivals = Arrivals()

    async def run() -> None:
        own = EmbeddingEngine(embedding_model, n_threads=2)
        batcher = EmbeddingBatcher(
            own, EmbeddingMetrics(CollectorRegistry()), max_batch=32, wait_s=3600, queue_size=2, arrivals=arrivals
        )
        try:
            with arrivals.coming():  # keeps the two queued requests waiting for company
                first = [asyncio.create_task(batcher.embed([own.tokenize("a")])) for _ in range(2)]
                await asyncio.sleep(0.1)
                with pytest.raises(APIError) as caught:
                    await batcher.embed([own.tokenize("b")])
                assert caught.value.status == 429 and caught.value.code == "queue_full"
            assert all(v.shape == (1, 384) for v in await asyncio.wait_for(asyncio.gather(*first), 60))
        finally:
            batcher.close()

    asyncio.run(run())


def test_unloading_from_another_thread_answers_the_queued_and_frees_the_engine(embedding_model: Path) -> None:
    """The pool unloads a model from a worker thread: the batcher's collector stops on its loop,
    what is still queued gets a 503 (never hangs), and the engine's session is freed."""
    arrivals = Arrivals()

    async def run() -> None:
        own = EmbeddingEngine(embedding_model, n_threads=2)
        batcher = EmbeddingBatcher(
            own, EmbeddingMetrics(CollectorRegistry()), max_batch=32, wait_s=3600, queue_size=8, arrivals=arrivals
        )
        with arrivals.coming():  # holds the queued request back, waiting for company
            queued = asyncio.create_task(batcher.embed([own.tokenize("a")]))
            await asyncio.sleep(0.1)
            await asyncio.wait_for(asyncio.to_thread(batcher.close), 60)
            with pytest.raises(APIError) as caught:
                await asyncio.wait_for(queued, 10)
        assert caught.value.status == 503 and caught.value.code == "model_unloaded"
        assert not hasattr(own, "_session")  # the ONNX Runtime session is gone with it

    asyncio.run(run())


def test_a_large_request_takes_turns_with_small_ones(embedding_model: Path) -> None:
    registry = CollectorRegistry()
    finished: list[str] = []

    async def run() -> None:
        engine = EmbeddingEngine(embedding_model, n_threads=2)
        batcher = EmbeddingBatcher(engine, EmbeddingMetrics(registry), max_batch=8, wait_s=0.0, queue_size=64)

        async def request(name: str, count: int) -> np.ndarray:
            out = await batcher.embed([engine.tokenize(f"{name} {i}") for i in range(count)])
            finished.append(name)
            return out

        big = asyncio.create_task(request("big", 64))
        await asyncio.sleep(0)  # the big one is queued first
        small = asyncio.create_task(request("small", 1))
        try:
            big_out, small_out = await asyncio.gather(big, small)
        finally:
            batcher.close()
        assert big_out.shape == (64, 384) and small_out.shape == (1, 384)

    asyncio.run(run())
    assert finished == ["small", "big"]  # 64 inputs in slices of 8: the one-input request did not wait for all
    assert registry.get_sample_value("nexa_text_embedding_inputs_total") == 65


def test_a_folder_that_is_not_sentence_transformers(tmp_path: Path, st_folder: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(st_folder, broken)
    (broken / "modules.json").write_text("not json")
    with pytest.raises(ModelError, match="not a sentence-transformers folder"):
        build_from_sentence_transformers(broken, tmp_path / "out" / "model", source="test")


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path, st_folder: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(st_folder, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")  # fails mid-build, after the work folder exists
    out = tmp_path / "out"
    with pytest.raises(Exception):  # noqa: B017 - whatever transformers raises for broken weights
        build_from_sentence_transformers(broken, out / "model", source="test")
    assert out.is_dir() and list(out.iterdir()) == []
