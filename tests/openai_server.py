"""A tiny OpenAI-compatible server on loopback for tests (standard library only).

It answers ``POST /v1/chat/completions`` (plain and SSE streaming) and ``GET /v1/models`` with a
deterministic ReAct policy, so an agent loop can be tested end to end without any real model:
the first turn calls the first tool listed in llama-index's ReAct system prompt, the next turn answers
with the tool's observation.

``POST /v1/responses`` plays a model with a client-executed ``tool_search`` tool (``tool_search_policy``):
it searches first, then calls the first tool the search loaded, then answers with that call's output. It
refuses, as a 400, what the Responses API documents as wrong: an output whose ``call_id`` answers no call,
and a call of a tool that was neither declared callable nor loaded by a search.
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
ResponsesPolicy = Callable[[dict[str, Any]], list[dict[str, Any]]]


class RequestRefused(ValueError):
    """A request the real API would refuse with a 400; the message says which rule it breaks."""

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


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("input") or []
    return [{"role": "user", "content": raw}] if isinstance(raw, str) else [i for i in raw if isinstance(i, dict)]


def _callable_tools(body: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Functions the model may call now: declared and not deferred, or loaded by a ``tool_search_output``."""
    tools = {t["name"]: t for t in body.get("tools") or [] if t.get("type") == "function" and not t.get("defer_loading")}
    for item in items:
        if item.get("type") == "tool_search_output":
            tools.update({t["name"]: t for t in item.get("tools") or [] if t.get("type") == "function"})
    return tools


def _check_pairs(items: list[dict[str, Any]]) -> None:
    calls = {i.get("call_id") for i in items if i.get("type") in ("tool_search_call", "function_call")}
    for item in items:
        if item.get("type") in ("tool_search_output", "function_call_output") and item.get("call_id") not in calls:
            raise RequestRefused(f"No tool call found for {item.get('type')} with call_id {item.get('call_id')}.")


def _arguments(tool: dict[str, Any], text: str) -> dict[str, Any]:
    """The user's words for every required string parameter (what a scripted model can fill in)."""
    schema = tool.get("parameters") or {}
    props = schema.get("properties") or {}
    return {name: text for name in schema.get("required") or [] if (props.get(name) or {}).get("type") == "string"}


def tool_search_policy(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Search, call the first loaded tool, answer with its output (or say that nothing was found)."""
    items = _items(body)
    _check_pairs(items)
    users = [message_text(i) for i in items if i.get("role") == "user"]
    question = users[-1] if users else ""
    searching = any(t.get("type") == "tool_search" and t.get("execution") == "client" for t in body.get("tools") or [])
    outputs = [i for i in items if i.get("type") == "function_call_output"]
    found = [i for i in items if i.get("type") == "tool_search_output"]
    if outputs:
        return [_message(f"Done: {str(outputs[-1].get('output'))[:300]}")]
    if found:
        loaded = [t for t in found[-1].get("tools") or [] if t.get("type") == "function"]
        if not loaded:
            return [_message("No tool can do that, so I cannot help with this request.")]
        tool = loaded[0]
        if tool["name"] not in _callable_tools(body, items):
            raise RequestRefused(f"Tool {tool['name']!r} is not callable.")
        return [{"type": "function_call", "id": f"fc_{uuid.uuid4().hex[:12]}", "call_id": f"call_{uuid.uuid4().hex[:12]}",
                 "name": tool["name"], "arguments": json.dumps(_arguments(tool, question)), "status": "completed"}]
    if searching:
        return [{"type": "tool_search_call", "id": f"tsc_{uuid.uuid4().hex[:12]}", "call_id": f"call_{uuid.uuid4().hex[:12]}",
                 "execution": "client", "status": "completed", "arguments": {"query": question}}]
    return [_message(question)]


def _message(text: str) -> dict[str, Any]:
    return {"type": "message", "id": f"msg_{uuid.uuid4().hex[:12]}", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


class OpenAICompatServer:
    """Context manager running the server in a daemon thread on 127.0.0.1 and a free port."""

    def __init__(self, policy: Policy | None = None, model: str = "test-model",
                 responses_policy: ResponsesPolicy | None = None) -> None:
        self.policy: Policy = policy or react_policy
        self.responses_policy: ResponsesPolicy = responses_policy or tool_search_policy
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
                path = self.path.rstrip("/")
                if path not in ("/v1/chat/completions", "/v1/responses"):
                    return self._json(404, _error(f"unknown path {self.path}"))
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                except json.JSONDecodeError:
                    return self._json(400, _error("body is not JSON"))
                server._record(body)
                if path == "/v1/responses":
                    try:
                        output = server.responses_policy(body)
                    except RequestRefused as exc:
                        return self._json(400, _error(str(exc)))
                    return self._json(200, _response(body.get("model") or server.model, body, output))
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


def _response(model: str, body: dict[str, Any], output: list[dict[str, Any]]) -> dict[str, Any]:
    """A Responses API ``response`` object around the policy's output items."""
    return {"id": f"resp_{uuid.uuid4().hex[:24]}", "object": "response", "created_at": int(time.time()),
            "status": "completed", "model": model, "output": output, "error": None,
            "incomplete_details": None, "instructions": None, "metadata": {}, "parallel_tool_calls": False,
            "temperature": 1.0, "top_p": 1.0, "tool_choice": "auto", "tools": body.get("tools") or [],
            "usage": {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2}}


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


def _usage(messages: list[dict[str, Any]], text: str) -> dict[str, int]:
    prompt = sum(len(message_text(m).split()) for m in messages)
    completion = len(text.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
