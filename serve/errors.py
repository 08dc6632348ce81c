"""How the service refuses: every error is one JSON line with the right status, and no failure escapes.

A ``RouterError`` maps to a 4xx by its kind, validation errors name the first bad field, and anything
unexpected becomes a JSON 500 at the outermost layer (``ContainErrors``) so the client's connection lives on.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentic_router.indexes.errors import CatalogError, InputError, ModelError, RouterError, StateError
from agentic_router.serve.limits import UnsupportedUpload, WatchedSend, send_json

logger = logging.getLogger(__name__)
STATUS_OF = ((UnsupportedUpload, 415), (InputError, 422), (CatalogError, 409), (ModelError, 422), (StateError, 503))


def install_error_handlers(app: FastAPI) -> None:
    """Every refusal is JSON with one readable line: ``{"error": "..."}`` (plus ``errors`` for validation)."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return JSONResponse({"error": f"malformed JSON: {first.get('ctx', {}).get('error', 'cannot parse')}"}, 400)
        if first.get("type") == "missing" and tuple(first.get("loc", ())) == ("body",):
            return JSONResponse({"error": "the request body is empty; send a JSON document"}, 400)
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        details = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in errors[:20]]
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}", "errors": details}, 422)

    @app.exception_handler(RouterError)
    async def refused(_: Request, exc: RouterError) -> JSONResponse:
        status = next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 400)
        return JSONResponse({"error": (str(exc).strip().splitlines() or [type(exc).__name__])[0]}, status)



class ContainErrors:
    """An unexpected failure becomes a JSON 500 here and goes no further. Left to Starlette's outermost
    handler it would be re-raised to the server, which then drops the client's keep-alive connection and
    fails its next request too."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = WatchedSend(send)
        try:
            await self.app(scope, receive, watched)
        except Exception as exc:  # noqa: BLE001 - the last line of defence, logged with its traceback
            logger.exception("request failed: %s %s", scope.get("method"), scope.get("path"))
            if watched.started:
                raise
            await send_json(send, 500, {"error": f"internal error ({type(exc).__name__}); see the service log"})
