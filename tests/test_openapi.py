"""OpenAPI documents as a source of tools, with real parts: the shop API of tests/openapi_app.py served by uvicorn
in a subprocess on a free port (its own /openapi.json), registered in a real catalog (real embedder and Chroma),
routed to and called from Python, the agent's tools, the command line and an MCP client session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner
from helpers import free_port, serve_asgi
from mcp import Client

from agentic_router.indexes.errors import CatalogError, InputError, RemoteError
from agentic_router.serve.auth import ApiKeys
from agentic_router.serve.http import create_app
from agentic_router.indexes.sources.openapi_schema import input_schema
from agentic_router.serve.mcp import Access, build_server, http_app
from agentic_router.cli import main

APP = Path(__file__).resolve().parent / "openapi_app.py"
TOKEN = "shop-token-7f3a91c2e5b84d06"  # the API's bearer token: it must never reach a workspace file
V1_TOOLS = {"shop__get_items_by_item_id", "shop__create_order", "shop__get_weather", "shop__inventory_report",
            "shop__slow_report", "shop__account_balance"}


class ShopApi:
    """The shop API process: its URL, the requests it received, and which document it serves."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log, self.variant = folder / "requests.jsonl", folder / "variant"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.spec_url = self.url + "/openapi.json"
        env = {**os.environ, "SHOP_API_TOKEN": TOKEN}
        self.proc = subprocess.Popen([sys.executable, str(APP), "--port", str(self.port), "--log", str(self.log),
                                      "--variant", str(self.variant)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=(folder / "app.err").open("wb"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the shop API exited: {(folder / 'app.err').read_text()[-2000:]}")
            try:
                if httpx.get(self.spec_url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        pytest.fail("the shop API did not start")

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def serve(self, variant: str) -> None:
        self.variant.write_text(variant, encoding="utf-8")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a slow request still open: uvicorn waits for it
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopApi]:
    api = ShopApi(tmp_path_factory.mktemp("shop"))
    yield api
    api.stop()


def _files_hold(folder: Path, secret: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


# ---- Python API --------------------------------------------------------------------------------------------
def test_register_route_and_call(make_router, shop: ShopApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", TOKEN)
    router = make_router()
    report = router.add_openapi(shop.spec_url, name="shop", auth_env="SHOP_TOKEN", timeout=2)
    assert set(report["added"]) == V1_TOOLS and report["skipped"] == [] and report["removed"] == []
    order = router.describe_tool("shop__create_order")
    assert order["runner"] == "openapi" and order["server"] == "shop"
    assert order["description"] == "Place an order for an item. Orders a quantity of one item and returns the order number."
    schema = order["input_schema"]  # the JSON body's fields flattened beside the header parameter
    assert set(schema["properties"]) == {"item_id", "quantity", "note", "x-request-id"}
    assert schema["required"] == ["item_id", "quantity"] and schema["additionalProperties"] is False
    assert schema["properties"]["quantity"]["description"] == "How many units."
    item = router.describe_tool("shop__get_items_by_item_id")  # no operationId: named after method and path
    assert item["title"] == "Look up an item of the shop's inventory"
    assert item["input_schema"]["required"] == ["item_id"] and "verbose" in item["input_schema"]["properties"]

    assert router.route("place an order for three units of item 7", k=1)[0].name == "shop__create_order"
    result = router.call_tool("shop__create_order", {"item_id": 7, "quantity": 3, "x-request-id": "trace-1"})
    assert not result["is_error"] and result["structured"]["order_id"] == 1007
    assert shop.requests()[-1] == {"method": "POST", "path": "/orders", "query": "", "authorized": True,
                                   "has_auth": True, "request_id": "trace-1"}
    looked_up = router.call_tool("shop__get_items_by_item_id", {"item_id": 5, "verbose": True})
    assert looked_up["structured"]["verbose"] is True and shop.requests()[-1]["query"] == "verbose=true"

    before = len(shop.requests())  # wrong arguments are refused before any request is sent
    for bad, words in [({"item_id": 7}, "'quantity' is a required property"),
                       ({"item_id": 7, "quantity": 0}, "less than the minimum"),
                       ({"item_id": "seven", "quantity": 1}, "is not of type 'integer'"),
                       ({"item_id": 7, "quantity": 1, "colour": "red"}, "'colour' was unexpected")]:
        with pytest.raises(InputError, match=words) as caught:
            router.call_tool("shop__create_order", bad)
        assert "\n" not in str(caught.value)
    assert len(shop.requests()) == before

    failed = router.call_tool("shop__inventory_report", {})  # a 500 is the tool's own error, said in one line
    assert failed["is_error"] and failed["content"] == ('HTTP 500 Internal Server Error: '
                                                        '{"detail":"the warehouse database is on fire"}')
    started = time.monotonic()
    with pytest.raises(RemoteError, match=r"GET http://127\.0\.0\.1:\d+/slow did not answer within 2s"):
        router.call_tool("shop__slow_report", {"seconds": 30})
    assert time.monotonic() - started < 10

    assert router.call_tool("shop__account_balance", {})["structured"] == {"balance": 1234.5, "currency": "EUR"}
    monkeypatch.setenv("SHOP_TOKEN", "not-the-token")
    assert router.call_tool("shop__account_balance", {})["content"].startswith("HTTP 401")
    monkeypatch.delenv("SHOP_TOKEN")
    before = len(shop.requests())
    with pytest.raises(InputError, match="environment variable SHOP_TOKEN is not set"):
        router.call_tool("shop__account_balance", {})
    assert len(shop.requests()) == before
    monkeypatch.setenv("SHOP_TOKEN", TOKEN)

    # the agent's tool for an OpenAPI entry calls the API, sync and async, through the same validation
    [tool] = router.tools_for(router.route("what is the weather like in Lisbon today?", k=1))
    assert tool.metadata.get_name() == "shop__get_weather"
    assert json.loads(tool.call(city="Lisbon").content)["city"] == "Lisbon"
    assert json.loads(anyio.run(lambda: tool.acall(city="Porto")).content)["city"] == "Porto"
    with pytest.raises(InputError, match="'town' was unexpected"):
        tool.call(town="Porto")
    assert shop.requests()[-1]["path"] == "/weather/Porto"

    assert router.openapi_sources() == [{"name": "shop", "spec": shop.spec_url, "base_url": shop.url,
                                         "auth_env": "SHOP_TOKEN", "timeout": 2.0}]
    assert _files_hold(router.config.workspace, TOKEN) == []


def test_a_file_document_in_yaml_with_a_base_url(make_router, shop: ShopApi, tmp_path: Path) -> None:
    """OpenAPI 3.0 in YAML: ``nullable`` and boolean ``exclusiveMinimum`` read as 3.0 meant them."""
    spec = tmp_path / "weather.yaml"
    spec.write_text("""openapi: 3.0.3
info: {title: Weather Service}
paths:
  /weather/{city}:
    get:
      operationId: forecast.today
      summary: Today's forecast for a city
      parameters:
        - {name: city, in: path, required: true, schema: {type: string}}
        - {name: units, in: query, schema: {type: string, nullable: true, enum: [metric, imperial]}}
        - {name: days, in: query, schema: {type: integer, minimum: 0, exclusiveMinimum: true}}
  /upload:
    post:
      requestBody:
        required: true
        content: {multipart/form-data: {schema: {type: object}}}
""", encoding="utf-8")
    router = make_router()
    report = router.add_openapi(spec, base_url=shop.url + "/")
    assert report["server"] == "Weather_Service" and report["added"] == ["Weather_Service__forecast_today"]
    assert report["skipped"] == ["POST /upload: its request body is not JSON (multipart/form-data)"]
    schema = router.describe_tool("Weather_Service__forecast_today")["input_schema"]
    assert schema["properties"]["units"]["type"] == ["string", "null"] and None in schema["properties"]["units"]["enum"]
    assert schema["properties"]["days"] == {"type": "integer", "exclusiveMinimum": 0}
    with pytest.raises(InputError, match="less than or equal to the minimum of 0"):
        router.call_tool("Weather_Service__forecast_today", {"city": "Oslo", "days": 0})
    result = router.call_tool("Weather_Service__forecast_today", {"city": "Oslo", "units": None, "days": 2})
    assert result["structured"]["city"] == "Oslo" and shop.requests()[-1]["query"] == "days=2"


def test_mcp_client_finds_and_calls_an_openapi_tool(make_router, shop: ShopApi, monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
    """The router's MCP server on streamable HTTP (uvicorn in a thread of this process, real client session)."""
    monkeypatch.setenv("SHOP_TOKEN", TOKEN)
    router = make_router()
    router.add_openapi(shop.spec_url, name="shop", auth_env="SHOP_TOKEN", timeout=2)
    access = Access(loopback=True)

    async def steps(url: str) -> dict[str, Any]:
        async with Client(url + "/mcp", read_timeout_seconds=60) as client:
            listed = {t.name: t.description for t in (await client.list_tools()).tools}
            found = await client.call_tool("search_tools", {"query": "current weather in Oslo", "k": 1})
            called = await client.call_tool("call_tool", {"name": "shop__get_weather", "arguments": {"city": "Oslo"}})
            before = len(shop.requests())
            wrong = await client.call_tool("call_tool", {"name": "shop__get_weather", "arguments": {"town": "Oslo"}})
            unsent = len(shop.requests()) == before
            boom = await client.call_tool("call_tool", {"name": "shop__inventory_report", "arguments": {}})
        return {"listed": listed, "found": found.structured_content, "called": called.structured_content,
                "wrong": wrong, "unsent": unsent, "boom": boom}

    with serve_asgi(http_app(build_server(router, access), access, "127.0.0.1")) as url:
        out = anyio.run(steps, url)
    assert "Sources: OpenAPI shop (6 tools)." in out["listed"]["search_tools"]
    assert out["found"]["tools"][0]["name"] == "shop__get_weather"
    assert out["called"]["structured"] == {"city": "Oslo", "units": "metric", "temperature": 21, "sky": "clear"}
    assert out["wrong"].is_error and "'town' was unexpected" in out["wrong"].content[0].text and out["unsent"]
    assert out["boom"].is_error and "HTTP 500 Internal Server Error" in out["boom"].content[0].text


def test_a_body_stays_one_argument_when_flattening_would_change_it() -> None:
    doc = {"openapi": "3.1.0", "paths": {}}
    listed = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "array", "items": {"type": "integer"}}}}}}
    schema, plan, _ = input_schema(listed, [], doc, "doc", "POST /x")
    assert plan["body"] == "body" and schema["required"] == ["body"] and schema["properties"]["body"]["type"] == "array"
    clash = {"parameters": [{"name": "id", "in": "query", "schema": {"type": "string"}}],
             "requestBody": {"content": {"application/json": {"schema": {
                 "type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}}}}}
    schema, plan, _ = input_schema(clash, [], doc, "doc", "PUT /x")
    assert plan == {"params": {"id": ["query", "id"]}, "body": "body", "body_required": False}
    assert set(schema["properties"]) == {"id", "body"} and "required" not in schema


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _doc(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "bad"}, "servers": [{"url": "http://127.0.0.1:1"}],
            "paths": paths, **extra}


def test_bad_documents_change_nothing(make_router, shop: ShopApi, tmp_path: Path) -> None:
    router = make_router()
    router.add_openapi(shop.spec_url, name="shop")

    def state() -> tuple[Any, ...]:
        return ([s.to_dict() for s in router.list_tools()], router.catalog.version(), router.openapi_sources(),
                router.mcp_servers())

    before = state()
    body = {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}
    cycle = _write(tmp_path / "cycle.json", _doc({"/nodes": {"post": {"operationId": "add_node", **body}}}, components={
        "schemas": {"Node": {"type": "object", "properties": {"children": {"$ref": "#/components/schemas/Forest"}}},
                    "Forest": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}))
    twins = _write(tmp_path / "twins.json", _doc({"/a": {"get": {"operationId": "get.thing"}},
                                                  "/b": {"get": {"operationId": "get_thing"}}}))
    swagger = _write(tmp_path / "swagger.json", {"swagger": "2.0", "paths": {}})
    no_server = _write(tmp_path / "no_server.json", {**_doc({"/a": {"get": {}}}), "servers": []})
    failures = [
        ({"spec": cycle, "name": "shop", "replace": True}, InputError,
         r"\$ref cycle #/components/schemas/Node -> #/components/schemas/Forest -> #/components/schemas/Node"),
        ({"spec": twins}, InputError, "operations GET /a and GET /b would both be registered as 'bad__get_thing'"),
        ({"spec": swagger}, InputError, r"not an OpenAPI 3 document \(Swagger 2\.0\)"),
        ({"spec": no_server}, InputError, "names no absolute server URL; give --base-url"),
        ({"spec": tmp_path / "missing.json"}, InputError, "neither an http"),
        ({"spec": f"http://127.0.0.1:{free_port()}/openapi.json"}, RemoteError, "cannot fetch OpenAPI document"),
        ({"spec": shop.url + "/nothing.json"}, RemoteError, "HTTP 404"),
        ({"spec": shop.spec_url, "name": "shop", "base_url": "http://127.0.0.1:1"}, CatalogError,
         "already registered"),
        ({"spec": shop.spec_url, "name": "far", "base_url": "http://shop.example", "auth_env": "T"}, InputError,
         "only over https"),
        ({"spec": shop.spec_url, "name": "bad__name"}, InputError, "server name"),
        ({"spec": shop.spec_url, "auth_env": "NOT A VARIABLE"}, InputError, "--auth-env"),
    ]
    for kwargs, error, words in failures:
        with pytest.raises(error, match=words) as caught:
            router.add_openapi(**kwargs)
        assert "\n" not in str(caught.value)
        assert state() == before, kwargs


def test_sync_follows_the_served_document(make_router, shop: ShopApi) -> None:
    router = make_router()
    router.add_openapi(shop.spec_url, name="shop")
    embedded: list[str] = []
    real = router._embed_cards
    router._embed_cards = lambda texts: embedded.extend(texts) or real(texts)  # type: ignore[method-assign]
    shop.serve("v2")
    try:
        [report] = router.sync_sources("shop")
    finally:
        shop.serve("v1")
    assert report["added"] == ["shop__list_reviews"] and report["changed"] == ["shop__get_weather"]
    assert report["removed"] == ["shop__inventory_report"] and len(report["unchanged"]) == len(V1_TOOLS) - 2
    assert len(embedded) == 2  # only the new and the changed card
    assert router.describe_tool("shop__get_weather")["title"] == "Weather forecast for a city"
    assert router.route("what did customers write about item 3?", k=1)[0].name == "shop__list_reviews"
    assert router.call_tool("shop__list_reviews", {"item_id": 3})["structured"][0]["stars"] == 5
    with pytest.raises(CatalogError, match="unknown tool 'shop__inventory_report'"):
        router.call_tool("shop__inventory_report", {})
    version = router.catalog.version()
    [back] = router.sync_sources()  # the v1 document again: the reverse change
    assert back["added"] == ["shop__inventory_report"] and back["removed"] == ["shop__list_reviews"]
    [again] = router.sync_sources()
    assert again["added"] == again["changed"] == again["removed"] == [] and router.catalog.version() == version + 1
    kept = [s.to_dict() for s in router.list_tools()]
    shop.serve("broken")  # a document gone bad: the error is reported, the tools stay
    try:
        [failed] = router.sync_sources("shop")
    finally:
        shop.serve("v1")
    assert "not an OpenAPI 3 document (Swagger 2.0)" in failed["error"] and [s.to_dict() for s in router.list_tools()] == kept


# ---- the command line ------------------------------------------------------------------------------------
def test_cli_add_route_call_and_sync(tmp_path: Path, shop: ShopApi) -> None:
    runner = CliRunner()
    workspace = tmp_path / "ws"

    def run(*args: str, token: str | None = TOKEN):
        return runner.invoke(main, ["--workspace", str(workspace), "--llm", "none", *args],
                             env={"SHOP_TOKEN": token})

    added = run("tools", "add", "--openapi", shop.spec_url, "--server-name", "shop", "--auth-env", "SHOP_TOKEN",
                "--timeout", "2")
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == "shop: added 6, changed 0, removed 0, unchanged 0 tool(s)"
    routed = json.loads(run("route", "will it rain in Lisbon today?", "-k", "1", "--json").stdout)
    assert routed["tools"][0]["name"] == "shop__get_weather"
    called = run("tools", "call", "shop__get_weather", '{"city": "Lisbon", "units": "imperial"}')
    assert called.exit_code == 0 and json.loads(called.stdout)["units"] == "imperial"
    balance = run("tools", "call", "shop__account_balance", "--json")
    assert balance.exit_code == 0 and json.loads(balance.stdout)["structured"]["currency"] == "EUR"

    before = len(shop.requests())
    wrong = run("tools", "call", "shop__get_weather", '{"town": "Lisbon"}')
    assert wrong.exit_code == 1 and wrong.stderr.count("\n") == 1
    assert wrong.stderr.startswith("error: arguments of 'shop__get_weather' do not match its input schema")
    no_token = run("tools", "call", "shop__get_weather", '{"city": "Lisbon"}', token=None)
    assert no_token.exit_code == 1 and "SHOP_TOKEN is not set" in no_token.stderr
    assert len(shop.requests()) == before
    assert run("tools", "call", "shop__get_weather", "{city: Lisbon}").exit_code == 2  # not JSON
    boom = run("tools", "call", "shop__inventory_report")
    assert boom.exit_code == 1 and boom.stderr.strip() == ('error: shop__inventory_report reported an error: HTTP 500 '
                                                           'Internal Server Error: {"detail":"the warehouse database '
                                                           'is on fire"}')

    bad = tmp_path / "bad.json"
    bad.write_text('{"openapi": "3.1.0", "paths": {"/a": {"get": {"requestBody": {"$ref": "#/components/x"}}}}, '
                   '"servers": [{"url": "http://127.0.0.1:1"}]}')
    refused = run("tools", "add", "--openapi", str(bad))
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1 and "points at nothing" in refused.stderr
    assert run("tools", "add", "x.jsonl", "--base-url", "http://127.0.0.1:1").exit_code == 2
    assert run("tools", "add", "--openapi", shop.spec_url, "--mcp-url", "http://127.0.0.1:1/mcp").exit_code == 2
    synced = run("tools", "sync")
    assert synced.exit_code == 0 and synced.stdout.strip() == "shop: added 0, changed 0, removed 0, unchanged 6 tool(s)"
    assert _files_hold(workspace, TOKEN) == []


# ---- HTTP --------------------------------------------------------------------------------------------------
def test_http_registers_routes_calls_and_syncs(make_router, shop: ShopApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", TOKEN)
    keys = ApiKeys(read="r" * 16 + "-read", admin="a" * 16 + "-admin")
    admin, read = ({"Authorization": f"Bearer {k}"} for k in (keys.admin, keys.read))
    with serve_asgi(create_app(make_router(), keys=keys)) as url, httpx.Client(base_url=url, timeout=60) as c:
        body = {"url": shop.spec_url, "name": "shop", "auth_env": "SHOP_TOKEN", "timeout": 2}
        assert c.post("/v1/sources/openapi", json=body, headers=read).status_code == 403  # a write needs admin
        added = c.post("/v1/sources/openapi", json=body, headers=admin)
        assert added.status_code == 200 and set(added.json()["added"]) == V1_TOOLS
        routed = c.post("/v1/route", json={"query": "place an order for three units of item 7", "k": 1}, headers=read)
        assert routed.json()["tools"][0]["name"] == "shop__create_order"
        called = c.post("/v1/tools/shop__create_order/call", json={"arguments": {"item_id": 7, "quantity": 3}},
                        headers=admin).json()
        assert not called["is_error"] and called["structured"]["order_id"] == 1007 and shop.requests()[-1]["authorized"]
        before = len(shop.requests())
        wrong = c.post("/v1/tools/shop__create_order/call", json={"arguments": {"item_id": 7}}, headers=admin)
        assert wrong.status_code == 422 and "'quantity' is a required property" in wrong.json()["error"]
        assert len(shop.requests()) == before  # refused before any request reached the API
        assert c.post("/v1/tools/shop__create_order/call", json={"arguments": {}}, headers=read).status_code == 403
        assert c.post("/v1/tools/nope/call", json={}, headers=admin).status_code == 409
        local = c.post("/v1/sources/openapi", json={**body, "url": str(APP)}, headers=admin)
        assert local.status_code == 422 and "does not read its own files" in local.json()["error"]
        shop.serve("v2")
        try:
            [synced] = c.post("/v1/sources/sync", params={"name": "shop"}, headers=admin).json()
        finally:
            shop.serve("v1")
        assert synced["added"] == ["shop__list_reviews"] and synced["removed"] == ["shop__inventory_report"]


# ---- never empty while it works ------------------------------------------------------------------------------
def _many_operations(n: int, wording: str, start: int = 0) -> dict[str, Any]:
    subjects = "invoice parcel ticket booking refund badge shipment contract voucher meter".split()
    paths = {f"/things/{i}": {"get": {"operationId": f"op_{i}", "summary": f"{wording} the {subjects[i % 10]} "
                                      f"record number {i} of the back office", "responses": {"200": {"description": "ok"}}}}
             for i in range(start, start + n)}
    return {"openapi": "3.0.3", "info": {"title": "Back office", "version": "1"},
            "servers": [{"url": "http://127.0.0.1:9"}], "paths": paths}


def test_routes_during_a_sync_of_1000_operations_never_come_back_empty(make_router, tmp_path: Path) -> None:
    spec = tmp_path / "backoffice.json"
    spec.write_text(json.dumps(_many_operations(1000, "Fetch")), encoding="utf-8")
    router = make_router()
    assert len(router.add_openapi(str(spec), name="office")["added"]) == 1000
    # every description reworded (1,000 re-embedded), 100 operations gone and 100 new
    spec.write_text(json.dumps(_many_operations(1000, "Look up", start=100)), encoding="utf-8")
    reports: list[Any] = []
    syncing = threading.Thread(target=lambda: reports.extend(router.sync_sources("office")))
    routes: list[int] = []
    syncing.start()
    while syncing.is_alive():
        routes.append(len(router.route("look up the refund record of the back office", k=5)))
    syncing.join()
    [report] = reports
    assert "error" not in report and len(report["changed"]) == 900 and len(report["added"]) == 100
    assert len(report["removed"]) == 100 and len(router.list_tools()) == 1000
    assert len(routes) >= 20, "the sync ended before enough routes were made to say anything"
    assert min(routes) == 5, f"{routes.count(0)} of {len(routes)} routes during the sync came back empty"
