"""Replicas: routers in separate workspaces share one catalog, its rows in a real PostgreSQL (a database per
test) and its vectors on a real `chroma run` server (one per test).

Two routers in one test process are two replicas (each opens its own connections and keeps its own
snapshot); the service tests run real `agentic-router serve` processes; the crash tests kill a writer process
with SIGKILL at each point of a change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from helpers import assert_first, free_port

from agentic_router.indexes.config import BUNDLED_EMBEDDER
from agentic_router.indexes.encoders.embeddings import resolve_model_path
from agentic_router.indexes.schema import ToolSpec
import psycopg

from agentic_router.indexes.storage.docstore import HASH_FILE
from agentic_router.router.app import AgenticRouter

BIN = Path(sys.executable).parent
ADMIN_KEY = "admin-key-0123456789abcdef"
QUESTION = "Which pigment absorbs light for photosynthesis?"



def _wait(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"not within {seconds:.0f}s: {what}")


def _open(tmp_path: Path, name: str, url: str, state: str) -> AgenticRouter:
    return AgenticRouter.open(tmp_path / name, llm_provider="none", chroma_url=url, state_url=state)


def _tools(router: AgenticRouter) -> list[str]:
    return sorted(s.name for s in router.catalog.list_tools())


def _ranking(router: AgenticRouter, question: str) -> list[tuple[str, float]]:
    return [(h.name, round(h.score, 5)) for h in router.route(question, 5)]


def _sql(state: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(state) as conn:
        return conn.execute(query).fetchall()


WEATHER = ToolSpec(kind="external", name="get_weather", description="Weather forecast for a city: rain, temperature, wind")
EMAIL = ToolSpec(kind="external", name="send_email", description="Send an email message to a recipient")


def test_two_routers_share_tools_documents_memory_and_settings(chroma: str, state_url: str, tmp_path: Path,
                                                               corpus_dir: Path) -> None:
    a, b = _open(tmp_path, "a", chroma, state_url), _open(tmp_path, "b", chroma, state_url)
    a.add_tools([WEATHER, EMAIL])
    _wait(lambda: _tools(b) == ["get_weather", "send_email"], 1, "b sees a's tools within a second")
    assert b.route("will it rain in Oslo tomorrow", 1)[0].name == "get_weather"

    a.ingest([corpus_dir])  # written by a, read by b
    _wait(lambda: b.catalog.version() == a.catalog.version(), 1, "b at a's version")
    assert {d["doc_id"] for d in b.list_documents()} == {d["doc_id"] for d in a.list_documents()} != set()
    assert _ranking(b, QUESTION) == _ranking(a, QUESTION)
    summary = next(h for h in b.route(QUESTION, 10) if h.kind == "summary")
    doc = b.workspace.db.get_document(summary.doc_id)
    assert not (b.config.docs_dir / doc["storage"]).exists()  # b never built this document ...
    answer = str(b.tools_for([summary])[0].call(QUESTION))
    assert "chlorophyll" in answer.lower()  # ... yet its summary index answers, unpacked from the shared state
    assert (b.config.docs_dir / doc["storage"] / HASH_FILE).read_text() == doc["content_hash"]

    assert b.feedback("tell my landlord the rent is late", "send_email")  # usage memory recorded by b ...
    _wait(lambda: [r[2] for r in a.workspace.db.feedback()] == ["send_email"], 1, "a sees b's recorded request")
    assert a.route("tell my landlord the rent is late", 1)[0].name == "send_email"

    a.workspace.save_routing({"weights": {"lexical_weight": 0.1, "memory_weight": 0.7}, "n": 0})
    _wait(lambda: (b.workspace.routing_weights().lexical_weight, b.workspace.routing_weights().memory_weight)
          == (0.1, 0.7), 1, "b reads a's routing weights")
    a.registry.set_active(reranker="some-reranker")
    _wait(lambda: b.registry.active() == {"embedder": None, "reranker": "some-reranker"}, 1, "b reads a's choice")
    a.registry.set_active(reranker=None)

    b.delete_tools(["send_email"])
    b.delete_document(summary.doc_id)
    _wait(lambda: "send_email" not in _tools(a), 1, "a sees b's deletion")
    assert summary.doc_id not in {d["doc_id"] for d in a.list_documents()}
    assert a.workspace.db.feedback() == []
    assert _sql(state_url, f"SELECT doc_id FROM document_files WHERE doc_id = '{summary.doc_id}'") == []

    c = _open(tmp_path, "c", chroma, state_url)  # a replica started late reads the rows as they are
    a.follow_active()  # the weights chosen above: open routers switch to them when asked (the service polls)
    _wait(lambda: a.workspace.db.version() == b.workspace.db.version() == c.workspace.db.version(), 1, "one version")
    assert _tools(c) == _tools(a) == _tools(b)
    assert _ranking(c, QUESTION) == _ranking(a, QUESTION)
    for router in (a, b, c):
        router.close()


def test_concurrent_writers_on_two_replicas_lose_nothing(chroma: str, state_url: str, tmp_path: Path) -> None:
    a, b = _open(tmp_path, "a", chroma, state_url), _open(tmp_path, "b", chroma, state_url)
    errors: list[BaseException] = []

    def add(router: AgenticRouter, prefix: str) -> None:
        try:
            for i in range(6):
                router.add_tools([ToolSpec(kind="external", name=f"{prefix}_{i}", description=f"{prefix} tool number {i}")])
                router.feedback(f"please run {prefix} {i}", f"{prefix}_{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(a, "alpha")), threading.Thread(target=add, args=(b, "beta"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    expected = sorted([f"alpha_{i}" for i in range(6)] + [f"beta_{i}" for i in range(6)])
    _wait(lambda: a.workspace.db.version() == b.workspace.db.version() == 24, 1,  # one version per change
          "both replicas at the last change")
    assert _tools(a) == _tools(b) == expected  # none lost
    assert len(a.workspace.db.feedback()) == 12
    assert a.catalog.cards.count() == 12  # vectors on the shared server: one card per tool
    a.close()
    b.close()


def test_routes_survive_a_postgresql_restart_and_writes_resume(chroma: str, tmp_path: Path) -> None:
    from postgres_server import PostgresServer

    server = PostgresServer(tmp_path / "pg")
    server.start()
    try:
        state = server.create_database("catalog")
        a, b = _open(tmp_path, "a", chroma, state), _open(tmp_path, "b", chroma, state)
        a.add_tools([WEATHER, EMAIL])
        _wait(lambda: _tools(b) == ["get_weather", "send_email"], 1, "b sees a's tools")
        before = _ranking(b, "will it rain in Oslo tomorrow")
        server.stop("immediate")  # as if the machine lost it
        assert _ranking(b, "will it rain in Oslo tomorrow") == before  # routes answer from b's snapshot
        assert b.route("send a message to my boss", 1)[0].name == "send_email"
        from agentic_router.indexes.errors import StateError

        with pytest.raises(StateError, match="unreachable"):
            a.add_tools([ToolSpec(kind="external", name="book_flight", description="Book a flight ticket")])
        assert _tools(a) == ["get_weather", "send_email"]  # nothing half written
        server.start()
        _wait(lambda: a.workspace.db.listening.is_set() and b.workspace.db.listening.is_set(), 30,
              "both replicas listen again")
        a.add_tools([ToolSpec(kind="external", name="book_flight", description="Book a flight ticket")])
        _wait(lambda: "book_flight" in _tools(b), 1, "b sees a's write after the restart")
        assert_first(b.route("book me a flight to Rome", 3), "book_flight")  # leads by 0.45 (AMD EPYC)
        assert b.catalog.version() == 2 and a.catalog.cards.count() == 3  # the refused write left no vector behind either
        a.close()
        b.close()
    finally:
        server.stop_and_remove()


# ---- a writer killed with SIGKILL in the middle of a change ---------------------------------------------
_KILLER = """
import os, signal, sys
from agentic_router.indexes.schema import ToolSpec
from agentic_router.indexes.storage import catalog, catalog_db, postgres
from agentic_router.router.app import AgenticRouter

point, action = sys.argv[4], sys.argv[5]
def die_after(owner, name):
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result
    setattr(owner, name, wrapped)
{"vectors": lambda: die_after(catalog.Catalog, "_upsert_cards"),     # vectors written, rows not committed
 "rows": lambda: die_after(catalog_db.Change, "finish"),              # rows written, not committed
 "committed": lambda: die_after(postgres.PostgresCatalogDB, "_committed"),  # committed, old vectors kept
 }[point]()
router = AgenticRouter.open(sys.argv[1], llm_provider="none", chroma_url=sys.argv[2], state_url=sys.argv[3])
if action == "add":
    router.add_tools([ToolSpec(kind="external", name="book_flight", description="Book a flight ticket")])
elif action == "replace":
    router.add_tools([ToolSpec(kind="external", name="get_weather", description="Tide tables for a harbour")],
                     replace=True)
elif action == "delete":
    router.delete_tools(["send_email"])
elif action == "ingest":
    router.ingest([sys.argv[6]])
print("not killed")
"""


@pytest.mark.parametrize(("point", "action", "tools_after"), [
    ("vectors", "add", ["get_weather", "send_email"]),
    ("rows", "add", ["get_weather", "send_email"]),
    ("committed", "add", ["book_flight", "get_weather", "send_email"]),
    ("vectors", "replace", ["get_weather", "send_email"]),
    ("committed", "delete", ["get_weather"]),
    ("rows", "ingest", ["get_weather", "send_email"]),
])
def test_a_writer_killed_mid_change_leaves_no_half_change(chroma: str, state_url: str, tmp_path: Path,
                                                          corpus_dir: Path, point: str, action: str,
                                                          tools_after: list[str]) -> None:
    a = _open(tmp_path, "a", chroma, state_url)
    a.add_tools([WEATHER, EMAIL])
    weather_id = a.catalog.get_tool("get_weather").tool_id
    version = a.catalog.version()
    script = tmp_path / "killer.py"
    script.write_text(_KILLER, encoding="utf-8")
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "killed"), chroma, state_url, point, action,
                          str(corpus_dir)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert run.returncode == -9, run.stdout + run.stderr[-2000:]

    a.workspace.db.refresh()
    assert _tools(a) == tools_after  # the change is all there or not there at all
    assert a.catalog.get_tool("get_weather").tool_id == weather_id  # a replaced tool keeps its committed row
    assert a.catalog.version() == version + (1 if point == "committed" else 0)
    if action == "ingest":
        assert a.list_documents() == [] and _sql(state_url, "SELECT COUNT(*) FROM documents") == [(0,)]
    # the killed writer's lock went with its session: the next writer goes straight in, and repairs vectors
    started = time.monotonic()
    a.add_tools([ToolSpec(kind="external", name="call_taxi", description="Order a taxi to an address")])
    assert time.monotonic() - started < 10
    done = a.repair()  # what `serve` runs at start-up: vectors made to match the rows
    names = {s.name: s.tool_id for s in a.catalog.list_tools()}
    cards = a.catalog.cards.get(include=["metadatas"])
    assert dict(zip(cards["ids"], (m["tool_id"] for m in cards["metadatas"]))) == names
    if action == "ingest":
        assert a.catalog.chunks.count() == 0 and done["chunks_removed"] > 0  # the orphan chunks were swept
    assert a.route("will it rain in Oslo tomorrow", 1)[0].name == "get_weather"
    a.close()


# ---- two service processes ---------------------------------------------------------------------------
class Replica:
    def __init__(self, root: Path, name: str, chroma: str, state: str, models: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTIC_ROUTER_")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
                   AGENTIC_ROUTER_ADMIN_KEY=ADMIN_KEY, AGENTIC_ROUTER_READ_KEY="read-key-0123456789abcdef",
                   AGENTIC_ROUTER_MODELS_PATH=str(models))
        self.log = root / f"{name}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([str(BIN / "agentic-router"), "--workspace", str(root / name), "--llm", "none",
                                          "serve", "--port", str(self.port), "--chroma-url", chroma,
                                          "--state-url", state, *extra],
                                         stdout=log, stderr=log, env=env)
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=120)

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"replica exited: {self.log.read_text()[-2000:]}")
            return self.http.get("/readyz").status_code == 200
        _wait(ready, 180, f"replica {self.url} ready")

    def tools(self) -> list[str]:
        return sorted(t["name"] for t in self.http.get("/v1/tools").json())

    def route(self, query: str) -> list[Any]:
        return [(t["name"], round(t["score"], 5)) for t in self.http.post("/v1/route", json={"query": query, "k": 5}).json()["tools"]]

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _route_count(metrics: str) -> float:
    """``/v1/route`` requests answered 200, from a Prometheus text page."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("agentic_router_http_requests_total{") and 'route="/v1/route"' in line
               and 'status="200"' in line)


def test_two_service_processes_answer_the_same_and_see_each_others_writes(chroma: str, state_url: str,
                                                                          tmp_path: Path) -> None:
    models = tmp_path / "shared-models"
    one = Replica(tmp_path, "one", chroma, state_url, models, "--workers", "2")
    two = Replica(tmp_path, "two", chroma, state_url, models)
    try:
        one.wait_ready()
        two.wait_ready()
        pids = set()
        for _ in range(40):  # replica one is two worker processes on one port; fresh connections reach both
            with httpx.Client(base_url=one.url, timeout=60) as fresh:
                reply = fresh.get("/readyz")
                if reply.status_code == 200:
                    pids.add(reply.json()["process"])
            if len(pids) == 2:
                break
            time.sleep(0.25)
        assert len(pids) == 2 and one.proc.pid not in pids
        routes = 0
        for _ in range(12):  # fresh connections: the routes and scrapes land on both workers
            with httpx.Client(base_url=one.url, timeout=60, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as fresh:
                assert fresh.post("/v1/route", json={"query": "weather", "k": 2}).status_code == 200
                routes += 1
                assert _route_count(fresh.get("/metrics").text) == routes  # every worker's requests, summed
        rows = [{"name": "get_weather", "description": WEATHER.description},
                {"name": "send_email", "description": EMAIL.description}]
        assert one.http.post("/v1/tools", json=rows).status_code == 200
        _wait(lambda: two.tools() == ["get_weather", "send_email"], 1, "replica two sees replica one's tools")
        doc = {"doc_id": "chlorophyll", "title": "Chlorophyll", "text": "Chlorophyll is the green pigment of plants. "
               "It absorbs red and blue light and passes the energy to photosynthesis in the chloroplast."}
        assert two.http.post("/v1/documents", json=[doc]).status_code == 200
        _wait(lambda: "chlorophyll" in {d["doc_id"] for d in one.http.get("/v1/documents").json()},
              1, "replica one sees replica two's document")
        assert one.route(QUESTION) == two.route(QUESTION)
        assert one.route(QUESTION)[0][0].endswith("chlorophyll")
        assert two.http.delete("/v1/tools/send_email").status_code == 200
        _wait(lambda: "send_email" not in one.tools(), 1, "replica one sees the deletion")
        assert "get_weather" in one.tools()

        target = models / "copy1"  # a trained version in the folder both replicas read
        shutil.copytree(resolve_model_path(BUNDLED_EMBEDDER), target / "model")
        (target / "version.json").write_text(json.dumps({"name": "copy1", "method": "full", "base": "base",
                                                         "path": "copy1/model"}), encoding="utf-8")
        switched = one.http.post("/v1/models/copy1/activate")
        assert switched.status_code == 200, switched.text
        _wait(lambda: two.http.get("/v1/models").json()["active"]["embedder"] == "copy1", 1,
              "replica two reads the shared choice")  # notified at once ...
        _wait(lambda: two.http.get("/readyz").json()["serving"]["embedder"] == "copy1", 120,
              "replica two serves the version replica one activated")  # ... and the other replica follows
        assert one.route(QUESTION) == two.route(QUESTION)
    finally:
        one.stop()
        two.stop()


def test_service_replicas_ride_out_a_postgresql_restart(chroma: str, tmp_path: Path) -> None:
    from postgres_server import PostgresServer

    server = PostgresServer(tmp_path / "pg")
    server.start()
    models = tmp_path / "shared-models"
    try:
        state = server.create_database("catalog")
        one, two = Replica(tmp_path, "one", chroma, state, models), Replica(tmp_path, "two", chroma, state, models)
        try:
            one.wait_ready()
            two.wait_ready()
            rows = [{"name": "get_weather", "description": WEATHER.description},
                    {"name": "send_email", "description": EMAIL.description}]
            assert one.http.post("/v1/tools", json=rows).status_code == 200
            _wait(lambda: two.tools() == ["get_weather", "send_email"], 1, "replica two sees replica one's tools")
            before = two.route("will it rain in Oslo tomorrow")
            server.stop("immediate")
            _wait(lambda: not two.http.get("/readyz").json()["state"]["connected"], 10, "replica two notices")
            ready = two.http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["tools"] == 2  # still serving, from its snapshot
            assert two.route("will it rain in Oslo tomorrow") == one.route("will it rain in Oslo tomorrow") == before
            flight = [{"name": "book_flight", "description": "Book a flight ticket"}]
            refused = one.http.post("/v1/tools", json=flight)
            assert refused.status_code == 503 and "unreachable" in refused.json()["error"], refused.text
            server.start()
            _wait(lambda: all(r.http.get("/readyz").json()["state"]["connected"] for r in (one, two)), 30,
                  "both replicas reconnect")
            assert one.http.post("/v1/tools", json=flight).status_code == 200
            _wait(lambda: "book_flight" in two.tools(), 1, "replica two sees the write after the restart")
        finally:
            one.stop()
            two.stop()
    finally:
        server.stop_and_remove()


@pytest.mark.parametrize(("args", "message"), [
    (["serve", "--workers", "2"], "--workers above 1 needs --state-url and --chroma-url"),
    (["serve", "--chroma-url", "ftp://127.0.0.1:1", "--state-url", "postgresql://x@127.0.0.1:1/db"],
     "chroma_url must be an http(s):// URL"),
    (["serve", "--state-url", "mysql://127.0.0.1/db", "--chroma-url", "http://127.0.0.1:1"],
     "state_url must be a postgresql:// URL"),
    (["serve", "--chroma-url", "http://127.0.0.1:1"], "give both or neither"),
    (["serve", "--state-url", "postgresql://x@127.0.0.1:1/db"], "give both or neither"),
])
def test_serve_refuses_workers_without_shared_state_and_bad_urls(tmp_path: Path, args: list[str], message: str) -> None:
    run = subprocess.run([str(BIN / "agentic-router"), "--workspace", str(tmp_path / "ws"), "--llm", "none", *args],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_an_unreachable_postgresql_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    run = subprocess.run([str(BIN / "agentic-router"), "--workspace", str(tmp_path / "ws"), "--llm", "none", "tools",
                          "list"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "AGENTIC_ROUTER_STATE_URL": f"postgresql://u:secret@127.0.0.1:{port}/db",
                              "AGENTIC_ROUTER_CHROMA_URL": f"http://127.0.0.1:{port}"})
    assert run.returncode == 1 and "cannot reach PostgreSQL at postgresql://u@127.0.0.1" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "secret" not in run.stderr
