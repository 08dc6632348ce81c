"""Throughput and latency of ``POST /v1/route`` over real HTTP, on a synthetic catalog of N tools.

    .venv/bin/python scripts/bench_http.py [--tools 10000] [--clients 16] [--requests 2000] [--client raw]
                                           [--workers N] [--json OUT]

Starts ``agentic-router serve`` on a free loopback port over a workspace holding N synthetic tools
(descriptions varied from templates; built once through ``POST /v1/tools`` and reused by later runs), then
``--clients`` concurrent clients send ``--requests`` routing requests in all. Reports requests/s, p50/p99
latency, errors, hit@1 against the tool each question was written for (a sanity check, not a benchmark),
CPU time per request of the service and of the load generator (both share the machine's cores), and the
machine's load average, since a shared machine moves every figure.

``--workers N`` (or ``--chroma``) serves from a ``chroma run`` server the script starts on loopback, as
``serve --workers`` requires; the service's CPU then counts every worker process, and the Chroma server's
CPU is reported beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from agentic_router.indexes.encoders.cpu import cpu_summary

ROOT = Path(__file__).resolve().parents[1]
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
    """A ``chroma run`` server on a free loopback port, for ``serve --chroma-url``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("chroma")), "run", "--path", str(data),
                                 "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=out)
    wait_ready(proc, url + "/api/v2/heartbeat", 120, "the Chroma server", log)
    return proc, url


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


def start_server(workspace: Path, port: int, batch_ms: float, threads: int, log: Path,
                 chroma_url: str | None = None, workers: int = 1) -> tuple[subprocess.Popen, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTIC_ROUTER_READ_KEY", "AGENTIC_ROUTER_ADMIN_KEY")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    command = [CLI, "--workspace", str(workspace), "--llm", "none", "serve", "--port", str(port),
               "--batch-ms", str(batch_ms), "--threads", str(threads), "--workers", str(workers)]
    command += ["--chroma-url", chroma_url] if chroma_url else []
    start = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, env=env)
    wait_ready(proc, f"http://127.0.0.1:{port}/readyz", 600, "the server", log)
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
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batch-ms", type=float, default=2.0, help="the service's micro-batching window")
    parser.add_argument("--threads", type=int, default=1, help="the service's torch threads (serve --threads)")
    parser.add_argument("--workspace", type=Path, default=None,
                        help="default: bench-results/bench-http/ws-<tools> (built once, reused)")
    parser.add_argument("--client", choices=("httpx", "raw"), default="httpx",
                        help="load generator: httpx (~2 ms CPU per request on this box) or a minimal raw-socket one")
    parser.add_argument("--workers", type=int, default=1, help="service processes (serve --workers; implies --chroma)")
    parser.add_argument("--chroma", action="store_true", help="serve from a Chroma server this script starts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set

    shared = args.chroma or args.workers > 1
    suffix = "-chroma" if shared else ""
    workspace = args.workspace or ROOT / "bench-results" / "bench-http" / f"ws-{args.tools}{suffix}"
    workspace.parent.mkdir(parents=True, exist_ok=True)
    rows = synthetic_tools(args.tools)
    chroma, chroma_url = (start_chroma(workspace.parent / f"chroma-{args.tools}", workspace.parent / "chroma.log")
                          if shared else (None, None))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        proc, ready_s = start_server(workspace, port, args.batch_ms, args.threads,
                                     workspace.parent / f"server-{args.tools}{suffix}.log", chroma_url, args.workers)
    except BaseException:
        if chroma is not None:
            stop_server(chroma)
        raise
    result: dict[str, object] = {"tools": args.tools, "clients": args.clients, "batch_ms": args.batch_ms,
                                 "threads": args.threads, "workers": args.workers, "chroma_server": shared,
                                 "server_ready_s": round(ready_s, 1)}
    try:
        with httpx.Client(base_url=url, timeout=None) as http:
            have = int(http.get("/v1/tools", params={"limit": 1}).headers["x-total-count"])
            if have != args.tools:
                start = time.perf_counter()
                for i in range(0, len(rows), 5000):
                    got = http.post("/v1/tools", json=rows[i:i + 5000])
                    if got.status_code != 200:
                        raise SystemExit(f"error: registering tools failed: {got.text[:200]}")
                result["register_s"] = round(time.perf_counter() - start, 1)
        rng = random.Random(args.seed)
        picks = [rng.choice(rows) for _ in range(args.requests + 100)]
        questions = [(question_for(r), r["name"]) for r in picks]
        run = load_raw if args.client == "raw" else load
        asyncio.run(run(url, questions[:100], args.clients))  # warm-up: caches, connections, batcher
        load_before = os.getloadavg()[0]
        server_cpu, own_cpu = cpu_seconds(proc.pid), cpu_seconds(os.getpid(), children=False)
        chroma_cpu = cpu_seconds(chroma.pid) if chroma is not None else 0.0
        latencies, errors, hits, wall = asyncio.run(run(url, questions[100:], args.clients))
        server_cpu, own_cpu = cpu_seconds(proc.pid) - server_cpu, cpu_seconds(os.getpid(), children=False) - own_cpu
        if chroma is not None:
            result["chroma_cpu_ms_per_request"] = round(1000 * (cpu_seconds(chroma.pid) - chroma_cpu) / len(latencies), 2)
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
    finally:
        stop_server(proc)
        if chroma is not None:
            stop_server(chroma)
    print(json.dumps(result))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
