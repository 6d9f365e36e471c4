"""Receive a multipart upload while it streams in: the audio part goes to a private temp file,
the other fields to memory, and the size limit is enforced on the running byte count.

Starlette's `request.form()` would spool the file to the shared temp folder and only let us see
its size once it has all arrived; parsing the stream ourselves rejects an oversize upload after
reading just past the limit, and keeps every upload in a folder only this service can read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MAX_BOUNDARY_LENGTH, MultipartParser, parse_options_header
from starlette.requests import Request

from nexa_common.errors import APIError

FILE_FIELD = "file"
MIB = 1024 * 1024
# The other fields are short (a prompt is at most 4000 characters); the allowance also covers
# the multipart framing, so the body limit is the file limit plus this.
FIELD_LIMIT = 64 * 1024
FIELDS_ALLOWANCE = MIB


@dataclass
class Upload:
    path: Path
    size: int = 0
    filename: str | None = None
    has_file: bool = False
    fields: dict[str, list[str]] = field(default_factory=dict)


def too_large(limit_bytes: int) -> APIError:
    limit_mb = f"{limit_bytes / MIB:g}"
    return APIError(
        413,
        f"The audio file is larger than this server's limit of {limit_mb} MB (setting NEXA_AUDIO_MAX_UPLOAD_MB).",
        param=FILE_FIELD,
        code="file_too_large",
        # The rest of the body is never read, so the connection cannot be reused.
        headers={"Connection": "close"},
    )


def _bad_body(message: str) -> APIError:
    return APIError(400, message, code="invalid_multipart")


class _PartRouter:
    """python-multipart callbacks: route each part's bytes to the file, a field buffer, or nowhere."""

    def __init__(self, upload: Upload, sink: object, max_file_bytes: int) -> None:
        self.upload = upload
        self.sink = sink
        self.max_file_bytes = max_file_bytes
        self.ended = False
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._kind = "skip"
        self._name = ""
        self._buffer = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def part_begin(self) -> None:
        self._headers, self._header_name, self._header_value = {}, b"", b""
        self._kind, self._name, self._buffer = "skip", "", bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if self._name == FILE_FIELD and not self.upload.has_file:
            self._kind = "file"
            self.upload.has_file = True
            self.upload.filename = filename.decode("utf-8", "replace") if filename else None
        elif filename is None:
            self._kind = "field"
        # Any other file part is skipped: its bytes still count toward the body limit.

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._kind == "file":
            self.upload.size += end - start
            if self.upload.size > self.max_file_bytes:
                raise too_large(self.max_file_bytes)
            self.sink.write(data[start:end])  # type: ignore[attr-defined]
        elif self._kind == "field":
            self._buffer += data[start:end]
            if len(self._buffer) > FIELD_LIMIT:
                raise APIError(400, f"Form field '{self._name}' is too long.", param=self._name, code="invalid_value")

    def part_end(self) -> None:
        if self._kind == "field":
            try:
                value = self._buffer.decode("utf-8")
            except UnicodeDecodeError:
                raise APIError(
                    400, f"Form field '{self._name}' is not UTF-8 text.", param=self._name, code="invalid_value"
                ) from None
            self.upload.fields.setdefault(self._name, []).append(value)

    def end(self) -> None:
        self.ended = True


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise _bad_body("Send the audio as multipart/form-data with the file in the 'file' field.")
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        # The parser refuses it with an error of its own, which would otherwise be a 500 (RFC 2046 allows 70).
        raise _bad_body(f"The multipart boundary is longer than {MAX_BOUNDARY_LENGTH} characters.")
    return boundary


@contextlib.asynccontextmanager
async def receive_upload(request: Request, folder: Path, max_file_bytes: int) -> AsyncIterator[Upload]:
    """Stream the body into `folder` (private to the service); the file is deleted on exit, whatever happens."""
    boundary = _boundary(request)
    max_body = max_file_bytes + FIELDS_ALLOWANCE
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise too_large(max_file_bytes)  # refused before reading a byte of it
    # mkstemp: a new file (O_EXCL), mode 0600, in a 0700 folder: no other request or user can open it.
    fd, name = tempfile.mkstemp(dir=folder, prefix="upload-")
    upload = Upload(path=Path(name))
    try:
        with os.fdopen(fd, "wb") as sink:
            router = _PartRouter(upload, sink, max_file_bytes)
            parser = MultipartParser(boundary, router.callbacks())  # type: ignore[arg-type]
            received = 0
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_body:
                    raise too_large(max_file_bytes)
                try:
                    parser.write(chunk)
                except MultipartParseError:
                    raise _bad_body("The multipart/form-data body is malformed.") from None
                if router.ended:
                    break
        if not router.ended:
            raise _bad_body("The multipart/form-data body ended before its closing boundary.")
        if not upload.has_file:
            raise APIError(400, "The 'file' field with the audio is missing.", param=FILE_FIELD, code="missing_file")
        yield upload
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
