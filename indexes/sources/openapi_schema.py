"""From one OpenAPI operation to a JSON Schema of its arguments and the plan of where each argument goes.

Kept apart from ``openapi_source`` (reading documents, calling operations) because this half is pure data:
``$ref`` resolution with cycle detection, the 3.0 keywords JSON Schema reads differently, and the mapping of
parameters and request body onto one flat arguments object.

Why the body's fields are flattened: a model fills ``{"item_id": 7, "quantity": 3}`` more reliably than
``{"body": {...}}``. They stay nested under ``body`` when flattening could change the meaning: a field named
like a parameter, a body that is not an object with properties, or an optional body with required fields.
"""

from __future__ import annotations

import re
from typing import Any

from agentic_router.indexes.errors import InputError

MAX_NODES = 20_000  # nodes one operation's schema may expand to: a chain of $refs must not inline exponentially
_IGNORED_HEADERS = {"authorization", "content-type", "accept"}  # OpenAPI says these parameters are ignored
_JSON_MEDIA = re.compile(r"^application/(?:[\w.+-]+\+)?json\b", re.IGNORECASE)
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "not", "additionalProperties", "contains", "if", "then", "else")


class _Resolver:
    """Inlines local ``$ref``s; a reference reached again while it is being resolved is a cycle."""

    def __init__(self, doc: dict[str, Any], location: str) -> None:
        self.doc, self.location = doc, location
        self.memo: dict[str, tuple[Any, int]] = {}
        self.nodes = 0

    def __call__(self, node: Any, stack: tuple[str, ...] = ()) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InputError(f"OpenAPI document {self.location}: a schema expands to more than {MAX_NODES} nodes")
        if isinstance(node, list):
            return [self(v, stack) for v in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = self.ref(node["$ref"], stack)
            siblings = {k: self(v, stack) for k, v in node.items() if k != "$ref"}
            return {**target, **siblings} if siblings and isinstance(target, dict) else target
        return {k: self(v, stack) for k, v in node.items()}

    def ref(self, ref: Any, stack: tuple[str, ...]) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise InputError(f"OpenAPI document {self.location}: only local $refs ('#/...') are read, not {str(ref)[:80]!r}")
        if ref in stack:
            cycle = " -> ".join((*stack[stack.index(ref):], ref))
            raise InputError(f"OpenAPI document {self.location}: $ref cycle {cycle}; recursive schemas are not supported")
        if ref in self.memo:
            value, size = self.memo[ref]
            self.nodes += size
            if self.nodes > MAX_NODES:
                raise InputError(f"OpenAPI document {self.location}: a schema expands to more than {MAX_NODES} nodes")
            return value
        before = self.nodes
        value = self(self.lookup(ref), (*stack, ref))
        self.memo[ref] = (value, self.nodes - before)
        return value

    def lookup(self, ref: str) -> Any:
        node: Any = self.doc
        for part in ref[1:].lstrip("/").split("/") if ref != "#" else []:
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise InputError(f"OpenAPI document {self.location}: $ref {ref!r} points at nothing")
        return node


def resolve(node: Any, doc: dict[str, Any], location: str, shallow: bool = False) -> Any:
    """``node`` with its ``$ref``s inlined (``shallow``: only a ``$ref`` on ``node`` itself, for path items)."""
    resolver = _Resolver(doc, location)
    if shallow:
        seen: tuple[str, ...] = ()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            if node["$ref"] in seen:
                raise InputError(f"OpenAPI document {location}: $ref cycle {' -> '.join((*seen, node['$ref']))}")
            seen = (*seen, node["$ref"])
            node = resolver.lookup(node["$ref"])
        return node
    return resolver(node)


def input_schema(op: dict[str, Any], shared: list[Any], doc: dict[str, Any], location: str, label: str
                 ) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """``(schema, plan, reason)``: the arguments' JSON Schema, where each goes (``params``: argument ->
    [location, wire name]; ``body``: None, ``"body"`` or the flattened field names), and why the operation
    cannot be offered (a required cookie or a required body that is not JSON), else None."""
    resolver = _Resolver(doc, location)
    legacy = str(doc.get("openapi", "")).startswith("3.0")
    params: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in [*shared, *(op.get("parameters") or [])]:  # the operation's own win over the path's
        param = resolver(raw)
        if isinstance(param, dict) and isinstance(param.get("name"), str) and param.get("in"):
            params[(str(param["in"]), param["name"])] = param
    properties: dict[str, Any] = {}
    required: list[str] = []
    plan: dict[str, Any] = {"params": {}, "body": None, "body_required": False}
    for (where, wire), param in params.items():
        if where == "cookie" or (where == "header" and wire.lower() in _IGNORED_HEADERS):
            if where == "cookie" and param.get("required"):
                return {}, plan, f"it needs the cookie {wire!r}"
            continue
        if where not in ("path", "query", "header"):
            raise InputError(f"OpenAPI document {location}: {label}: parameter {wire!r} is 'in' {where!r}")
        arg = wire if wire not in properties else f"{where}_{wire}"
        properties[arg] = _param_schema(param, legacy)
        plan["params"][arg] = [where, wire]
        if param.get("required") or where == "path":
            required.append(arg)
    body = resolver(op.get("requestBody")) if op.get("requestBody") is not None else None
    if isinstance(body, dict) and isinstance(body.get("content"), dict) and body["content"]:
        media = next((m for t, m in body["content"].items() if _JSON_MEDIA.match(str(t))), None)
        body_required = bool(body.get("required"))
        if media is None:
            if body_required:
                return {}, plan, f"its request body is not JSON ({', '.join(map(str, body['content']))})"
        else:
            schema = _convert(media.get("schema") or {}, legacy) if isinstance(media, dict) else {}
            fields = schema.get("properties") if isinstance(schema, dict) else None
            inner_required = [r for r in schema.get("required", []) if isinstance(r, str)] if fields else []
            flat = (isinstance(fields, dict) and fields and not set(fields) & set(properties)
                    and (body_required or not inner_required) and "body" not in properties)
            plan["body_required"] = body_required
            if flat and isinstance(fields, dict):
                properties.update(fields)
                required.extend(r for r in inner_required if r in fields)
                plan["body"] = list(fields)
            else:
                arg = "body" if "body" not in properties else "request_body"
                if body.get("description") and isinstance(schema, dict) and "description" not in schema:
                    schema = {**schema, "description": " ".join(str(body["description"]).split())}
                properties[arg] = schema
                plan["body"] = arg
                if body_required:
                    required.append(arg)
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = list(dict.fromkeys(required))
    return out, plan, None


def _param_schema(param: dict[str, Any], legacy: bool) -> dict[str, Any]:
    schema = param.get("schema")
    if schema is None and isinstance(param.get("content"), dict) and param["content"]:
        first = next(iter(param["content"].values()))
        schema = first.get("schema") if isinstance(first, dict) else None
    schema = _convert(schema if isinstance(schema, dict) else {}, legacy)
    if param.get("description") and "description" not in schema:
        schema = {**schema, "description": " ".join(str(param["description"]).split())}
    return schema


def _convert(schema: Any, legacy: bool) -> Any:
    """A copy of ``schema`` that JSON Schema reads as OpenAPI 3.0 meant it: ``nullable`` becomes a ``null``
    type, boolean ``exclusiveMinimum``/``exclusiveMaximum`` become numbers (3.1 already is JSON Schema)."""
    if not legacy or not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if out.pop("nullable", False) is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(flag), bool) and out.pop(flag) and bound in out:
            out[flag] = out.pop(bound)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _convert(v, legacy) for k, v in out["properties"].items()}
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_convert(v, legacy) for v in out[key]]
    for key in _SUBSCHEMA_ONE:
        if isinstance(out.get(key), dict):
            out[key] = _convert(out[key], legacy)
    return out
