"""Replicas: routers in separate workspaces on one real `chroma run` server share one catalog.

Each test starts its own Chroma server on a loopback port (the catalog log lives in the server, so tests
must not share one). The last test runs two real `agentic-router serve` processes against it.
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
from helpers import free_port

from agentic_router.indexes.config import BUNDLED_EMBEDDER
from agentic_router.indexes.encoders.embeddings import resolve_model_path
from agentic_router.indexes.schema import ToolSpec
from agentic_router.indexes.storage.chroma import chroma_client
from agentic_router.indexes.storage.replication import DOCSTORE, HASH_FILE, LOCK, LOG
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


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[str]:
    """A real Chroma server (`chroma run`) on a free loopback port, stopped after the test."""
    port = free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen([str(BIN / "chroma"), "run", "--path", str(tmp_path / "chroma-data"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: proc.poll() is None and httpx.get(url + "/api/v2/heartbeat", timeout=2).status_code == 200,
              60, "chroma server up")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _open(tmp_path: Path, name: str, url: str) -> AgenticRouter:
    return AgenticRouter.open(tmp_path / name, llm_provider="none", chroma_url=url, replica_sync_ms=0)


def _tools(router: AgenticRouter) -> list[str]:
    return sorted(s.name for s in router.catalog.list_tools())


def _ranking(router: AgenticRouter, question: str) -> list[tuple[str, float]]:
    return [(h.name, round(h.score, 5)) for h in router.route(question, 5)]


WEATHER = ToolSpec(kind="external", name="get_weather", description="Weather forecast for a city: rain, temperature, wind")
EMAIL = ToolSpec(kind="external", name="send_email", description="Send an email message to a recipient")


def test_two_routers_share_tools_documents_memory_and_settings(chroma: str, tmp_path: Path, corpus_dir: Path) -> None:
    a, b = _open(tmp_path, "a", chroma), _open(tmp_path, "b", chroma)
    a.add_tools([WEATHER, EMAIL])
    assert _tools(b) == ["get_weather", "send_email"]
    assert b.route("will it rain in Oslo tomorrow", 1)[0].name == "get_weather"

    a.ingest([corpus_dir])  # written by a, read by b
    assert {d["doc_id"] for d in b.list_documents()} == {d["doc_id"] for d in a.list_documents()} != set()
    assert _ranking(b, QUESTION) == _ranking(a, QUESTION)
    summary = next(h for h in b.route(QUESTION, 10) if h.kind == "summary")
    doc = b.workspace.db.get_document(summary.doc_id)
    assert not (b.config.docs_dir / doc["storage"]).exists()  # b never built this document ...
    answer = str(b.tools_for([summary])[0].call(QUESTION))
    assert "chlorophyll" in answer.lower()  # ... yet its summary index answers, unpacked from the server
    assert (b.config.docs_dir / doc["storage"] / HASH_FILE).read_text() == doc["content_hash"]

    assert b.feedback("tell my landlord the rent is late", "send_email")  # usage memory recorded by b ...
    assert [r[2] for r in a.workspace.db.feedback()] == ["send_email"]  # ... is a's too
    assert a.route("tell my landlord the rent is late", 1)[0].name == "send_email"

    a.workspace.save_routing({"weights": {"lexical_weight": 0.1, "memory_weight": 0.7}, "n": 0})
    assert (b.workspace.routing_weights().lexical_weight, b.workspace.routing_weights().memory_weight) == (0.1, 0.7)
    a.registry.set_active(reranker="some-reranker")
    assert b.registry.active() == {"embedder": None, "reranker": "some-reranker"}
    a.registry.set_active(reranker=None)

    b.delete_tools(["send_email"])
    b.delete_document(summary.doc_id)
    assert "send_email" not in _tools(a) and summary.doc_id not in {d["doc_id"] for d in a.list_documents()}
    assert a.workspace.db.feedback() == []
    stored = chroma_client(chroma).get_collection(DOCSTORE).get(where={"doc_id": summary.doc_id})
    assert stored["ids"] == []  # the deleted document's indexes left the server too

    c = _open(tmp_path, "c", chroma)  # a replica started late replays the whole log
    a.follow_active()  # the weights chosen above: open routers switch to them when asked (the service polls)
    assert _tools(c) == _tools(a) == _tools(b)
    assert a.workspace.db.version() == b.workspace.db.version() == c.workspace.db.version()
    assert _ranking(c, QUESTION) == _ranking(a, QUESTION)


def test_concurrent_writers_on_two_replicas_lose_nothing(chroma: str, tmp_path: Path) -> None:
    a, b = _open(tmp_path, "a", chroma), _open(tmp_path, "b", chroma)
    errors: list[BaseException] = []

    def add(router: AgenticRouter, prefix: str) -> None:
        try:
            for i in range(6):
                router.add_tools([ToolSpec(kind="external", name=f"{prefix}_{i}", description=f"{prefix} tool number {i}")])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(a, "alpha")), threading.Thread(target=add, args=(b, "beta"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    expected = sorted([f"alpha_{i}" for i in range(6)] + [f"beta_{i}" for i in range(6)])
    assert _tools(a) == _tools(b) == expected
    log = chroma_client(chroma).get_collection(LOG)
    assert a.workspace.db.applied() == b.workspace.db.applied() == log.count() == 12  # one record per change
    assert sorted(log.get(include=[])["ids"]) == [f"{n:012d}" for n in range(1, 13)]


def test_stale_lock_is_broken_and_a_mirror_of_another_log_is_rebuilt(chroma: str, tmp_path: Path) -> None:
    a = _open(tmp_path, "a", chroma)
    a.add_tools([WEATHER])
    client = chroma_client(chroma)
    client.create_collection(LOCK, metadata={"owner": "a-replica-that-was-killed", "expires": time.time() - 1})
    a.add_tools([EMAIL])  # the expired lock does not block writers
    assert _tools(a) == ["get_weather", "send_email"]
    a.close()

    for name in (LOG, DOCSTORE):  # the server's data is wiped: a new, empty log
        client.delete_collection(name)
    again = _open(tmp_path, "a", chroma)
    assert _tools(again) == []  # the mirror followed the old log: rebuilt, not mixed in
    again.add_tools([EMAIL])
    assert _tools(again) == ["send_email"] and again.workspace.db.applied() == 1


# ---- two service processes ---------------------------------------------------------------------------
class Replica:
    def __init__(self, root: Path, name: str, chroma: str, models: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTIC_ROUTER_")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
                   AGENTIC_ROUTER_ADMIN_KEY=ADMIN_KEY, AGENTIC_ROUTER_READ_KEY="read-key-0123456789abcdef",
                   AGENTIC_ROUTER_MODELS_PATH=str(models))
        self.log = root / f"{name}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([str(BIN / "agentic-router"), "--workspace", str(root / name), "--llm", "none",
                                          "serve", "--port", str(self.port), "--chroma-url", chroma, *extra],
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


def test_two_service_processes_answer_the_same_and_see_each_others_writes(chroma: str, tmp_path: Path) -> None:
    models = tmp_path / "shared-models"
    one, two = Replica(tmp_path, "one", chroma, models, "--workers", "2"), Replica(tmp_path, "two", chroma, models)
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
        _wait(lambda: two.tools() == ["get_weather", "send_email"], 10, "replica two sees replica one's tools")
        doc = {"doc_id": "chlorophyll", "title": "Chlorophyll", "text": "Chlorophyll is the green pigment of plants. "
               "It absorbs red and blue light and passes the energy to photosynthesis in the chloroplast."}
        assert two.http.post("/v1/documents", json=[doc]).status_code == 200
        _wait(lambda: "chlorophyll" in {d["doc_id"] for d in one.http.get("/v1/documents").json()},
              10, "replica one sees replica two's document")
        assert one.route(QUESTION) == two.route(QUESTION)
        assert one.route(QUESTION)[0][0].endswith("chlorophyll")
        assert two.http.delete("/v1/tools/send_email").status_code == 200
        _wait(lambda: "send_email" not in one.tools(), 10, "replica one sees the deletion")
        assert "get_weather" in one.tools()

        target = models / "copy1"  # a trained version in the folder both replicas read
        shutil.copytree(resolve_model_path(BUNDLED_EMBEDDER), target / "model")
        (target / "version.json").write_text(json.dumps({"name": "copy1", "method": "full", "base": "base",
                                                         "path": "copy1/model"}), encoding="utf-8")
        switched = one.http.post("/v1/models/copy1/activate")
        assert switched.status_code == 200, switched.text
        _wait(lambda: two.http.get("/v1/models").json()["active"]["embedder"] == "copy1", 10,
              "replica two reads the shared choice")  # at most replica_sync_ms stale ...
        _wait(lambda: two.http.get("/readyz").json()["serving"]["embedder"] == "copy1", 120,
              "replica two serves the version replica one activated")  # ... and the other replica follows
        assert one.route(QUESTION) == two.route(QUESTION)
    finally:
        one.stop()
        two.stop()


@pytest.mark.parametrize(("args", "message"), [
    (["serve", "--workers", "2"], "--workers above 1 needs --chroma-url"),
    (["serve", "--chroma-url", "ftp://127.0.0.1:1"], "chroma_url must be an http(s):// URL"),
])
def test_serve_refuses_workers_without_a_chroma_server_and_bad_urls(tmp_path: Path, args: list[str], message: str) -> None:
    run = subprocess.run([str(BIN / "agentic-router"), "--workspace", str(tmp_path / "ws"), "--llm", "none", *args],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
