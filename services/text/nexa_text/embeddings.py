"""`POST /v1/embeddings`: OpenAI's request and answer, on an embedding model of the service's pool.

Every input is checked before any is embedded: an over-long one is a 400 naming its index and
length (never cut silently; NEXA_TEXT_EMBEDDING_TRUNCATE opts into cutting), too many inputs a
400, too many tokens altogether a 413. The vectors are unit length, so a dot product is a cosine.
"""

from __future__ import annotations

import base64
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from nexa_common.errors import APIError, error_responses
from nexa_common.fields import account_fields
from nexa_common.kit.cancellation import while_connected
from nexa_common.modalities import Capability
from nexa_common.schemas.embeddings import EmbeddingRequest, EmbeddingResponse
from nexa_common.schemas.keep_alive import kept

from .arrivals import ticket_of
from .embedding_model import EmbeddingRuntime
from .serving import StateDep
from .settings import Settings

if TYPE_CHECKING:  # the engine needs ONNX Runtime, an optional dependency, at run time only
    from .embedding_engine import EmbeddingEngine

router = APIRouter(tags=["text"])


@router.post(
    "/v1/embeddings",
    response_model=EmbeddingResponse,
    responses=error_responses(400, 404, 413, 429, 503, 507),
)
async def create_embeddings(body: EmbeddingRequest, request: Request, state: StateDep) -> JSONResponse:
    """Embed `input` (a string, strings, token ids or token-id lists) as unit vectors, in input order,
    on the embedding model `model` names (absent: the first one the service was started with)."""
    # Counted as on its way to the batcher since before its body was read (see `CountArrivals`).
    ticket = ticket_of(request.scope)
    account_fields(request, body, strict=state.settings.strict_fields)
    pool = state.pool
    model = pool.get(body.model, Capability.EMBEDDINGS)
    if ticket is not None and model.state != "loaded":
        ticket.done()  # a load takes seconds: the batchers of loaded models do not wait for it
    async with AsyncExitStack() as stack:
        # A client that leaves while the model loads or while it waits for a slot stops waiting.
        runtime = await while_connected(request, stack.enter_async_context(pool.use(model, kept(body.keep_alive))))
        assert isinstance(runtime, EmbeddingRuntime)
        tokens, size = _checked(body, model.name, runtime.engine, state.settings)
        await while_connected(request, stack.enter_async_context(pool.slot(model)))
        vectors = await while_connected(request, runtime.batcher.embed(tokens, ticket))
    engine = runtime.engine
    if size != engine.dimensions:
        vectors = vectors[:, :size]
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    total = sum(len(ids) for ids in tokens)
    return JSONResponse(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": _encoded(row, body.encoding_format)}
                for i, row in enumerate(vectors)
            ],
            "model": model.name,
            "usage": {"prompt_tokens": total, "total_tokens": total},
        }
    )


def _checked(
    body: EmbeddingRequest, name: str, engine: EmbeddingEngine, settings: Settings
) -> tuple[list[list[int]], int]:
    """The inputs as token ids with the model's special tokens, and the vectors' size; every input
    is checked (length, vocabulary, request totals) before any is embedded."""
    inputs = _inputs(body.input, settings.embedding_max_inputs)
    truncate = settings.embedding_truncate
    if isinstance(inputs[0], str):
        tokens = engine.tokenize_batch(inputs, truncate=truncate)  # type: ignore[arg-type]
    else:
        tokens = [engine.wrap(_valid_ids(ids, i, engine.vocab_size), truncate=truncate) for i, ids in enumerate(inputs)]  # type: ignore[arg-type]
    for i, ids in enumerate(tokens):
        if len(ids) > engine.max_tokens:
            raise APIError(
                400,
                f"input[{i}] is {len(ids)} tokens long, but '{name}' takes at most {engine.max_tokens} "
                f"(special tokens included). Shorten or split it, or start the service with "
                f"NEXA_TEXT_EMBEDDING_TRUNCATE=true to cut long inputs.",
                param="input",
                code="context_length_exceeded",
            )
    total = sum(len(ids) for ids in tokens)
    if total > settings.embedding_max_request_tokens:
        raise APIError(
            413,
            f"The inputs hold {total} tokens together; one request may hold at most "
            f"{settings.embedding_max_request_tokens} (NEXA_TEXT_EMBEDDING_MAX_REQUEST_TOKENS). Send fewer inputs.",
            param="input",
            code="request_too_large",
        )
    size = _dimensions(body.dimensions, name, engine.dimensions, engine.manifest.matryoshka_dimensions)
    return tokens, size


def _inputs(value: str | list[Any], limit: int) -> list[str] | list[list[int]]:
    if isinstance(value, str):
        return [value]
    if not value:
        raise APIError(400, "'input' is an empty list; give at least one input.", param="input", code="invalid_value")
    if len(value) > limit:
        raise APIError(
            400,
            f"'input' holds {len(value)} inputs; one request may hold at most {limit} "
            f"(NEXA_TEXT_EMBEDDING_MAX_INPUTS).",
            param="input",
            code="too_many_inputs",
        )
    if isinstance(value[0], int):
        return [value]  # one input given as token ids
    return value


def _valid_ids(ids: list[int], index: int, vocab_size: int) -> list[int]:
    bad = next((t for t in ids if not 0 <= t < vocab_size), None)
    if bad is not None:
        raise APIError(
            400,
            f"input[{index}] holds token id {bad}, outside this model's vocabulary (0 to {vocab_size - 1}).",
            param="input",
            code="invalid_value",
        )
    return ids


def _dimensions(requested: int | None, name: str, native: int, shorter: tuple[int, ...]) -> int:
    if requested is None or requested == native:
        return native
    if requested in shorter:
        return requested
    sizes = f"; it can be shortened to {', '.join(map(str, shorter))}" if shorter else " and cannot be shortened"
    raise APIError(
        400,
        f"'{name}' makes {native}-dimensional embeddings{sizes}, so 'dimensions' cannot be {requested}.",
        param="dimensions",
        code="invalid_value",
    )


def _encoded(row: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        # OpenAI's layout: the vector's float32 values, little-endian, base64-encoded.
        return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
    return row.tolist()  # type: ignore[no-any-return]
