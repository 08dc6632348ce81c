"""Throughput and latency of ``POST /v1/route`` over real HTTP, on a synthetic catalog of N tools.

    .venv/bin/python scripts/bench_http.py [--tools 10000] [--clients 16] [--requests 2000] [--client raw]
                                           [--state embedded|postgres|both] [--fresh] [--workers N] [--json OUT]

Starts ``agentic-router serve`` on a free loopback port over a workspace holding N synthetic tools
(descriptions varied from templates; registered through ``POST /v1/tools``, timed), then ``--clients``
concurrent clients send ``--requests`` routing requests in all. Reports the registration's wall time and
tools/s, requests/s, p50/p99 latency, errors, hit@1 against the tool each question was written for (a sanity
check, not a benchmark), CPU time per request of the service and of the load generator (both share the
machine's cores), and the machine's load average, since a shared machine moves every figure.

``--state`` says where the catalog lives. ``embedded`` (the default): the workspace's SQLite file and
embedded Chroma; the workspace is built once and reused by later runs (no registration to time then),
unless ``--fresh`` builds it anew in a temporary folder. ``postgres``: the script starts a real PostgreSQL
and a ``chroma run`` server, each in a temporary folder, and serves with ``--state-url`` and
``--chroma-url``; the Chroma server's and PostgreSQL's CPU are reported beside the service's. ``both``
measures embedded, then postgres, and prints them side by side. ``--workers N`` above 1 needs the shared
state (``serve --workers`` does), so it means ``--state postgres``. Every process and temporary folder the
script starts is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx

from agentic_router.indexes.encoders.cpu import cpu_summary

if TYPE_CHECKING:
    from postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench-results" / "bench-http"
STATES = ("embedded", "postgres")
# The script sets where the state lives; variables of the caller must not move it (or lock the service).
DROPPED_ENV = ("AGENTIC_ROUTER_READ_KEY", "AGENTIC_ROUTER_ADMIN_KEY", "AGENTIC_ROUTER_STATE_URL",
               "AGENTIC_ROUTER_CHROMA_URL")
CLI = str(Path(sys.executable).with_name("agentic-router"))
VERBS = ("create", "delete", "update", "list", "archive", "export", "import", "validate", "schedule", "cancel",
         "approve", "reject", "merge", "split", "translate", "summarise", "forecast", "audit", "refund", "renew")
NOUNS = ("invoice", "shipment", "ticket", "contract", "playlist", "reservation", "payroll run", "sensor reading",
         "lease", "prescription", "warranty claim", "podcast episode", "tax return", "purchase order", "vaccine lot",
         "flight booking", "grant proposal", "lab sample", "loyalty card", "recipe", "firmware image", "court filing",
         "crop report", "parking permit", "insurance quote")
DOMAINS = ("retail", "logistics", "healthcare", "banking", "music", "hospitality", "agriculture", "aviation",
           "education", "energy", "legal", "government", "telecom", "gaming", "real estate", "manufacturing",
           "insurance", "media", "automotive", "pharmacy")
FIELDS = ("status", "owner", "due date", "total", "history", "region", "priority", "currency", "version", "notes")


def synthetic_tools(n: int) -> list[dict[str, str]]:
    """N distinct tools: verb × noun × domain, with varied fields so cards are not copies of each other."""
    rows = []
    for i in range(n):
        verb, noun = VERBS[i % len(VERBS)], NOUNS[(i // len(VERBS)) % len(NOUNS)]
        domain = DOMAINS[(i // (len(VERBS) * len(NOUNS))) % len(DOMAINS)]
        f1, f2 = FIELDS[i % 7], FIELDS[(i * 3 + 1) % 10]
        name = f"{verb}_{noun.replace(' ', '_')}_{domain.replace(' ', '_')}_{i}"
        rows.append({"name": name, "description": f"{verb.capitalize()} a {noun} record in the {domain} "
                                                  f"system #{i}; returns its {f1} and {f2}."})
    return rows


def question_for(row: dict[str, str]) -> str:
    verb, rest = row["name"].split("_", 1)
    noun_domain = rest.rsplit("_", 1)[0].replace("_", " ")
    return f"please {verb} the {noun_domain} record #{row['name'].rsplit('_', 1)[1]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_chroma(data: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """A ``chroma run`` server on a free loopback port, for ``serve --chroma-url`` (with ``--state-url``)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("chroma")), "run", "--path", str(data),
                                 "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=out)
    try:
        wait_ready(proc, url + "/api/v2/heartbeat", 120, "the Chroma server", log)
    except BaseException:  # Ctrl-C while waiting included: the caller has no handle on it yet
        stop_server(proc)
        raise
    return proc, url


def start_postgres(folder: Path) -> tuple[PostgresServer, str]:
    """A real PostgreSQL in ``folder`` (removed by ``stop_and_remove``) and the URL of a fresh database."""
    # The test helper that runs PostgreSQL as the `postgres` user when we are root lives in tests/, which is
    # no package: its folder goes on sys.path (it imports its neighbour `helpers` the same way).
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from postgres_server import PostgresServer

    server = PostgresServer(folder)
    try:
        server.start()
        return server, server.create_database("bench")
    except BaseException:
        server.stop_and_remove()
        raise


def postmaster_pid(server: PostgresServer) -> int:
    """The postmaster's pid (first line of postmaster.pid), whose children are the backends."""
    return int((server.data / "postmaster.pid").read_text(encoding="utf-8").split()[0])


def wait_ready(proc: subprocess.Popen, probe: str, seconds: float, what: str, log: Path) -> None:
    """Poll ``probe`` until it answers 200; a process that exits or stays unready ends the run with its log."""
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if proc.poll() is not None:
            raise SystemExit(f"error: {what} exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(probe, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"error: {what} was not ready after {seconds:.0f} s; see {log}")


def start_server(workspace: Path, port: int, batch_ms: float, threads: int, log: Path, *,
                 state_url: str | None = None, chroma_url: str | None = None,
                 workers: int = 1) -> tuple[subprocess.Popen, float]:
    """``serve`` on ``workspace``; with ``state_url`` and ``chroma_url`` (both or neither) on the shared state."""
    if bool(state_url) != bool(chroma_url):
        raise ValueError("state_url and chroma_url go together")
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    command = [CLI, "--workspace", str(workspace), "--llm", "none", "serve", "--port", str(port),
               "--batch-ms", str(batch_ms), "--threads", str(threads), "--workers", str(workers)]
    command += ["--state-url", state_url, "--chroma-url", chroma_url] if state_url and chroma_url else []
    start = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, env=env)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}/readyz", 600, "the server", log)
    except BaseException:
        stop_server(proc)
        raise
    return proc, time.perf_counter() - start


async def load(url: str, questions: list[tuple[str, str]], clients: int) -> tuple[list[float], int, int, float]:
    """Send every question once, ``clients`` at a time; returns latencies, errors, hits at 1, wall time."""
    latencies: list[float] = []
    errors = hits = 0
    todo = iter(questions)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors, hits
        for query, gold in todo:
            start = time.perf_counter()
            try:
                got = await http.post("/v1/route", json={"query": query, "k": 5})
                ok = got.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - start)
            if not ok:
                errors += 1
            elif got.json()["tools"][:1] and got.json()["tools"][0]["name"] == gold:
                hits += 1

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return latencies, errors, hits, time.perf_counter() - start


async def load_raw(url: str, questions: list[tuple[str, str]], clients: int
                   ) -> tuple[list[float], int, int, float]:
    """``load`` with a minimal HTTP/1.1 keep-alive client on asyncio streams. httpx spends about 2 ms of
    CPU per request, and on a 2-core box that CPU is taken from the server being measured; this client
    spends a few tenths of a millisecond, closer to a load generator on another machine."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = hits = 0
    todo = iter(questions)

    async def client() -> None:
        nonlocal errors, hits
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for query, gold in todo:
                body = json.dumps({"query": query, "k": 5}).encode()
                start = time.perf_counter()
                writer.write(b"POST /v1/route HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(body), body))
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                payload = await reader.readexactly(length)
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors += 1
                    continue
                tools = json.loads(payload)["tools"]
                hits += bool(tools) and tools[0]["name"] == gold
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, errors, hits, time.perf_counter() - start


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM first, so the service shuts down as in production; kill only if it hangs."""
    proc.send_signal(signal.SIGTERM)  # a no-op once it has exited (after a Ctrl-C reached it too)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU time so far of a process and (by default) its live children: the service and its
    workers, or the Chroma server. This load generator counts itself only, not the servers it started."""
    import psutil

    total = 0.0
    parent = psutil.Process(pid)
    for proc in [parent, *(parent.children(recursive=True) if children else [])]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def register(url: str, rows: list[dict[str, str]], result: dict[str, Any]) -> None:
    """Register the tools unless the workspace already holds them (a reused embedded one); times it."""
    with httpx.Client(base_url=url, timeout=None) as http:
        have = int(http.get("/v1/tools", params={"limit": 1}).headers["x-total-count"])
        if have == len(rows):
            result["workspace_reused"] = True
            return
        start = time.perf_counter()
        for i in range(0, len(rows), 5000):
            got = http.post("/v1/tools", json=rows[i:i + 5000])
            if got.status_code != 200:
                raise SystemExit(f"error: registering tools failed: {got.text[:200]}")
        seconds = time.perf_counter() - start
        have = int(http.get("/v1/tools", params={"limit": 1}).headers["x-total-count"])
        if have != len(rows):
            raise SystemExit(f"error: the catalog holds {have} tools after registering {len(rows)}")
    result.update(register_s=round(seconds, 1), register_tools_per_s=round(len(rows) / seconds, 1))


def measure(state: str, args: argparse.Namespace, rows: list[dict[str, str]]) -> dict[str, Any]:
    """One state's run: start what it needs, register, load, stop everything (ExitStack: also on failure)."""
    shared = state == "postgres"
    tag = f"{args.tools}-{state}" if shared or args.fresh else str(args.tools)
    result: dict[str, Any] = {"state": state, "tools": args.tools, "clients": args.clients,
                              "batch_ms": args.batch_ms, "threads": args.threads, "workers": args.workers,
                              "chroma_server": shared}
    WORK.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if shared or args.fresh:
            temp = Path(tempfile.mkdtemp(prefix=f"{state}-{args.tools}-", dir=WORK))
            stack.callback(shutil.rmtree, temp, ignore_errors=True)  # registered first, so it runs last
            temp.chmod(0o755)  # PostgreSQL runs as `postgres` and must reach its folder inside this one
            workspace = temp / "workspace"
        else:
            workspace = args.workspace or WORK / f"ws-{args.tools}"
        state_url = chroma_url = None
        postgres = chroma = None
        if shared:
            postgres, state_url = start_postgres(temp / "postgres")
            stack.callback(postgres.stop_and_remove)
            chroma, chroma_url = start_chroma(temp / "chroma-data", WORK / "chroma.log")
            stack.callback(stop_server, chroma)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc, ready_s = start_server(workspace, port, args.batch_ms, args.threads, WORK / f"server-{tag}.log",
                                     state_url=state_url, chroma_url=chroma_url, workers=args.workers)
        stack.callback(stop_server, proc)
        result["server_ready_s"] = round(ready_s, 1)
        register(url, rows, result)

        rng = random.Random(args.seed)
        picks = [rng.choice(rows) for _ in range(args.requests + 100)]
        questions = [(question_for(r), r["name"]) for r in picks]
        run = load_raw if args.client == "raw" else load
        asyncio.run(run(url, questions[:100], args.clients))  # warm-up: caches, connections, batcher
        load_before = os.getloadavg()[0]
        others: dict[str, int] = {}  # the shared state's servers: their CPU is reported beside the service's
        if chroma is not None and postgres is not None:
            others = {"chroma": chroma.pid, "postgres": postmaster_pid(postgres)}
        others_cpu = {name: cpu_seconds(pid) for name, pid in others.items()}
        server_cpu, own_cpu = cpu_seconds(proc.pid), cpu_seconds(os.getpid(), children=False)
        latencies, errors, hits, wall = asyncio.run(run(url, questions[100:], args.clients))
        server_cpu, own_cpu = cpu_seconds(proc.pid) - server_cpu, cpu_seconds(os.getpid(), children=False) - own_cpu
        for name, before in others_cpu.items():  # routes should not query PostgreSQL (a snapshot answers them)
            spent = cpu_seconds(others[name]) - before
            result[f"{name}_cpu_ms_per_request"] = round(1000 * spent / len(latencies), 2)
        latencies.sort()
        result.update(client=args.client, requests=len(latencies), errors=errors, seconds=round(wall, 2),
                      server_cpu_ms_per_request=round(1000 * server_cpu / len(latencies), 2),
                      client_cpu_ms_per_request=round(1000 * own_cpu / len(latencies), 2),
                      rps=round(len(latencies) / wall, 1), p50_ms=round(1000 * percentile(latencies, 0.50), 1),
                      p99_ms=round(1000 * percentile(latencies, 0.99), 1), hit_at_1=round(hits / len(latencies), 3),
                      load_avg_before=round(load_before, 2), load_avg_after=round(os.getloadavg()[0], 2))
        with httpx.Client(base_url=url) as http:
            metrics = dict(line.rsplit(" ", 1) for line in http.get("/metrics").text.splitlines() if line[:1] != "#")
        calls = float(metrics.get("agentic_router_query_encoder_calls", 0))
        asked = float(metrics.get("agentic_router_query_questions_encoded", 0))
        result["questions_per_encoder_call"] = round(asked / calls, 1) if calls else None
    return result


SIDE_BY_SIDE = ("register_s", "register_tools_per_s", "server_ready_s", "rps", "p50_ms", "p99_ms", "errors",
                "hit_at_1", "server_cpu_ms_per_request", "client_cpu_ms_per_request", "chroma_cpu_ms_per_request",
                "postgres_cpu_ms_per_request", "questions_per_encoder_call", "load_avg_before", "load_avg_after")


def side_by_side(results: dict[str, dict[str, Any]]) -> str:
    """A plain table of the figures that differ between states, for a reader of the terminal."""
    lines = [f"{'':30}" + "".join(f"{state:>12}" for state in results)]
    for key in SIDE_BY_SIDE:
        lines.append(f"{key:30}" + "".join(f"{str(r.get(key, '-')):>12}" for r in results.values()))
    return "\n".join(lines)


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    """SIGTERM ends the run through the same ``finally`` blocks as Ctrl-C, so nothing is left running."""
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batch-ms", type=float, default=2.0, help="the service's micro-batching window")
    parser.add_argument("--threads", type=int, default=1, help="the service's torch threads (serve --threads)")
    parser.add_argument("--state", choices=(*STATES, "both"), default=None,
                        help="where the catalog lives: embedded (SQLite + embedded Chroma; the default), postgres "
                             "(PostgreSQL + a Chroma server, both started here), or both, one after the other")
    parser.add_argument("--workspace", type=Path, default=None,
                        help="embedded: default bench-results/bench-http/ws-<tools> (built once, reused)")
    parser.add_argument("--fresh", action="store_true",
                        help="embedded: register into a new temporary workspace, so registration is always timed")
    parser.add_argument("--client", choices=("httpx", "raw"), default="httpx",
                        help="load generator: httpx (~2 ms CPU per request on this box) or a minimal raw-socket one")
    parser.add_argument("--workers", type=int, default=1,
                        help="service processes (serve --workers); above 1 needs --state postgres")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    args = parser.parse_args()
    if args.state is None:
        args.state = "postgres" if args.workers > 1 else "embedded"
    if args.workers > 1 and args.state != "postgres":
        parser.error("--workers above 1 needs --state postgres (serve --workers shares the catalog through "
                     "PostgreSQL and a Chroma server)")
    if args.fresh and args.workspace:
        parser.error("--fresh builds a temporary workspace: give --workspace or --fresh, not both")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set

    rows = synthetic_tools(args.tools)
    results: dict[str, dict[str, Any]] = {}
    for state in STATES if args.state == "both" else (args.state,):
        results[state] = measure(state, args, rows)
        print(json.dumps(results[state]), flush=True)
    if len(results) > 1:
        print(side_by_side(results), file=sys.stderr)
    if args.json_out:
        out = results if len(results) > 1 else results[args.state]
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
