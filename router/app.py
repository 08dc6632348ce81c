"""``AgenticRouter``: the product's Python API. The CLI (and the HTTP and MCP servers) are thin layers on it.

It opens one workspace (``router.workspace``) and works through its active view: documents and tools in,
routed tools and answers out. Heavy parts (embedder, LLM, Chroma) are created on first use, so listing
tools loads no model.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Sequence

from agentic_router.indexes.build import DocumentIndexer, delete_document, document_folder
from agentic_router.indexes.config import RouterConfig
from agentic_router.indexes.encoders.embeddings import embed_queries, embed_texts
from agentic_router.indexes.errors import CatalogError, InputError, RouterError
from agentic_router.indexes.schema import IngestReport, RouteHit, ToolSpec, check_tool_name, safe_tool_name
from agentic_router.indexes.sources.documents import SourceDocument, load_paths
from agentic_router.indexes.sources.external import load_tool_catalog
from agentic_router.indexes.sources.mcp_servers import McpServer, registered_servers, sync_server
from agentic_router.indexes.sources.openapi import OpenApiSource, registered_sources, sync_source
from agentic_router.indexes.tools import ToolFactory
from agentic_router.router.activation import activate, sync_collections
from agentic_router.router.answering.agent import MODES, AgentResult, default_mode, run_agent, run_direct
from agentic_router.router.answering.executors import ToolExecutor
from agentic_router.router.answering.llms import is_capable, load_llm
from agentic_router.router.answering.objects import CatalogToolRetriever
from agentic_router.router.payloads import (
    TOOL_SEARCH_FORMATS,
    ToolDefinition,
    check_call_id,
    check_format,
    route_json,
    tool_search_result,
)
from agentic_router.router.retrieval.retriever import check_query
from agentic_router.router.retrieval.scoring import close_to_best
from agentic_router.router.workspace import RouterView, Workspace

if TYPE_CHECKING:
    from llama_index.core.llms import LLM
    from llama_index.core.objects import ObjectRetriever
    from llama_index.core.tools import BaseTool

_UNSET = object()


class AgenticRouter:
    """Documents and tools in, routed tools and answers out, under the workspace's active models."""

    def __init__(self, config: RouterConfig, llm: "LLM | None | object" = _UNSET) -> None:
        self.workspace = Workspace(config)
        self.view: RouterView = self.workspace.view()
        self._llm = llm

    @classmethod
    def open(cls, workspace: str | Path | None = None, **overrides: Any) -> "AgenticRouter":
        """Open (or create) a workspace; ``overrides`` are ``RouterConfig`` fields (None values ignored)."""
        return cls(RouterConfig.load(workspace, **overrides))

    # ---- parts -------------------------------------------------------------------------------------
    @property
    def config(self) -> RouterConfig:
        return self.workspace.config

    @property
    def registry(self):  # noqa: ANN201 - ModelRegistry
        return self.workspace.registry

    @property
    def catalog(self):  # noqa: ANN201 - Catalog under the active embedder
        return self.view.catalog

    @property
    def llm(self) -> "LLM | None":
        if self._llm is _UNSET:
            self._llm = load_llm(self.config)
        return self._llm  # type: ignore[return-value]

    @cached_property
    def indexer(self) -> DocumentIndexer:
        capable = is_capable(self.config)
        return DocumentIndexer(self.config, self.view.embedder, self.catalog,
                               llm=self.llm if capable else None, llm_summaries=capable)

    @cached_property
    def tool_factory(self) -> ToolFactory:
        def storage_of(doc_id: str) -> str | None:
            doc = self.catalog.get_document(doc_id)
            folder = document_folder(self.config, self.workspace.db, doc) if doc else None
            return folder.name if folder else None

        factory = ToolFactory(self.config.docs_dir, storage_of, self.catalog.chunk_store(),
                              self.view.query_embedder, self.llm)
        factory.remote_tool = lambda spec: self.executor.function_tool(spec)  # MCP tools call their server
        return factory

    @cached_property
    def executor(self) -> ToolExecutor:
        return ToolExecutor(self.catalog, self.tool_factory)

    # ---- catalog -----------------------------------------------------------------------------------
    def ingest(self, sources: Iterable[str | Path] | Sequence[SourceDocument], replace: bool = False,
               progress: bool = False) -> IngestReport:
        """Index files/folders/JSONL (or ``SourceDocument``s) into three tools per document."""
        items = list(sources)
        docs = items if items and all(isinstance(d, SourceDocument) for d in items) else load_paths(items)  # type: ignore[arg-type]
        return self.indexer.ingest(docs, replace=replace, progress=progress)  # type: ignore[arg-type]

    def add_tools(self, specs_or_path: str | Path | Sequence[ToolSpec], replace: bool = False,
                  fix_names: bool = False) -> IngestReport:
        """Register external tools atomically: all rows of a catalog file, or none. Names must be what every
        client accepts (``TOOL_NAME_RULE``); ``fix_names`` renames a file's other names to the nearest valid
        form instead of refusing the file."""
        if isinstance(specs_or_path, (str, Path)):
            specs = load_tool_catalog(specs_or_path, fix_names=fix_names)
        else:
            specs = list(specs_or_path)
            for i, spec in enumerate(specs):
                if spec.kind == "external":
                    check_tool_name(spec.name, f"tool {i}")
        embedder = self.view.embedder
        return self.catalog.add_tools(
            specs, lambda texts: embed_texts(embedder, texts, show_progress=len(texts) > 256), replace=replace)

    def register_tool(self, tool: "BaseTool", replace: bool = True) -> None:
        """Make a Python tool routable and callable: its metadata goes in the catalog, the object in memory."""
        meta = tool.metadata
        params = meta.get_parameters_dict() if meta.fn_schema is not None else None
        check_tool_name(meta.get_name(), "register_tool")
        spec = ToolSpec(name=meta.get_name(), description=meta.description, kind="external", parameters=params)
        self.add_tools([spec], replace=replace)
        self.tool_factory.registered[spec.name] = tool

    def list_tools(self, kind: str | None = None) -> list[ToolSpec]:
        return self.catalog.list_tools(kind)

    def list_documents(self) -> list[dict[str, Any]]:
        """``{doc_id, title, content_hash, source, n_chunks, storage}`` of every ingested document."""
        return self.catalog.list_documents()

    def delete_document(self, doc_id: str) -> list[str]:
        """Remove a document with its three tools, chunks and indexes (all or none); returns the tool names."""
        return delete_document(self.config, self.catalog, doc_id)

    def delete_tools(self, names: Sequence[str]) -> list[str]:
        """Remove application tools (all or none); a document's tools go with ``delete_document`` only."""
        removed = self.catalog.delete_tools(names)
        if "tool_factory" in self.__dict__:
            for name in removed:
                self.tool_factory.registered.pop(name, None)
        return removed

    # ---- model versions ----------------------------------------------------------------------------
    def activate(self, name: str, progress: bool = False) -> dict[str, Any]:
        """Make version ``name`` (or ``base``) active and switch this router to it (see ``follow_active``)."""
        done = activate(self.workspace, name, progress=progress)
        self.follow_active()
        return done

    def repair(self, progress: bool = False) -> dict[str, int]:
        """Make the active version's vectors match the rows: embed what is missing, drop what no row names
        (what a writer killed between its vector write and its commit leaves). ``serve`` runs it at start-up
        on a shared catalog; cheap when there is nothing to repair, apart from listing the vector ids."""
        return sync_collections(self.view, progress)

    def follow_active(self) -> RouterView:
        """Point this router at the registry's active version. The new view's models load and its caches warm
        *before* the switch, which is one attribute assignment: calls under way finish on the old view, later
        ones use the new one, none waits for a model load. Tools registered in Python stay registered."""
        view = self.workspace.view()
        if view is self.view:
            return view
        view.query_embedder  # noqa: B018 - load now, not in the first request after the switch
        if view.catalog.count_tools():
            view.rank("warm up the question encoder and the BM25 indexes", 1)
        registered = dict(self.tool_factory.registered) if "tool_factory" in self.__dict__ else {}
        self.view = view
        for attr in ("indexer", "tool_factory", "executor"):
            self.__dict__.pop(attr, None)
        if registered:
            self.tool_factory.registered.update(registered)
        return view

    # ---- MCP servers, OpenAPI documents and calling tools (router.executors, indexes.*_source) ------
    def add_mcp_server(self, command: str | Sequence[str] | None = None, url: str | None = None,
                       name: str | None = None, replace: bool = False) -> dict[str, Any]:
        """Register every tool of an MCP server (a stdio ``command`` or a streamable-HTTP ``url``) as
        ``NAME__tool``, and remember how to reach it. All or nothing: a server that cannot be reached or
        answers garbage leaves the catalog as it was. Returns ``{server, added, changed, unchanged, removed}``."""
        if (command is None) == (url is None):
            raise InputError("give an MCP command or an MCP URL (one of them)")
        server = McpServer.stdio(command, name) if command is not None else McpServer.http(url or "", name)
        return sync_server(self.catalog, server.named(name) if name else server, self._embed_cards, replace=replace)

    def add_openapi(self, spec: str | Path, name: str | None = None, base_url: str | None = None,
                    auth_env: str | None = None, timeout: float | None = None, replace: bool = False
                    ) -> dict[str, Any]:
        """Register every operation of an OpenAPI 3 document (a file or an http(s) URL) as ``NAME__operation``.
        ``NAME`` defaults to the document's title, ``base_url`` to its first server; ``auth_env`` names the
        environment variable whose value is sent as a bearer token (read at call time, never stored). All or
        nothing. Returns ``{server, added, changed, unchanged, removed, skipped}``."""
        source = OpenApiSource.create(spec, name, base_url, auth_env, timeout)
        return sync_source(self.catalog, source, self._embed_cards, replace_source=replace)

    def sync_sources(self, name: str | None = None) -> list[dict[str, Any]]:
        """Read registered MCP servers and OpenAPI documents again: new tools added, changed ones re-embedded,
        removed ones removed. Each source is synced atomically; one that fails reports ``{"server", "error"}``
        and keeps its tools."""
        sources: dict[str, McpServer | OpenApiSource] = {**registered_servers(self.catalog),
                                                          **registered_sources(self.catalog)}
        if name is not None and name not in sources:
            raise CatalogError(f"no MCP server or OpenAPI document named {name!r} is registered")
        out = []
        for source in ([sources[name]] if name else [sources[n] for n in sorted(sources)]):
            try:
                if isinstance(source, OpenApiSource):
                    out.append(sync_source(self.catalog, source, self._embed_cards))
                else:
                    out.append(sync_server(self.catalog, source, self._embed_cards))
            except RouterError as exc:
                out.append({"server": source.name, "error": str(exc)})
        return out

    def sync_mcp_servers(self, name: str | None = None) -> list[dict[str, Any]]:
        """``sync_sources`` under its first name: OpenAPI documents are synced too."""
        return self.sync_sources(name)

    def mcp_servers(self) -> list[dict[str, Any]]:
        return [{**s.to_row(), "where": s.where()} for s in registered_servers(self.catalog).values()]

    def openapi_sources(self) -> list[dict[str, Any]]:
        """Every registered OpenAPI document: name, document, base URL, token variable (never the token), timeout."""
        return [{"name": s.name, "spec": s.spec, "base_url": s.base_url, "auth_env": s.auth_env, "timeout": s.timeout}
                for s in registered_sources(self.catalog).values()]

    def describe_tool(self, name: str) -> dict[str, Any]:
        """The full card of one tool, its input schema, and what runs it (index, mcp, openapi, python or none)."""
        return self.executor.describe(name)

    def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a catalog tool with arguments checked against its input schema first (``router.answering.executors``)."""
        return self.executor.call(name, arguments)

    def search_tools(self, query: str, k: int | Literal["auto"] | None = None) -> dict[str, Any]:
        """The routed tools with what a client needs to call them: the MCP server's ``search_tools``."""
        hits = self.route(query, k)
        specs = self.catalog.get_tools([h.name for h in hits])
        tools = [{"name": h.name, "description": h.description, "input_schema": self.executor.input_schema(specs[h.name]),
                  "score": round(h.score, 4), "kind": h.kind, "doc_id": h.doc_id} for h in hits if h.name in specs]
        return {"query": query, "tools": tools, "abstain": self.abstains(hits)}

    def route_openai_tools(self, query: str, k: int | Literal["auto"] | None = None) -> list[dict[str, Any]]:
        """The routed tools as an OpenAI ``tools`` array, to pass exactly those to a model."""
        return self.format_route(query, self.route(query, k), "openai")

    def route_as(self, query: str, fmt: str, k: int | Literal["auto"] | None = None, call_id: str | None = None,
                 rerank: int | None = None) -> Any:
        """Route and shape the answer as ``fmt`` (``payloads.ROUTE_FORMATS``): ``json`` as ``route --json``,
        ``openai`` a Chat Completions ``tools`` array, ``anthropic`` / ``openai-tool-search`` the result of the
        client's search tool, echoing ``call_id`` (the model's call of that tool)."""
        fmt = check_format(fmt)
        call_id = check_call_id(call_id, fmt)
        return self.format_route(query, self.route(query, k, rerank=rerank), fmt, call_id)

    def format_route(self, query: str, hits: Sequence[RouteHit], fmt: str, call_id: str | None = None) -> Any:
        """``route_as`` on hits already routed (the HTTP service routes in batches, then shapes each answer).
        A search result reveals no tool when the router abstains: the model hears "nothing fits" instead of
        being handed the least bad tools."""
        fmt = check_format(fmt)
        call_id = check_call_id(call_id, fmt)
        if fmt == "json":
            return route_json(query, hits, self.abstains(hits))
        if fmt in TOOL_SEARCH_FORMATS:
            shown = [] if self.abstains(hits) else hits
            return tool_search_result(fmt, self.tool_definitions(shown), call_id)
        specs = self.catalog.get_tools([h.name for h in hits])
        return [self.executor.openai_tool(specs[h.name]) for h in hits if h.name in specs]

    def tool_definitions(self, hits: Sequence[RouteHit]) -> list[ToolDefinition]:
        """Name, description and input schema of routed tools, in their order, as a provider declares them."""
        specs = self.catalog.get_tools([h.name for h in hits])
        return [ToolDefinition(s.name, s.description, self.executor.input_schema(s))
                for s in (specs.get(h.name) for h in hits) if s is not None]

    def _embed_cards(self, texts: list[str]) -> list[list[float]]:
        return embed_texts(self.view.embedder, texts, show_progress=len(texts) > 256)

    def feedback(self, query: str, tool: str) -> bool:
        """Record that ``tool`` finally served ``query``. The router uses it from the next question on
        (usage memory: the nearest recorded requests vote for their tools); no training needed. Returns
        False when the same pair was already recorded."""
        return self.record_requests([(query, tool)]) == 1

    def record_requests(self, rows: Sequence[tuple[str, str]], source: str = "feedback") -> int:
        """Record many ``(request, tool or doc_id)`` pairs at once (query logs); a doc_id stands for that
        document's vector tool. All or nothing; returns how many pairs were new."""
        checked = [(check_query(q), self._tool_name(t)) for q, t in rows]
        embedder = self.view.query_embedder
        return self.catalog.record(checked, lambda texts: embed_queries(embedder, texts), source=source)

    def _tool_name(self, name_or_doc: str) -> str:
        if self.catalog.get_tool(name_or_doc) is not None:
            return name_or_doc
        for spec in self.catalog.tools_for_documents([name_or_doc]).get(name_or_doc, []):
            if spec.kind == "vector":
                return spec.name
        safe = safe_tool_name(name_or_doc)  # a log's label for a tool registered with --fix-names
        if safe != name_or_doc and self.catalog.get_tool(safe) is not None:
            return safe
        raise CatalogError(f"unknown tool or document {name_or_doc!r}")

    # ---- routing and answering ---------------------------------------------------------------------
    def route(self, query: str, k: int | Literal["auto"] | None = None, rerank: int | None = None) -> list[RouteHit]:
        """Rank tools; with ``rerank=N`` the router's top N are reordered by the active cross-encoder.
        ``k="auto"``: the tools scoring within ``auto_k_margin`` of the best, at most ``k_max``, and none
        when no tool fits (``abstains``)."""
        if k != "auto":
            return self.view.rank(query, k, rerank=rerank)
        return self.auto_k(self.view.rank(query, self.config.k_max, rerank=rerank))

    def auto_k(self, hits: Sequence[RouteHit]) -> list[RouteHit]:
        """``k auto`` applied to a ranking of ``k_max`` tools (the HTTP service routes in batches first)."""
        hits = list(hits)[: self.config.k_max]
        return [] if self.abstains(hits) else close_to_best(hits, self.config.auto_k_margin)

    def abstains(self, hits: Sequence[RouteHit]) -> bool:
        """True when no routed tool fits the request (see ``abstain_below``)."""
        return self.view.abstains(list(hits))

    def tools_for(self, hits: Sequence[RouteHit]) -> list["BaseTool"]:
        """Callable tools for routed hits, in their order (built on demand; an index loads when called)."""
        specs = self.catalog.get_tools([h.name for h in hits])
        return [self.tool_factory.build(specs[h.name]) for h in hits if h.name in specs]

    def object_retriever(self, k: int | None = None, routed: dict[str, list[RouteHit]] | None = None
                         ) -> "ObjectRetriever":
        """The router as LlamaIndex's ``ObjectRetriever`` for ``tool_retriever=`` of any workflow agent.

        ``routed`` seeds it with questions already routed, so they are not routed again."""
        return CatalogToolRetriever(self.view.retriever, self.catalog, self.tool_factory, k or self.config.top_k,
                                    routed)

    def query(self, question: str, mode: str | None = None, k: int | None = None) -> AgentResult:
        """Answer through the routed tools: a ReAct agent over them, or a direct run of the best one."""
        question = check_query(question)
        mode = mode or default_mode(self.config.llm_provider)
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if mode == "agent" and self.llm is None:
            raise InputError("agent mode needs an LLM; use --mode direct or configure llm_provider")
        hits = self.route(question, k)
        if self.view.abstains(hits):
            return AgentResult(question, mode, "No tool in the catalog fits this request.", [h.name for h in hits],
                               note="the best tool's fit is below abstain_below; no tool was called")
        if mode == "agent" and self.llm is not None:  # checked above; the check narrows the type
            retriever = self.object_retriever(k, routed={question: hits})
            return run_agent(question, self.llm, retriever, [h.name for h in hits])
        return run_direct(question, hits, self.tools_for(hits))

    def close(self) -> None:
        self.workspace.close()
