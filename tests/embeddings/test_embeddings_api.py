"""/v1/embeddings over HTTP with the official `openai` client: every input kind, both encodings,
sentence-transformers' vectors, the errors, and a LangChain-sized batch."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from embedding_helpers import PARAPHRASES, SENTENCES, cosine, decode_base64, metric

MODEL = "all-minilm-l6-v2"
MATRYOSHKA = "minilm-matryoshka"
pytestmark = pytest.mark.usefixtures("embedding_model")


def _vectors(response: Any) -> np.ndarray:
    return np.array([item.embedding for item in sorted(response.data, key=lambda d: d.index)], dtype=np.float32)


def _ids(reference: Any, text: str) -> list[int]:
    """The model's token ids of `text`, without special tokens (what a client would send)."""
    return list(reference.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_one_string(oai: openai.OpenAI, reference: Any) -> None:
    response = oai.embeddings.create(model=MODEL, input="A man is eating food.", encoding_format="float")
    assert response.model == MODEL
    assert response.object == "list"
    assert [d.index for d in response.data] == [0]
    vector = np.array(response.data[0].embedding)
    assert vector.shape == (384,)
    assert abs(np.linalg.norm(vector) - 1.0) < 1e-4
    # [CLS] a man is eating food . [SEP]
    assert response.usage.prompt_tokens == len(reference.tokenizer("A man is eating food.")["input_ids"]) == 8
    assert response.usage.total_tokens == response.usage.prompt_tokens


def test_vectors_match_sentence_transformers(oai: openai.OpenAI, reference: Any) -> None:
    want = reference.encode(SENTENCES, normalize_embeddings=True)
    batched = _vectors(oai.embeddings.create(model=MODEL, input=SENTENCES, encoding_format="float"))
    for i, text in enumerate(SENTENCES):
        single = _vectors(oai.embeddings.create(model=MODEL, input=text, encoding_format="float"))[0]
        assert cosine(batched[i], want[i]) >= 0.99, f"batched: {text!r}"
        assert cosine(single, want[i]) >= 0.99, f"alone: {text!r}"


def test_base64_decodes_to_the_same_floats(oai: openai.OpenAI) -> None:
    texts = SENTENCES[:4]
    floats = _vectors(oai.embeddings.create(model=MODEL, input=texts, encoding_format="float"))
    raw = oai.embeddings.create(model=MODEL, input=texts, encoding_format="base64")
    decoded = np.stack([decode_base64(item.embedding) for item in raw.data])  # type: ignore[arg-type]
    assert decoded.shape == (4, 384)
    np.testing.assert_allclose(decoded, floats, rtol=0, atol=1e-6)
    # Without encoding_format the client asks for base64 and decodes it itself.
    default = _vectors(oai.embeddings.create(model=MODEL, input=texts))
    np.testing.assert_allclose(default, floats, rtol=0, atol=1e-6)


def test_token_ids_embed_as_their_text(oai: openai.OpenAI, reference: Any) -> None:
    texts = ["A man is eating food.", "The stock market fell sharply today."]
    by_text = _vectors(oai.embeddings.create(model=MODEL, input=texts, encoding_format="float"))
    one = oai.embeddings.create(model=MODEL, input=_ids(reference, texts[0]), encoding_format="float")
    many = oai.embeddings.create(model=MODEL, input=[_ids(reference, t) for t in texts], encoding_format="float")
    np.testing.assert_allclose(_vectors(one)[0], by_text[0], atol=1e-5)
    np.testing.assert_allclose(_vectors(many), by_text, atol=1e-5)
    assert one.usage.prompt_tokens == 8


def test_similar_sentences_score_higher_than_unrelated(oai: openai.OpenAI) -> None:
    for anchor, similar, unrelated in PARAPHRASES:
        a, s, u = _vectors(oai.embeddings.create(model=MODEL, input=[anchor, similar, unrelated]))
        assert cosine(a, s) > cosine(a, u) + 0.3, (anchor, cosine(a, s), cosine(a, u))


def test_default_model_and_models_list(http: httpx.Client) -> None:
    answer = http.post("/v1/embeddings", json={"input": "no model named"})
    assert answer.status_code == 200
    assert answer.json()["model"] == MODEL
    cards = {card["id"]: card for card in http.get("/v1/models").json()["data"]}
    assert cards[MODEL]["capabilities"] == ["embeddings"]
    assert cards[MODEL]["state"] == "loaded"


def test_a_langchain_sized_batch_of_100(oai: openai.OpenAI) -> None:
    # What LangChain's OpenAIEmbeddings.embed_documents sends: one request with many chunks.
    texts = [f"Chunk {i}: {SENTENCES[i % len(SENTENCES)]}" for i in range(100)]
    response = oai.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert [d.index for d in response.data] == list(range(100))
    vectors = _vectors(response)
    for i in (0, 37, 99):  # each row is its own input's vector, in input order
        alone = _vectors(oai.embeddings.create(model=MODEL, input=texts[i], encoding_format="float"))[0]
        assert cosine(vectors[i], alone) > 0.9999


def test_concurrent_single_sentence_clients_share_batches(embed_url: str, oai: openai.OpenAI) -> None:
    texts = [f"Client {i} asks about {SENTENCES[i % 3]}" for i in range(32)]
    want = _vectors(oai.embeddings.create(model=MODEL, input=texts, encoding_format="float"))
    before = metric(httpx.get(embed_url + "/metrics").text, "nexa_text_embedding_batches_total")
    start = threading.Barrier(32)
    got: dict[int, np.ndarray] = {}
    failures: list[str] = []

    def client(i: int) -> None:
        with httpx.Client(base_url=embed_url, timeout=120.0) as c:
            c.get("/health")  # connected before the barrier, so the 32 requests leave together
            start.wait(timeout=60)
            answer = c.post("/v1/embeddings", json={"model": MODEL, "input": texts[i]})
            if answer.status_code == 200:
                got[i] = np.array(answer.json()["data"][0]["embedding"], dtype=np.float32)
            else:
                failures.append(answer.text)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not failures
    assert sorted(got) == list(range(32))
    for i in range(32):
        assert cosine(got[i], want[i]) > 0.9999
    batches = metric(httpx.get(embed_url + "/metrics").text, "nexa_text_embedding_batches_total") - before
    # 32 one-sentence requests at once cost a few engine calls, not 32.
    assert 1 <= batches <= 8, batches


def _error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]  # type: ignore[no-any-return]


def test_over_long_input_names_its_index_and_length(oai: openai.OpenAI) -> None:
    long = "word " * 300
    with pytest.raises(openai.BadRequestError) as caught:
        oai.embeddings.create(model=MODEL, input=["short", long])
    error = _error(caught.value)
    assert error["code"] == "context_length_exceeded"
    assert "input[1]" in error["message"] and "302 tokens" in error["message"] and "256" in error["message"]


def test_empty_list(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.embeddings.create(model=MODEL, input=[])
    assert "empty" in _error(caught.value)["message"]


@pytest.mark.parametrize(
    "value",
    [5, None, True, {"text": "a"}, [1, "a"], ["a", 1], [[1, 2], "a"], [1.5], [True], [[1], [2.5]], [["a"]]],
)
def test_wrong_input_types(http: httpx.Client, value: Any) -> None:
    answer = http.post("/v1/embeddings", json={"model": MODEL, "input": value})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "input"
    assert "a list of token ids" in error["message"]


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"input": [[101, 30522]]}, "input", "outside this model's vocabulary"),
        ({"input": [-1]}, "input", "outside this model's vocabulary"),
        ({"input": "a", "dimensions": 128}, "dimensions", "384-dimensional"),
        ({"input": "a", "dimensions": 0}, "dimensions", ""),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format", ""),
    ],
)
def test_invalid_values(http: httpx.Client, body: dict[str, Any], param: str, words: str) -> None:
    answer = http.post("/v1/embeddings", json={"model": MODEL, **body})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == param
    assert words in error["message"]


def test_native_dimensions_are_accepted(oai: openai.OpenAI) -> None:
    response = oai.embeddings.create(model=MODEL, input="a", dimensions=384, encoding_format="float")
    assert len(response.data[0].embedding) == 384


def test_chat_model_on_embeddings_is_the_wrong_route(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.embeddings.create(model="smollm2", input="hello")
    error = _error(caught.value)
    assert error["code"] == "model_wrong_route"
    assert "/v1/chat/completions" in error["message"]


def test_embedding_model_on_chat_is_the_wrong_route(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello"}])
    error = _error(caught.value)
    assert error["code"] == "model_wrong_route"
    assert "/v1/embeddings" in error["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        oai.completions.create(model=MODEL, prompt="hello")
    assert _error(caught.value)["code"] == "model_wrong_route"


def test_openai_model_names_are_aliases_of_it(oai: openai.OpenAI, http: httpx.Client) -> None:
    want = _vectors(oai.embeddings.create(model=MODEL, input="a cat", encoding_format="float"))
    for alias in ("text-embedding-3-small", "text-embedding-ada-002"):
        response = oai.embeddings.create(model=alias, input="a cat", encoding_format="float")
        assert response.model == MODEL
        np.testing.assert_allclose(_vectors(response), want, atol=1e-6)
    card = next(c for c in http.get("/v1/models").json()["data"] if c["id"] == MODEL)
    assert card["aliases"] == ["text-embedding-3-small", "text-embedding-ada-002"]


def test_unknown_model(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.embeddings.create(model="no-such-embedder", input="hello")
    error = _error(caught.value)
    assert error["code"] == "model_not_found"
    assert MODEL in error["message"]


def test_limits_from_settings(limited_url: str, reference: Any) -> None:
    client = openai.OpenAI(base_url=limited_url + "/v1", api_key="x", timeout=120.0, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MATRYOSHKA, input=["a"] * 9)
    assert _error(caught.value)["code"] == "too_many_inputs"
    long = "word " * 300  # cut to 256 tokens here (truncation is on)
    with pytest.raises(openai.APIStatusError) as too_big:
        client.embeddings.create(model=MATRYOSHKA, input=[long, long, long])
    assert too_big.value.status_code == 413
    assert "768 tokens" in _error(too_big.value)["message"]
    # Truncated as sentence-transformers truncates (to its max_seq_length of 256).
    response = client.embeddings.create(model=MATRYOSHKA, input=long, encoding_format="float")
    assert response.usage.prompt_tokens == 256
    want = reference.encode([long], normalize_embeddings=True)[0]
    assert cosine(response.data[0].embedding, want) >= 0.99


def test_dimensions_shorten_only_to_declared_sizes(limited_url: str) -> None:
    client = openai.OpenAI(base_url=limited_url + "/v1", api_key="x", timeout=120.0, max_retries=0)
    full = np.array(
        client.embeddings.create(model=MATRYOSHKA, input="a cat", encoding_format="float").data[0].embedding
    )
    for size in (128, 256):
        short = client.embeddings.create(model=MATRYOSHKA, input="a cat", dimensions=size, encoding_format="float")
        vector = np.array(short.data[0].embedding)
        assert vector.shape == (size,)
        np.testing.assert_allclose(vector, full[:size] / np.linalg.norm(full[:size]), atol=1e-5)
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MATRYOSHKA, input="a cat", dimensions=100)
    message = _error(caught.value)["message"]
    assert "384-dimensional" in message and "128, 256" in message


def test_a_model_not_built_is_404_not_pulled_then_servable_once_pulled(
    unbuilt_url: str, unbuilt_cache: Path, embedding_model: Path
) -> None:
    client = openai.OpenAI(base_url=unbuilt_url + "/v1", api_key="x", timeout=120.0, max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model=MODEL, input="hello")
    error = _error(caught.value)
    assert error["code"] == "model_not_pulled"
    assert f"nexa pull {MODEL}" in error["message"]
    assert MODEL not in [c["id"] for c in httpx.get(unbuilt_url + "/v1/models").json()["data"]]
    chat = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert chat.choices[0].message.content is not None
    # What `nexa pull` leaves in the cache: the service serves it from the next request, no restart.
    shutil.copytree(embedding_model, unbuilt_cache / "built" / MODEL)
    card = next(c for c in httpx.get(unbuilt_url + "/v1/models").json()["data"] if c["id"] == MODEL)
    assert card["state"] == "available" and card["capabilities"] == ["embeddings"]
    response = client.embeddings.create(model=MODEL, input="hello", encoding_format="float")
    assert len(response.data[0].embedding) == 384


def test_fields_not_honoured_are_named_never_dropped(http: httpx.Client) -> None:
    honoured = {"model": MODEL, "input": "a", "encoding_format": "float", "dimensions": 384, "keep_alive": "5m"}
    answer = http.post("/v1/embeddings", json=honoured)
    assert answer.status_code == 200 and "X-Nexa-Ignored-Fields" not in answer.headers
    answer = http.post("/v1/embeddings", json={**honoured, "user": "u-1", "truncate_prompt": True})
    assert answer.status_code == 200
    assert answer.headers["X-Nexa-Ignored-Fields"] == "user,truncate_prompt"


def test_strict_fields_refuse_unknown_ones(limited_url: str) -> None:
    answer = httpx.post(limited_url + "/v1/embeddings", json={"input": "a", "truncate_prompt": True}, timeout=120.0)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "unknown_field" and answer.json()["error"]["param"] == "truncate_prompt"
    advisory = httpx.post(limited_url + "/v1/embeddings", json={"input": "a", "user": "u-1"}, timeout=120.0)
    assert advisory.status_code == 200 and advisory.headers["X-Nexa-Ignored-Fields"] == "user"
    # The service's only model is its embedding model: requests without `model` get it.
    assert advisory.json()["model"] == MATRYOSHKA


def test_through_the_router(router_oai: openai.OpenAI, oai: openai.OpenAI, embed_router_url: str) -> None:
    direct = _vectors(oai.embeddings.create(model=MODEL, input=SENTENCES[:3], encoding_format="float"))
    routed = router_oai.embeddings.create(model=MODEL, input=SENTENCES[:3], encoding_format="float")
    assert routed.model == MODEL
    np.testing.assert_allclose(_vectors(routed), direct, atol=1e-6)
    with pytest.raises(openai.BadRequestError) as caught:
        router_oai.embeddings.create(model="smollm2", input="hello")
    assert _error(caught.value)["code"] == "model_wrong_route"
    with pytest.raises(openai.BadRequestError) as caught:
        router_oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello"}])
    assert _error(caught.value)["code"] == "model_wrong_route" and "/v1/embeddings" in _error(caught.value)["message"]
    cards = {c["id"]: c for c in httpx.get(embed_router_url + "/v1/models").json()["data"]}
    assert cards[MODEL]["capabilities"] == ["embeddings"] and cards[MODEL]["modality"] == "text"
    document = httpx.get(embed_router_url + "/openapi.json").json()
    operation = document["paths"]["/v1/embeddings"]["post"]
    assert operation["operationId"] == "createEmbedding"
    assert "EmbeddingRequest" in str(operation["requestBody"])


@pytest.mark.parametrize(
    "raw",
    [
        b'{"input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # nesting far beyond any parser's comfort
        '{"input": "caf\u00e9"}'.encode("latin-1"),  # invalid UTF-8
        b'{"input": [' + b"9" * 5000 + b"]}",  # an integer beyond int parsing limits
        b'{"input": [1e999]}',
        b'{"input": NaN}',
        b'{"input": "x",}',
        b"\x00\x01\x02",
        b"",
        b"null",
        b"[]",
        b'{"input": ["x"], "input": 5}',
        b'{"input": [' + b'"a", ' * 2048 + b'"a"]}',  # one input over the limit of 2048
        b'{"input": [[' + b"1, " * 70_000 + b"1]]}",  # one token-id list far over the context
    ],
)
def test_hostile_bodies_are_400s(http: httpx.Client, raw: bytes) -> None:
    answer = http.post("/v1/embeddings", content=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text[:300]
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


def test_a_huge_text_is_refused_without_embedding_it(http: httpx.Client) -> None:
    answer = http.post("/v1/embeddings", json={"model": MODEL, "input": "word " * 300_000})
    assert answer.status_code == 400
    assert "300002 tokens" in answer.json()["error"]["message"]
