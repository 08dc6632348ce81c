"""``agentic-router``: a thin click layer over ``router.app.AgenticRouter``.

Contract: ``--json`` prints exactly one JSON document on stdout (progress and logs go to stderr); exit code
0 on success, 2 on a usage error, 1 on any other error with a one-line message on stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from agentic_router.indexes.config import HOME_ENV, LLM_PROVIDERS
from agentic_router.indexes.errors import RouterError
from agentic_router.indexes.schema import TOOL_KINDS


class _Group(click.Group):
    """Turns product errors into one line on stderr and exit code 1 (tracebacks only with --verbose)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.UsageError):
            raise
        except click.ClickException:
            raise
        except RouterError as exc:
            _fail(ctx, exc)
        except Exception as exc:  # noqa: BLE001 - last line of defence: still one line, still exit 1
            _fail(ctx, exc, prefix=f"{type(exc).__name__}: ")


def _fail(ctx: click.Context, exc: BaseException, prefix: str = "") -> None:
    verbose = (ctx.find_root().params or {}).get("verbose")
    if verbose:
        import traceback

        traceback.print_exc()
    message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    click.echo(f"error: {prefix}{message}", err=True)
    ctx.exit(1)


def _router(ctx: click.Context):  # noqa: ANN202
    from agentic_router.router.app import AgenticRouter

    obj = ctx.find_root().obj
    if "router" not in obj:
        obj["router"] = AgenticRouter.open(obj["workspace"], **obj["overrides"])
    return obj["router"]


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--workspace", type=click.Path(file_okay=False, path_type=Path), envvar=HOME_ENV,
              help=f"Workspace directory (env {HOME_ENV}; default ./.agentic-router).")
@click.option("--llm", "llm_provider", type=click.Choice(LLM_PROVIDERS), help="LLM provider (default: local).")
@click.option("--llm-model", help="Model name (openai/openai-like) or GGUF path.")
@click.option("--llm-base-url", help="Base URL of an OpenAI-compatible server (openai-like).")
@click.option("--embed-model", help="sentence-transformers model name or path for routing.")
@click.option("-v", "--verbose", is_flag=True, help="Log progress and show tracebacks.")
@click.pass_context
def main(ctx: click.Context, workspace: Path | None, verbose: bool, **overrides: Any) -> None:
    """Route questions to the right tool among thousands, and answer them with an agent."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"workspace": workspace, "overrides": overrides}
    if not verbose:  # the shell, not the library, decides what reaches the terminal
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--replace", is_flag=True, help="Update documents whose doc_id exists with other content.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[str, ...], replace: bool, as_json: bool) -> None:
    """Index files, folders or JSONL documents: three tools per document."""
    report = _router(ctx).ingest(list(paths), replace=replace, progress=not as_json)
    if as_json:
        _emit_json(report.to_dict())
        return
    click.echo(f"added {len(report.added)}, replaced {len(report.replaced)}, unchanged {len(report.unchanged)} "
               f"document(s); {report.tools} tools, {report.chunks} chunks written")


@main.group()
def tools() -> None:
    """Register and list tools."""


@tools.command("add")
@click.argument("catalog", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--replace", is_flag=True, help="Update tools registered with another description.")
@click.option("--mcp-command", default=None, help='Register the tools of an MCP server started as "CMD ARGS..." (stdio).')
@click.option("--mcp-url", default=None, help="Register the tools of an MCP server at this streamable-HTTP URL.")
@click.option("--server-name", default=None, help="Prefix of the server's tools (NAME__tool); default: its own name.")
@click.pass_context
def tools_add(ctx: click.Context, catalog: Path | None, replace: bool, mcp_command: str | None, mcp_url: str | None,
              server_name: str | None) -> None:
    """Register external tools from a JSONL catalog, or every tool of an MCP server."""
    if sum(x is not None for x in (catalog, mcp_command, mcp_url)) != 1:
        raise click.UsageError("give one of CATALOG, --mcp-command or --mcp-url")
    if catalog is None:
        _echo_sync(_router(ctx).add_mcp_server(mcp_command, mcp_url, name=server_name, replace=replace))
        return
    report = _router(ctx).add_tools(catalog, replace=replace)
    click.echo(f"added {len(report.added)}, replaced {len(report.replaced)}, unchanged {len(report.unchanged)} tool(s)")


@tools.command("sync")
@click.option("--server-name", default=None, help="Only this MCP server (default: every registered one).")
@click.pass_context
def tools_sync(ctx: click.Context, server_name: str | None) -> None:
    """List registered MCP servers again: add new tools, re-embed changed ones, remove vanished ones."""
    results = _router(ctx).sync_mcp_servers(server_name)
    for result in results:
        _echo_sync(result)
    failed = [r for r in results if "error" in r]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(results)} MCP server(s) could not be synced")


def _echo_sync(result: dict[str, Any]) -> None:
    if "error" in result:
        click.echo(f"{result['server']}: error: {result['error']}", err=True)
        return
    click.echo(f"{result['server']}: added {len(result['added'])}, changed {len(result['changed'])}, removed "
               f"{len(result['removed'])}, unchanged {len(result['unchanged'])} tool(s)")


@tools.command("list")
@click.option("--kind", type=click.Choice(TOOL_KINDS))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def tools_list(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """List the catalog."""
    specs = _router(ctx).list_tools(kind)
    if as_json:
        from agentic_router.router.payloads import tools_json

        _emit_json(tools_json(specs))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "kind", "doc_id", "description", title=f"{len(specs)} tools")
    for s in specs:
        table.add_row(s.name, s.kind, s.doc_id or "", s.description[:90] + ("…" if len(s.description) > 90 else ""))
    Console(width=160).print(table)


@main.command()
@click.argument("question")
@click.option("-k", "k", type=click.IntRange(1, 1000), default=5, show_default=True, help="Tools to return.")
@click.option("--rerank", type=click.IntRange(1, 1000), default=None,
              help="Reorder the router's top N with the active cross-encoder.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "openai"]), default=None,
              help="openai: print the routed tools as an OpenAI `tools` array.")
@click.pass_context
def route(ctx: click.Context, question: str, k: int, rerank: int | None, as_json: bool, fmt: str | None) -> None:
    """Rank the tools for a question."""
    router = _router(ctx)
    if fmt == "openai":
        _emit_json(router.route_openai_tools(question, k))
        return
    as_json = as_json or fmt == "json"
    hits = router.route(question, k, rerank=rerank)
    abstain = router.abstains(hits)
    if as_json:
        from agentic_router.router.payloads import route_json

        _emit_json(route_json(question, hits, abstain))
        return
    if abstain:
        click.echo("no tool fits this request (ranked anyway):")
    for i, h in enumerate(hits, start=1):
        click.echo(f"{i:>2}. {h.score:.3f}  {h.name}  [{h.kind}{', doc ' + h.doc_id if h.doc_id else ''}]")


@main.command()
@click.option("--query", "query_text", default=None, help="The request as the user wrote it.")
@click.option("--tool", default=None, help="The tool (or document id) that finally served it.")
@click.option("--from-queries", "from_queries", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Record labelled query logs {qid, query, gold} instead (each gold id one pair).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def feedback(ctx: click.Context, query_text: str | None, tool: str | None, from_queries: Path | None,
             as_json: bool) -> None:
    """Record which tool served a request; routing uses it at once (usage memory), no training needed."""
    if from_queries is None and (query_text is None or tool is None):
        raise click.UsageError("give --query and --tool, or --from-queries FILE")
    if from_queries is not None and (query_text is not None or tool is not None):
        raise click.UsageError("--from-queries replaces --query/--tool; give one or the other")
    if from_queries is not None:
        from agentic_router.training.evaluate import load_queries

        rows = [(q.query, g) for q in load_queries(from_queries) for g in q.gold]
        source = "log"
    else:
        rows, source = [(query_text, tool)], "feedback"
    router = _router(ctx)
    added = router.record_requests(rows, source=source)
    total = router.catalog.count_memory()
    if as_json:
        _emit_json({"recorded": added, "already_known": len(rows) - added, "memory": total})
        return
    click.echo(f"recorded {added} request(s) ({len(rows) - added} already known); usage memory holds {total}")


@main.command()
@click.argument("question")
@click.option("--mode", type=click.Choice(["agent", "direct"]),
              help="agent: ReAct over routed tools; direct: run the best tool. Default depends on the LLM.")
@click.option("-k", "k", type=click.IntRange(1, 50), default=None, help="Tools offered to the agent.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def query(ctx: click.Context, question: str, mode: str | None, k: int | None, as_json: bool) -> None:
    """Answer a question through the routed tools."""
    result = _router(ctx).query(question, mode=mode, k=k)
    if as_json:
        _emit_json(result.to_dict())
        return
    click.echo(f"mode: {result.mode}")
    click.echo("tools offered: " + ", ".join(result.tools_offered))
    click.echo("tools called: " + (", ".join(c.name for c in result.tools_called) or "none"))
    source = {"extractive": " (quoted from the sources)", "passages": " (the retrieved passages)"}.get(
        result.answer_source or "", "")
    click.echo(f"\nanswer{source}:\n{result.answer}\n")
    if result.note:
        click.echo(f"note: {result.note}\n")
    for i, s in enumerate(result.sources, start=1):
        click.echo(f"[{i}] {s.get('title') or s.get('doc_id')}: {s['text'][:160]}")


@main.command("eval")
@click.option("--queries", "queries_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--level", type=click.Choice(["document", "tool"]), default=None,
              help="What gold ids name (default: document when the catalog has documents).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Evaluate a seeded random sample.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--compare", default=None,
              help="Comma-separated systems: base, active, a model name; channels alone: dense, card, chunk, lexical, "
                   "no-memory, lookup; baselines: bm25, lead.")
@click.option("--rerank", type=click.IntRange(1, 1000), default=None, help="Also rerank each system's top N.")
@click.option("--reranker", default=None, help="Cross-encoder version for --rerank (default: the active one).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write a Markdown report with plots and per-query failures here.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write metrics here.")
@click.pass_context
def eval_cmd(ctx: click.Context, queries_path: Path, level: str | None, limit: int | None, seed: int,
             compare: str | None, rerank: int | None, reranker: str | None, report_dir: Path | None,
             json_out: Path | None) -> None:
    """Measure routing accuracy (hit@k, MRR, NDCG@10, latency) on labelled queries."""
    from agentic_router.training.evaluate import load_queries
    from agentic_router.training.report import build_systems, print_table, run_systems, write_report

    router = _router(ctx)
    queries = load_queries(queries_path, limit=limit, seed=seed, allow_unanswerable=True)
    level = level or ("document" if router.catalog.count_documents() else "tool")
    names = [n.strip() for n in compare.split(",") if n.strip()] if compare else ["active"]
    details: dict[str, list[dict]] = {}
    results = run_systems(build_systems(router.view, names, rerank=rerank, reranker=reranker), queries, level, details)
    print_table(results, level)
    if report_dir is not None:
        click.echo(f"report: {write_report(report_dir, results, details, level, queries_path)}", err=True)
    if json_out is not None:
        payload = results[names[0]] if compare is None and not rerank else results
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


@main.command()
@click.option("--llm", "gen_llm", type=click.Choice(LLM_PROVIDERS), default=None,
              help="LLM that writes the questions (default: the configured one; none = pseudo-queries).")
@click.option("--per-chunk", type=click.IntRange(0, 20), default=1, show_default=True)
@click.option("--per-tool", type=click.IntRange(0, 20), default=3, show_default=True)
@click.option("--max", "max_questions", type=click.IntRange(1), default=None, help="Cap on generated questions.")
@click.option("--from-queries", type=click.Path(dir_okay=False, path_type=Path),
              help="Labelled query logs {qid, query, gold} to train on instead of generating.")
@click.option("--augment", is_flag=True,
              help="With --from-queries: also generate questions (--llm, --per-chunk, ...) for the train split.")
@click.option("--val-fraction", type=click.FloatRange(0.0, 0.9), default=0.1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Dataset file (default: <workspace>/datasets/train.json).")
@click.pass_context
def generate(ctx: click.Context, gen_llm: str | None, per_chunk: int, per_tool: int, max_questions: int | None,
             from_queries: Path | None, augment: bool, val_fraction: float, seed: int, out: Path | None) -> None:
    """Build a training data set from the catalog (generated questions) or from query logs."""
    from agentic_router.router.llms import load_llm
    from agentic_router.training.generate import generate_dataset

    router = _router(ctx)
    out = out or router.config.workspace / "datasets" / "train.json"
    cfg = router.config.with_overrides(llm_provider=gen_llm) if gen_llm else router.config
    if augment and from_queries is None:
        raise click.UsageError("--augment adds generated questions to --from-queries logs; give --from-queries")
    llm = None if from_queries is not None and not augment else load_llm(cfg)
    ds = generate_dataset(router.view, llm=llm, out=out, per_chunk=per_chunk, per_tool=per_tool,
                          max_questions=max_questions, from_queries=from_queries, val_fraction=val_fraction,
                          seed=seed, progress=True, augment=augment)
    click.echo(f"wrote {out}: {len(ds.qids('train'))} train / {len(ds.qids('val'))} val questions")
    if ds.meta.get("warning"):
        click.echo(f"note: {ds.meta['warning']}", err=True)


@main.command()
@click.option("--method", required=True, type=click.Choice(["full", "adapter", "cross-encoder"]))
@click.option("--dataset", "dataset_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Dataset from `generate` (default: <workspace>/datasets/train.json).")
@click.option("--epochs", type=click.IntRange(1), default=None)
@click.option("--batch-size", type=click.IntRange(1), default=None)
@click.option("--learning-rate", type=float, default=None)
@click.option("--max-steps", type=click.IntRange(1), default=None, help="Stop after this many steps.")
@click.option("--hard-negatives", type=click.IntRange(0), default=None,
              help="Negatives mined per question with the base model (default 1; the reranker likes 3).")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="torch CPU threads while training (default: one per core; 1 on a box shared with other jobs).")
@click.option("--adapter", "adapter_kind", type=click.Choice(["linear", "two-layer"]), default="two-layer",
              show_default=True, help="Adapter architecture (method adapter).")
@click.option("--init", "init_model", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="cross-encoder: start from this model folder (a trained reranker, e.g. to train it further); "
                   "default: the embedder's weights with a fresh head.")
@click.option("--name", default=None, help="Version name in the registry (default: <method>-<time>).")
@click.option("--activate", is_flag=True, help="Activate it, unless real labelled questions show a loss.")
@click.option("--check-queries", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Real labelled questions that guard --activate.")
@click.pass_context
def train(ctx: click.Context, method: str, dataset_path: Path | None, epochs: int | None, batch_size: int | None,
          learning_rate: float | None, max_steps: int | None, hard_negatives: int | None, threads: int | None, adapter_kind: str,
          init_model: Path | None, name: str | None, activate: bool, check_queries: Path | None) -> None:
    """Fine-tune the router: full (sentence-transformers), adapter (query side) or cross-encoder (reranker)."""
    from agentic_router.training.pipeline import guarded_activate, train_version

    router = _router(ctx)
    dataset_path = dataset_path or router.config.workspace / "datasets" / "train.json"
    if init_model is not None and method != "cross-encoder":
        raise click.UsageError("--init applies to --method cross-encoder")
    version = train_version(router.view, method, dataset_path, name=name, adapter_kind=adapter_kind, init_model=init_model,
                            epochs=epochs,
                            batch_size=batch_size, learning_rate=learning_rate, max_steps=max_steps,
                            hard_negatives=hard_negatives,
                            threads=threads)
    click.echo(f"trained {version.name} ({method}) in {version.figures.get('seconds', 0):.0f}s; "
               f"validation: {json.dumps(version.validation)}")
    fusion = version.figures.get("fusion")
    if fusion:
        weight = "reranker alone" if fusion["weight"] in (None, "alone") else fusion["weight"]
        click.echo(f"fusion weight (router score + w x reranker): {weight}"
                   + (f", chosen on {fusion['n']} held-out questions" if fusion.get("calibrated") else " (default)"))
    if version.figures.get("warning"):
        click.echo(f"note: {version.figures['warning']}", err=True)
    if activate:
        outcome = guarded_activate(router.view, version.name, check_queries, dataset_path)
        click.echo(("activated " if outcome["activated"] else "not activated: ") + version.name
                   + (f" ({outcome['reason']})" if not outcome["activated"] else ""))


@main.command()
@click.option("--from-queries", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Labelled requests {qid, query, gold} (logs); recorded feedback is always used too.")
@click.option("--llm", "gen_llm", type=click.Choice(LLM_PROVIDERS), default=None,
              help="With no labelled requests: the LLM that writes questions (none = pseudo-queries).")
@click.option("--methods", default="full", show_default=True, help="Comma list of full, adapter (empty: none).")
@click.option("--heldout", type=click.FloatRange(0.05, 0.5), default=0.2, show_default=True,
              help="Share of the labelled requests kept out of training to decide on.")
@click.option("--epochs", type=click.IntRange(1), default=None)
@click.option("--max-steps", type=click.IntRange(1), default=None)
@click.option("--threads", type=click.IntRange(1), default=None)
@click.option("--train-minutes", type=click.FloatRange(0.1), default=5.0, show_default=True,
              help="Training time per model; a full fine-tune stops after the step that passes it.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-activate", is_flag=True, help="Report only; change nothing but the usage memory.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def finetune(ctx: click.Context, from_queries: Path | None, gen_llm: str | None, methods: str, heldout: float,
             epochs: int | None, max_steps: int | None, threads: int | None, train_minutes: float, seed: int,
             no_activate: bool, as_json: bool) -> None:
    """Record, calibrate, train and activate what beats the current router on held-out requests."""
    from agentic_router.router.llms import load_llm
    from agentic_router.training.finetune import finetune as run

    router = _router(ctx)
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    needs_llm = from_queries is None and not router.catalog.db.feedback()
    llm = load_llm(router.config.with_overrides(llm_provider=gen_llm) if gen_llm else router.config) if needs_llm else None
    report = run(router.view, from_queries=from_queries, llm=llm, methods=chosen, heldout_share=heldout, seed=seed,
                 activate_result=not no_activate, progress=not as_json, epochs=epochs, max_steps=max_steps,
                 threads=threads, max_seconds=train_minutes * 60)
    if as_json:
        _emit_json(report.to_dict())
        return
    for line in report.decisions:
        click.echo(f"- {line}")
    if report.candidates:
        click.echo(f"held-out ({report.heldout} requests, {report.level} level):")
        for row in report.candidates:
            click.echo(f"  {row['name']:<34} hit@1 {row['hit@1']:.3f}  mrr {row['mrr']:.3f}  "
                       f"fixed {row['fixed']:>3}  broken {row['broken']:>3}")
    if report.warning:
        click.echo(f"note: {report.warning}", err=True)


@main.command()
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="http: address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="http: port.")
@click.pass_context
def mcp(ctx: click.Context, transport: str, host: str, port: int) -> None:
    """Serve the router as an MCP server: search_tools, describe_tool, call_tool."""
    from agentic_router.serve.mcp import serve as serve_mcp

    serve_mcp(_router(ctx), transport=transport, host=host, port=port)


@main.group()
def models() -> None:
    """List and activate model versions."""


@models.command("calibrate")
@click.argument("name")
@click.option("--dataset", "dataset_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Use this data set's held-out questions.")
@click.option("--queries", "queries_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Use these labelled questions {qid, query, gold} (e.g. fresh query logs).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def models_calibrate(ctx: click.Context, name: str, dataset_path: Path | None, queries_path: Path | None,
                     as_json: bool) -> None:
    """Choose a reranker's fusion weight (router score + w x reranker) again on labelled questions."""
    from agentic_router.training.pipeline import calibrate_version

    fusion = calibrate_version(_router(ctx).view, name, dataset_path, queries_path)
    if as_json:
        click.echo(json.dumps(fusion))
        return
    weight = "reranker alone" if fusion["weight"] in (None, "alone") else fusion["weight"]
    click.echo(f"{name}: fusion weight {weight}, chosen on {fusion['n']} questions")
    for w, row in fusion["grid"].items():
        click.echo(f"  w={w:>5}  hit@1 {row['hit@1']:.3f}  mrr {row['mrr']:.3f}  fixed {row['fixed']}  broken {row['broken']}")


@main.command()
@click.option("--queries", "queries_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Labelled requests of this catalog {qid, query, gold} (logs, feedback).")
@click.option("--level", type=click.Choice(["document", "tool"]), default=None)
@click.option("--reset", is_flag=True, help="Forget the chosen weights first (back to the configured ones).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def calibrate(ctx: click.Context, queries_path: Path, level: str | None, reset: bool, as_json: bool) -> None:
    """Choose the routing weights (BM25, usage memory) for this catalog on its labelled requests."""
    from agentic_router.training.calibrate import calibrate_routing
    from agentic_router.training.evaluate import load_queries

    if reset:  # before opening: a damaged weights file must not stand in the way of removing it
        from agentic_router.indexes.config import RouterConfig
        from agentic_router.router.workspace import ROUTING_WEIGHTS

        obj = ctx.find_root().obj
        (RouterConfig.load(obj["workspace"], **obj["overrides"]).workspace / ROUTING_WEIGHTS).unlink(missing_ok=True)
    router = _router(ctx)
    if reset and router.config.shared:
        router.workspace.save_routing(None)
    level = level or ("document" if router.catalog.count_documents() else "tool")
    chosen = calibrate_routing(router.view, load_queries(queries_path, allow_unanswerable=True), level,
                               progress=not as_json)
    if as_json:
        _emit_json({k: v for k, v in chosen.items() if k != "grid"})
        return
    verdict = "kept in the workspace" if chosen["changed"] else "no setting beat the current weights clearly; unchanged"
    click.echo(f"weights on {chosen['n']} labelled requests: {json.dumps(chosen['weights'])} ({verdict})")


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def models_list(ctx: click.Context, as_json: bool) -> None:
    router = _router(ctx)
    versions, active = router.registry.list(), router.registry.active()
    if as_json:
        from agentic_router.router.payloads import models_json

        _emit_json(models_json(router.registry))
        return
    click.echo(f"active embedder: {active['embedder'] or 'base'}; reranker: {active['reranker'] or 'none'}")
    for v in versions:
        mark = "*" if v.name in active.values() else " "
        val = ", ".join(f"{k}={x:.3f}" for k, x in v.validation.items() if isinstance(x, float))[:100]
        click.echo(f"{mark} {v.name:<28} {v.method:<13} {val}")


@models.command("activate")
@click.argument("name")
@click.option("--from-checkpoint", default=None, help="Adapter checkpoint to load, e.g. step_900.")
@click.option("--check-queries", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Refuse the switch if these real labelled questions route worse.")
@click.pass_context
def models_activate(ctx: click.Context, name: str, from_checkpoint: str | None, check_queries: Path | None) -> None:
    """Make NAME (or `base`) the version the router and the agent use."""
    from dataclasses import replace

    from agentic_router.router.activation import activate
    from agentic_router.training.pipeline import guarded_activate

    router = _router(ctx)
    original = None
    if from_checkpoint is not None:
        original = router.registry.get(name)
        if original.method != "adapter":
            raise click.UsageError("--from-checkpoint applies to adapter versions")
        router.registry.register(replace(original, checkpoint=from_checkpoint))
    try:
        if check_queries is not None and name != "base":
            outcome = guarded_activate(router.view, name, check_queries)
            if not outcome["activated"]:
                raise click.ClickException(outcome["reason"])
        else:
            activate(router.workspace, name, progress=True)
    except BaseException:
        if original is not None:  # the switch did not happen: leave the version as it was
            router.registry.register(original)
        raise
    click.echo(f"active: {json.dumps(router.registry.active())}")


def _keep_temporary_files_in_workspace(ctx: click.Context) -> None:
    """The service writes nothing outside its workspace, libraries' temporary files included (ONNX Runtime
    writes a session file to TMPDIR when it loads), so TMPDIR points inside the workspace before any loads."""
    import os
    import tempfile

    from agentic_router.indexes.config import RouterConfig

    obj = ctx.find_root().obj
    folder = RouterConfig.load(obj["workspace"], **obj["overrides"]).workspace / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(folder.resolve())
    tempfile.tempdir = None  # recomputed from TMPDIR on next use


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs an API key.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--chroma-url", default=None,
              help="A Chroma server shared by replicas (vectors and the catalog's log); default: embedded Chroma.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Service processes.")
@click.option("--batch-ms", type=click.FloatRange(0, 1000), default=2.0, show_default=True,
              help="Window in which concurrent questions are embedded together (0 = no batching).")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="torch and BLAS threads per process; concurrent requests use the cores.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, chroma_url: str | None, workers: int, batch_ms: float,
          threads: int) -> None:
    """Serve the router over HTTP (OpenAPI docs at /docs). Keys: env AGENTIC_ROUTER_READ_KEY / _ADMIN_KEY."""
    from agentic_router.indexes.errors import ConfigError
    from agentic_router.serve.auth import ApiKeys, check_bind

    if chroma_url is not None:
        ctx.find_root().obj["overrides"]["chroma_url"] = chroma_url
    if workers > 1 and chroma_url is None:
        raise ConfigError("--workers above 1 needs --chroma-url: processes share the catalog through a Chroma "
                          "server (an embedded Chroma folder must not be opened by several processes)")
    keys = ApiKeys.from_env()
    check_bind(host, keys)
    ctx.find_root().obj["overrides"]["query_batch_ms"] = batch_ms
    _keep_temporary_files_in_workspace(ctx)
    from agentic_router.serve.http import limit_cpu_threads

    limit_cpu_threads(threads)
    router = _router(ctx)

    import uvicorn

    from agentic_router.serve.http import create_app

    verbose = (ctx.find_root().params or {}).get("verbose")
    click.echo(f"serving {router.config.workspace} on http://{host}:{port} (docs at /docs; "
               f"{'API keys required' if keys.configured else 'no API key: loopback only'})", err=True)
    # Keep-alive longer than uvicorn's 5 s: a client reusing a connection the server is just closing gets a
    # reset, and clients under load (or behind a pool) reuse connections that idled a few seconds.
    options = dict(host=host, port=port, log_level="info" if verbose else "warning", access_log=bool(verbose),
                   timeout_graceful_shutdown=10, timeout_keep_alive=30)
    if workers == 1:
        uvicorn.run(create_app(router, keys=keys), **options)
        return
    import os

    from agentic_router.serve.http import SERVE_ENV

    import shutil

    from agentic_router.serve.metrics import MULTIPROC_ENV

    overrides = {k: v for k, v in ctx.find_root().obj["overrides"].items() if v is not None}
    os.environ[SERVE_ENV] = json.dumps({"workspace": str(router.config.workspace), "overrides": overrides,
                                        "threads": threads}, default=str)
    # /metrics sums the workers: each writes its values to files here (prometheus multiprocess mode)
    metrics_dir = Path(os.environ["TMPDIR"]) / f"metrics-{os.getpid()}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    router.close()  # each worker opens its own (the catalog's mirror file is shared safely)
    try:
        uvicorn.run("agentic_router.serve.http:app_from_env", factory=True, workers=workers, **options)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
