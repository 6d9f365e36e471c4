"""The audio service's streaming multipart parser, fed a real ASGI request in chunks of any size:
a boundary split across reads, fields, size limits, truncated and malformed bodies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.types import Message

from nexa_audio.upload import receive_upload
from nexa_common.errors import APIError

BOUNDARY = "nexa-unit-boundary-0123456789"
AUDIO = bytes(range(256)) * 64  # 16 KiB of every byte value, boundary-like runs included


def body(parts: list[tuple[str, bytes, str | None]], close: bool = True) -> bytes:
    out = b""
    for name, data, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


def chunked(data: bytes, sizes: Iterator[int]) -> list[bytes]:
    chunks, at = [], 0
    while at < len(data):
        size = next(sizes)
        chunks.append(data[at : at + size])
        at += size
    return chunks


def request(chunks: list[bytes], content_type: str | None = None, length: int | None = None) -> Request:
    headers = [(b"content-type", (content_type or f"multipart/form-data; boundary={BOUNDARY}").encode())]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}, receive)


async def parse(
    folder: Path, chunks: list[bytes], limit: int = 1 << 20, **kwargs: object
) -> tuple[bytes, dict, str | None]:  # type: ignore[type-arg]
    async with receive_upload(request(chunks, **kwargs), folder, limit) as upload:  # type: ignore[arg-type]
        assert oct(upload.path.stat().st_mode & 0o777) == "0o600"
        return upload.path.read_bytes(), upload.fields, upload.filename


FULL = body([("model", b"whisper-1", None), ("file", AUDIO, "speech.flac"), ("language", "ünïcode".encode(), None)])


@pytest.mark.parametrize("size", [1, 7, 64, len(BOUNDARY) + 3, 4096])
async def test_a_boundary_split_across_reads_at_every_offset(tmp_path: Path, size: int) -> None:
    data, fields, filename = await parse(tmp_path, chunked(FULL, iter(lambda: size, None)))
    assert data == AUDIO
    assert fields == {"model": ["whisper-1"], "language": ["ünïcode"]}
    assert filename == "speech.flac"
    assert not list(tmp_path.iterdir()), "the upload is deleted once the request is done"


async def test_the_boundary_split_in_the_middle_of_its_own_bytes(tmp_path: Path) -> None:
    at = FULL.index(f"\r\n--{BOUNDARY}".encode(), FULL.index(b"speech.flac")) + 6  # inside the closing boundary
    data, _, _ = await parse(tmp_path, [FULL[:at], FULL[at:]])
    assert data == AUDIO


async def test_an_oversize_file_is_refused_while_streaming_and_nothing_is_left(tmp_path: Path) -> None:
    with pytest.raises(APIError) as refused:
        await parse(tmp_path, chunked(FULL, iter(lambda: 1024, None)), limit=4096)
    assert refused.value.status == 413 and refused.value.code == "file_too_large"
    assert not list(tmp_path.iterdir())


async def test_a_declared_oversize_body_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(APIError) as refused:
        await parse(tmp_path, [FULL], limit=4096, length=10 * 1024 * 1024)
    assert refused.value.status == 413


@pytest.mark.parametrize(
    ("chunks", "content_type", "code"),
    [
        ([body([("file", AUDIO, "a.wav")], close=False)], None, "invalid_multipart"),
        ([body([("language", b"en", None)])], None, "missing_file"),
        ([b"not multipart at all"], "application/json", "invalid_multipart"),
        ([FULL], f"multipart/form-data; boundary={'x' * 100}", "invalid_multipart"),
        ([body([("prompt", b"\xff\xfe", None), ("file", AUDIO, "a")])], None, "invalid_value"),
    ],
    ids=["truncated", "no-file", "not-multipart", "boundary-too-long", "field-not-utf8"],
)
async def test_bad_bodies_are_400s(tmp_path: Path, chunks: list[bytes], content_type: str | None, code: str) -> None:
    with pytest.raises(APIError) as refused:
        await parse(tmp_path, chunks, content_type=content_type)
    assert refused.value.status == 400 and refused.value.code == code
    assert not list(tmp_path.iterdir())


async def test_a_second_file_part_is_skipped_not_written(tmp_path: Path) -> None:
    data, fields, _ = await parse(
        tmp_path, [body([("file", b"first", "a"), ("file", b"second", "b"), ("x", b"1", None)])]
    )
    assert data == b"first" and fields == {"x": ["1"]}
