"""``agentic-router``: a thin click layer over ``router.app.AgenticRouter``.

Contract: ``--json`` prints exactly one JSON document on stdout (progress and logs go to stderr); exit code
0 on success, 2 on a usage error, 1 on any other error with a one-line message on stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Literal

import click

from agentic_router.commands import models as model_commands
from agentic_router.commands import service as service_commands
from agentic_router.commands import state as state_commands
from agentic_router.commands.shell import emit_json, json_mode, open_router
from agentic_router.indexes.config import HOME_ENV, LLM_PROVIDERS
from agentic_router.indexes.errors import RemoteError, RouterError
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
@json_mode("as_json")
def ingest(ctx: click.Context, paths: tuple[str, ...], replace: bool, as_json: bool) -> None:
    """Index files, folders or JSONL documents: three tools per document."""
    report = open_router(ctx).ingest(list(paths), replace=replace, progress=not as_json)
    if as_json:
        emit_json(report.to_dict())
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
@click.option("--openapi", "openapi", default=None, metavar="SPEC",
              help="Register every operation of an OpenAPI 3 document (file path or http(s) URL).")
@click.option("--server-name", default=None,
              help="Prefix of the source's tools (NAME__tool); default: the server's own name or the document's title.")
@click.option("--base-url", default=None, help="With --openapi: where requests go (default: the document's first server).")
@click.option("--auth-env", default=None, metavar="VAR",
              help="With --openapi: send the value of environment variable VAR as a bearer token (read at call time).")
@click.option("--timeout", type=click.FloatRange(0, 600, min_open=True), default=None,
              help="With --openapi: seconds one API call may take (default 30).")
@click.option("--fix-names", is_flag=True,
              help="Rename catalog names that clients refuse (e.g. 'getPM2.5Level' -> 'getPM2_5Level') "
                   "instead of refusing the file; the original stays as the tool's title.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
@json_mode("as_json")
def tools_add(ctx: click.Context, catalog: Path | None, replace: bool, mcp_command: str | None, mcp_url: str | None,
              openapi: str | None, server_name: str | None, base_url: str | None, auth_env: str | None,
              timeout: float | None, fix_names: bool, as_json: bool) -> None:
    """Register external tools from a JSONL catalog, every tool of an MCP server, or every operation of an
    OpenAPI document."""
    if sum(x is not None for x in (catalog, mcp_command, mcp_url, openapi)) != 1:
        raise click.UsageError("give one of CATALOG, --mcp-command, --mcp-url or --openapi")
    if openapi is None and (base_url, auth_env, timeout) != (None, None, None):
        raise click.UsageError("--base-url, --auth-env and --timeout go with --openapi")
    if catalog is None:
        router = open_router(ctx)
        if openapi is not None:
            result = router.add_openapi(openapi, name=server_name, base_url=base_url, auth_env=auth_env,
                                        timeout=timeout, replace=replace)
        else:
            result = router.add_mcp_server(mcp_command, mcp_url, name=server_name, replace=replace)
        if as_json:
            emit_json(result)
            if "error" in result:
                ctx.exit(1)
            return
        _echo_sync(result)
        return
    report = open_router(ctx).add_tools(catalog, replace=replace, fix_names=fix_names)
    if as_json:
        emit_json({"added": report.added, "replaced": report.replaced, "unchanged": report.unchanged})
        return
    click.echo(f"added {len(report.added)}, replaced {len(report.replaced)}, unchanged {len(report.unchanged)} tool(s)")


@tools.command("sync")
@click.option("--server-name", default=None, help="Only this MCP server or OpenAPI document (default: every one).")
@click.option("--json", "as_json", is_flag=True, help="Print one report per source as a JSON list.")
@click.pass_context
@json_mode("as_json")
def tools_sync(ctx: click.Context, server_name: str | None, as_json: bool) -> None:
    """Read registered MCP servers and OpenAPI documents again: add new tools, re-embed changed ones, remove
    vanished ones."""
    results = open_router(ctx).sync_sources(server_name)
    if as_json:
        emit_json(results)
    else:
        for result in results:
            _echo_sync(result)
    failed = [r for r in results if "error" in r]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(results)} source(s) could not be synced")


def _echo_sync(result: dict[str, Any]) -> None:
    if "error" in result:
        click.echo(f"{result['server']}: error: {result['error']}", err=True)
        return
    click.echo(f"{result['server']}: added {len(result['added'])}, changed {len(result['changed'])}, removed "
               f"{len(result['removed'])}, unchanged {len(result['unchanged'])} tool(s)")
    for skipped in result.get("skipped") or []:
        click.echo(f"{result['server']}: skipped {skipped}", err=True)


@tools.command("call")
@click.argument("name")
@click.argument("arguments", required=False, default="{}")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.pass_context
@json_mode("as_json")
def tools_call(ctx: click.Context, name: str, arguments: str, as_json: bool) -> None:
    """Run one tool with ARGUMENTS, a JSON object checked against its input schema before anything runs."""
    try:
        parsed = json.loads(arguments)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="ARGUMENTS") from None
    result = open_router(ctx).call_tool(name, parsed)
    if as_json:
        emit_json(result)
    elif not result["is_error"]:
        click.echo(result["content"])
    if result["is_error"]:
        raise RemoteError(f"{result['tool']} reported an error: {' '.join(result['content'].split())[:500]}")


@tools.command("list")
@click.option("--kind", type=click.Choice(TOOL_KINDS))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@json_mode("as_json")
def tools_list(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """List the catalog."""
    specs = open_router(ctx).list_tools(kind)
    if as_json:
        from agentic_router.router.payloads import tools_json

        emit_json(tools_json(specs))
        return
    from rich.console import Console
    from rich.table import Table

    from agentic_router.indexes.schema import TOOL_NAME_RULE, is_valid_tool_name

    table = Table("name", "kind", "doc_id", "description", title=f"{len(specs)} tools")
    invalid = 0
    for s in specs:
        mark = "" if is_valid_tool_name(s.name) else " (!)"
        invalid += bool(mark)
        table.add_row(s.name + mark, s.kind, s.doc_id or "",
                      s.description[:90] + ("…" if len(s.description) > 90 else ""))
    Console(width=160).print(table)
    if invalid:
        click.echo(f"(!) {invalid} name(s) outside {TOOL_NAME_RULE}: OpenAI and Anthropic clients refuse them; "
                   "register them again under a valid name")


class _KParam(click.ParamType):
    """A number of tools (1..1000), or ``auto``: the tools close to the best one, none when none fits."""

    name = "K|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | Literal["auto"]:
        if value == "auto":
            return "auto"
        if isinstance(value, int):
            return value
        try:
            k = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of tools nor 'auto'", param, ctx)
        if not 1 <= k <= 1000:
            self.fail(f"{k} is not in the range 1<=k<=1000", param, ctx)
        return k


CLI_FORMATS = ("text", "json", "openai", "anthropic", "openai-tool-search")


@main.command()
@click.argument("question")
@click.option("-k", "--k", "k", type=_KParam(), default=5, show_default=True,
              help="Tools to return, or 'auto': those within auto_k_margin of the best (at most k_max, none when "
                   "no tool fits).")
@click.option("--rerank", type=click.IntRange(1, 1000), default=None,
              help="Reorder the router's top N with the active cross-encoder.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--format", "fmt", metavar="|".join(CLI_FORMATS), default=None,
              help="openai: an OpenAI `tools` array; anthropic / openai-tool-search: the result of a client-side "
                   "search tool over deferred tools (docs/cli.md).")
@click.option("--call-id", default=None,
              help="With anthropic / openai-tool-search: the id of the model's search-tool call, echoed in the result.")
@click.pass_context
@json_mode("as_json", when=lambda kw: kw.get("fmt") not in (None, "text"))
def route(ctx: click.Context, question: str, k: int | Literal["auto"], rerank: int | None, as_json: bool,
          fmt: str | None, call_id: str | None) -> None:
    """Rank the tools for a question."""
    if fmt is not None and fmt not in CLI_FORMATS:  # one line, exit 2: a usage error, not click's usage block
        click.echo(f"error: unknown --format {fmt[:40]!r}; use one of {', '.join(CLI_FORMATS)}", err=True)
        ctx.exit(2)
    if call_id is not None and fmt not in ("anthropic", "openai-tool-search"):
        click.echo("error: --call-id goes with --format anthropic or openai-tool-search", err=True)
        ctx.exit(2)
    router = open_router(ctx)
    if fmt not in (None, "text", "json"):
        emit_json(router.route_as(question, fmt, k, call_id=call_id, rerank=rerank))
        return
    as_json = as_json or fmt == "json"
    hits = router.route(question, k, rerank=rerank)
    abstain = router.abstains(hits)
    if as_json:
        from agentic_router.router.payloads import route_json

        emit_json(route_json(question, hits, abstain))
        return
    if abstain:
        click.echo("no tool fits this request" + (" (ranked anyway):" if hits else ""))
    for i, h in enumerate(hits, start=1):
        click.echo(f"{i:>2}. {h.score:.3f}  {h.name}  [{h.kind}{', doc ' + h.doc_id if h.doc_id else ''}]")


@main.command()
@click.option("--query", "query_text", default=None, help="The request as the user wrote it.")
@click.option("--tool", default=None, help="The tool (or document id) that finally served it.")
@click.option("--from-queries", "from_queries", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Record labelled query logs {qid, query, gold} instead (each gold id one pair).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@json_mode("as_json")
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
        assert query_text is not None and tool is not None  # checked above
        rows, source = [(query_text, tool)], "feedback"
    router = open_router(ctx)
    added = router.record_requests(rows, source=source)
    total = router.catalog.usage.count()
    if as_json:
        emit_json({"recorded": added, "already_known": len(rows) - added, "memory": total})
        return
    click.echo(f"recorded {added} request(s) ({len(rows) - added} already known); usage memory holds {total}")


@main.command()
@click.argument("question")
@click.option("--mode", type=click.Choice(["agent", "direct"]),
              help="agent: ReAct over routed tools; direct: run the best tool. Default depends on the LLM.")
@click.option("-k", "k", type=click.IntRange(1, 50), default=None, help="Tools offered to the agent.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@json_mode("as_json")
def query(ctx: click.Context, question: str, mode: str | None, k: int | None, as_json: bool) -> None:
    """Answer a question through the routed tools."""
    result = open_router(ctx).query(question, mode=mode, k=k)
    if as_json:
        emit_json(result.to_dict())
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
@click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Write metrics here ('-': print them on stdout as the only output, the table on stderr).")
@click.pass_context
@json_mode(when=lambda kw: str(kw.get("json_out")) == "-")
def eval_cmd(ctx: click.Context, queries_path: Path, level: str | None, limit: int | None, seed: int,
             compare: str | None, rerank: int | None, reranker: str | None, report_dir: Path | None,
             json_out: Path | None) -> None:
    """Measure routing accuracy (hit@k, MRR, NDCG@10, latency) on labelled queries."""
    from agentic_router.training.evaluate import load_queries
    from agentic_router.training.report import build_systems, print_table, run_systems, write_report

    router = open_router(ctx)
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
        if str(json_out) == "-":
            emit_json(payload)
            return
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


for _command in (*model_commands.COMMANDS, *service_commands.COMMANDS, *state_commands.COMMANDS):
    main.add_command(_command)


if __name__ == "__main__":  # python -m agentic_router.cli
    main()
