"""A small real HTTP service standing in for a model service, for the router's fault-injection tests.

Run as a process: `python fake_upstream.py` with FAKE_PORT and FAKE_NAME set. The model field of a
chat request picks the behaviour: "echo" (default), "stream", "gated" (first chunk, then wait until
POST /control/release), "hang", "drop" (stream, then cut the connection; "drop-json": the same as
JSON), "stall" (first chunk, then silence), "status-<code>" (answer that status with a JSON body).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

NAME = os.environ.get("FAKE_NAME", "fake")
READY = os.environ.get("FAKE_READY", "ready")
HOLD_S = 30.0  # far beyond the router's read timeout in the tests, bounded so nothing outlives them

app = FastAPI()
app.state.release = asyncio.Event()
app.state.received = 0


def _seen(request: Request) -> dict[str, object]:
    return {
        "path": request.url.path,
        "query": request.url.query,
        "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]},
    }


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/ready")
async def ready() -> JSONResponse:
    body = {"status": READY, "model": f"{NAME}-model"}
    return JSONResponse(body, status_code=200 if READY == "ready" else 503)


@app.get("/v1/models")
async def models() -> dict[str, object]:
    card = {"id": f"{NAME}-model", "object": "model", "created": 1, "owned_by": "nexa", "modality": "text"}
    return {"object": "list", "data": [card]}


@app.post("/control/release")
async def release() -> dict[str, bool]:
    app.state.release.set()
    return {"released": True}


@app.get("/control/received")
async def received() -> dict[str, int]:
    return {"bytes": app.state.received}


def _sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _chunk(text: str) -> dict[str, object]:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": NAME,
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}  # fmt: skip


@app.post("/v1/chat/completions")
async def chat(request: Request) -> Response:
    raw = await request.body()
    behaviour = (json.loads(raw).get("model") if raw else None) or "echo"
    if behaviour.startswith("status-"):
        status = int(behaviour.removeprefix("status-"))
        return JSONResponse({"error": {"message": f"fake {status}", "type": "x", "param": None, "code": None}},
                            status_code=status, headers={"x-fake": "status"})  # fmt: skip
    if behaviour == "hang":
        await asyncio.sleep(HOLD_S)
        return JSONResponse({"late": True})

    async def stream() -> object:
        yield _sse(_chunk("first"))
        if behaviour == "gated":
            await asyncio.wait_for(app.state.release.wait(), HOLD_S)
            app.state.release.clear()
        elif behaviour == "stall":
            await asyncio.sleep(HOLD_S)
        yield _sse(_chunk("second"))
        if behaviour in ("drop", "drop-json"):
            raise RuntimeError("fake upstream drops the connection mid-stream")
        yield b"data: [DONE]\n\n"

    if behaviour in ("stream", "gated", "stall", "drop"):
        return StreamingResponse(stream(), media_type="text/event-stream", headers={"x-fake": "stream"})
    if behaviour == "drop-json":
        return StreamingResponse(stream(), media_type="application/json")
    body = {"seen": _seen(request), "sha256": hashlib.sha256(raw).hexdigest(), "length": len(raw)}
    return JSONResponse(body, status_code=201, headers={"x-fake": "echo", "set-cookie": "a=1"})


@app.post("/v1/completions")
async def completions(request: Request) -> Response:
    raw = await request.body()
    return Response(raw, media_type="application/json", headers={"x-fake": "verbatim"})


@app.post("/v1/audio/transcriptions")
async def transcriptions(request: Request) -> JSONResponse:
    digest = hashlib.sha256()
    app.state.received = 0
    async for chunk in request.stream():
        digest.update(chunk)
        app.state.received += len(chunk)
    return JSONResponse({"text": "fake", "seen": _seen(request), "sha256": digest.hexdigest(),
                         "length": app.state.received})  # fmt: skip


@app.get("/v1/images/files/{name}")
async def image_file(name: str) -> Response:
    if name != "known.png":
        return JSONResponse({"error": {"message": "no such image", "type": "not_found_error", "param": None,
                                       "code": None}}, status_code=404)  # fmt: skip
    return Response(b"\x89PNG\r\n\x1a\nfake", media_type="image/png")


if __name__ == "__main__":
    sys.exit(uvicorn.run(app, host="127.0.0.1", port=int(os.environ["FAKE_PORT"]), log_level="warning"))
