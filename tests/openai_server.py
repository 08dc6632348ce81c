"""A tiny OpenAI-compatible server on loopback for tests (standard library only).

It answers ``POST /v1/chat/completions`` (plain and SSE streaming) and ``GET /v1/models`` with a
deterministic ReAct policy, so an agent loop can be tested end to end without any real model:
the first turn calls the first tool listed in llama-index's ReAct system prompt, the next turn answers
with the tool's observation.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Policy = Callable[[list[dict[str, Any]]], str]

# llama-index's ReActChatFormatter lists each tool as "> Tool Name: NAME" (see get_react_tool_descriptions)
TOOL_LINE = re.compile(r"^> Tool Name: (.+?)\s*$", re.MULTILINE)


def message_text(message: dict[str, Any]) -> str:
    """Content as text; the OpenAI format also allows a list of typed parts."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def react_policy(messages: list[dict[str, Any]]) -> str:
    """Act with the first listed tool until an observation arrives, then answer with it."""
    system = "\n".join(message_text(m) for m in messages if m.get("role") == "system")
    users = [message_text(m) for m in messages if m.get("role") == "user"]
    last_user = users[-1] if users else ""
    tools = TOOL_LINE.findall(system)
    if not tools:
        return f"Answer: {last_user}"
    # the system prompt itself explains "Observation: tool response", so only later turns count
    observed = [message_text(m) for m in messages if m.get("role") != "system" and "Observation:" in message_text(m)]
    if not observed:
        return (
            "Thought: The current language of the user is: English. I need to use a tool to help me answer "
            f"the question.\nAction: {tools[0]}\nAction Input: {json.dumps({'input': last_user})}"
        )
    observation = observed[-1].rsplit("Observation:", 1)[1].strip()
    return f"Thought: I can answer without using any more tools. I'll use the user's language to answer\nAnswer: {observation[:200]}"


class OpenAICompatServer:
    """Context manager running the server in a daemon thread on 127.0.0.1 and a free port."""

    def __init__(self, policy: Policy | None = None, model: str = "test-model") -> None:
        self.policy: Policy = policy or react_policy
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "OpenAICompatServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "OpenAICompatServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/v1/models":
                    return self._json(404, _error(f"unknown path {self.path}"))
                model = {"id": server.model, "object": "model", "created": int(time.time()), "owned_by": "tests"}
                self._json(200, {"object": "list", "data": [model]})

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._json(404, _error(f"unknown path {self.path}"))
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                except json.JSONDecodeError:
                    return self._json(400, _error("body is not JSON"))
                server._record(body)
                messages = body.get("messages") or []
                text = server.policy(messages)
                model = body.get("model") or server.model
                usage = _usage(messages, text)
                cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
                if not body.get("stream"):
                    choice = {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                    return self._json(
                        200,
                        {"id": cid, "object": "chat.completion", "created": created, "model": model,
                         "choices": [choice], "usage": usage, "system_fingerprint": "fp_test"},
                    )
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()  # HTTP/1.0: the connection closes after [DONE], ending the stream

                def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
                    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                            "system_fingerprint": "fp_test",
                            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

                events = [chunk({"role": "assistant", "content": ""}, None)]
                events += [chunk({"content": piece}, None) for piece in re.findall(r"\S+\s*|\s+", text)]
                events.append(chunk({}, "stop"))
                if (body.get("stream_options") or {}).get("include_usage"):
                    events.append({**chunk({}, None), "choices": [], "usage": usage})
                for event in events:
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        return Handler


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


def _usage(messages: list[dict[str, Any]], text: str) -> dict[str, int]:
    prompt = sum(len(message_text(m).split()) for m in messages)
    completion = len(text.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
