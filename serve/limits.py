"""What one request may ask of the service, checked before any work is done.

Body size is enforced while the body arrives (the declared ``Content-Length`` first, then the bytes
actually received, for chunked uploads), so a 100 MB request is refused without being held in memory.
Uploads are parsed in memory from that bounded body: nothing is spooled to the system's temporary
folder, and the files handed to the document loader are written inside the workspace only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException

from agentic_router.indexes.errors import InputError
from agentic_router.indexes.sources.documents import SUPPORTED
from agentic_router.router.retrieval.retriever import MAX_QUERY_CHARS

MiB = 1024 * 1024
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    """Bounds of one request. Questions travel in small bodies; catalogs and documents in large ones."""

    max_body: int = 16 * MiB  # POST /v1/tools, POST /v1/documents (JSON rows or an upload)
    max_question_body: int = 256 * 1024  # every other request: a 10,000-character question fits many times
    max_query_chars: int = MAX_QUERY_CHARS
    max_k: int = 100
    max_rows: int = 50_000  # tool or document rows in one request
    max_files: int = 32  # files in one upload
    upload_suffixes: frozenset[str] = field(default_factory=lambda: frozenset(SUPPORTED))
    bulk_paths: tuple[str, ...] = ("/v1/tools", "/v1/documents")

    def body_limit(self, method: str, path: str) -> int:
        return self.max_body if method == "POST" and path in self.bulk_paths else self.max_question_body


class BodyTooLarge(HTTPException):
    """An HTTP error, so that FastAPI's body parsing passes it on as a 413 instead of a generic 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes, the limit for this endpoint")


class BodyLimitMiddleware:
    """Refuses bodies over the endpoint's limit with a JSON 413, before and while they arrive."""

    def __init__(self, app: Callable[..., Awaitable[None]], limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.body_limit(scope["method"], scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                await send_json(send, 400, {"error": "Content-Length is not a number"}, close=True)
                return
            if too_large:
                await send_json(send, 413, {"error": BodyTooLarge(limit).detail}, close=True)
                return
        received = 0

        async def counted_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        watched = WatchedSend(send)
        try:
            await self.app(scope, counted_receive, watched)
        except BodyTooLarge as exc:
            if not watched.started:
                await send_json(send, 413, {"error": exc.detail}, close=True)


class WatchedSend:
    """An ASGI ``send`` that remembers whether the response has begun: a middleware catching a failure may
    answer with its own JSON response only before that, never in the middle of another one."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: dict[str, Any]) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


async def send_json(send: Send, status: int, payload: dict[str, Any], close: bool = False) -> None:
    """A JSON response; ``close`` when the request's body was left unread (the connection cannot be reused)."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": headers + ([(b"connection", b"close")] if close else [])})
    await send({"type": "http.response.body", "body": body})


def parse_multipart(content_type: str, body: bytes, limits: Limits) -> list[tuple[str, bytes]]:
    """``(file name, content)`` of every file part of a multipart/form-data body; fields are ignored.

    Only the base name of a file is kept (a client's path means nothing here) and its suffix must be one
    the document loader reads; anything else is refused before a byte is written."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InputError("multipart body without a boundary")
    parts: list[dict[str, Any]] = []
    header: dict[str, bytes] = {"field": b"", "value": b""}

    def on_part_begin() -> None:
        parts.append({"headers": {}, "data": bytearray()})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        parts[-1]["headers"][header["field"].decode("latin-1").lower()] = header["value"].decode("utf-8", "replace")
        header["field"], header["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1]["data"] += data[start:end]

    parser = MultipartParser(boundary, {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                                        "on_header_value": on_header_value, "on_header_end": on_header_end,
                                        "on_part_data": on_part_data})
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # noqa: BLE001 - python-multipart raises several types for broken bodies
        raise InputError(f"malformed multipart body ({exc})".splitlines()[0]) from exc
    files = []
    for part in parts:
        _, disposition = parse_options_header(part["headers"].get("content-disposition", ""))
        raw_name = disposition.get(b"filename")
        if raw_name is None:
            continue
        name = raw_name.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1].strip()
        if not name or any(ord(c) < 32 or c == "\x7f" for c in name) or len(name) > 200:
            raise InputError(f"upload file name {name[:80]!r} must be 1-200 printable characters")
        suffix = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
        if suffix not in limits.upload_suffixes:
            raise UnsupportedUpload(f"{name or '(no name)'}: unsupported file type {suffix or '(none)'}; "
                                    f"upload one of {', '.join(sorted(limits.upload_suffixes))}")
        files.append((name, bytes(part["data"])))
    if not files:
        raise InputError("the upload holds no file; send the document as a multipart 'file' field")
    if len(files) > limits.max_files:
        raise InputError(f"{len(files)} files in one upload; the limit is {limits.max_files}")
    return files


class UnsupportedUpload(InputError):
    """A file of a type the loader does not read (HTTP 415)."""
