"""What a catalog holds, said in a few hundred characters: how many tools, the sources behind them and the
subjects they cover. The MCP server's ``search_tools`` description is written from it, so a client that
sees several servers can tell from the description alone whether this catalog is worth a search.

Subjects are the words found in the most tools: a tool's name (without its source prefix) and description,
and a document's title (not its three tools' descriptions, which share a template). A word counts once per
tool, so one long description cannot outweigh many short ones, and only a word of at least two tools counts
as common; stopwords and words every tool card uses ("get", "returns", "string") are left out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from agentic_router.indexes.lexical.cache import default_stopwords, tokenize
from agentic_router.indexes.schema import humanize_identifier
from agentic_router.indexes.storage.catalog import Catalog

MAX_SEARCH_DESCRIPTION = 600
SUBJECTS = 8
_SOURCE_KINDS = {"stdio": "MCP server", "http": "MCP server", "openapi": "OpenAPI"}
_GENERIC = frozenset({
    "get", "gets", "set", "sets", "list", "lists", "return", "returns", "returned", "tool", "tools", "given",
    "value", "values", "string", "strings", "number", "numbers", "object", "objects", "specified", "specify",
    "provided", "create", "creates", "created", "update", "updates", "updated", "delete", "deletes", "deleted",
    "read", "reads", "find", "finds", "search", "searches", "request", "requests", "response", "responses", "api",
    "current", "information", "details", "detail", "new", "using", "use", "via", "optional", "required", "parameter",
    "parameters", "field", "fields", "default", "true", "false", "null", "name", "names", "type", "types", "ids",
    "json", "result", "results", "input", "output", "function", "call", "calls", "run", "runs", "allows", "able",
    "various", "answer", "answers", "question", "questions", "document", "documents", "text", "page", "pages",
    "based", "one", "two", "many", "much", "also", "add", "adds", "every", "each", "first", "last", "all", "other",
    "another", "specific", "certain", "integer", "integers", "float", "boolean", "array", "arrays", "whole",
})


@dataclass(frozen=True)
class CatalogSummary:
    """Counts and names, in the order a description shows them (largest source first)."""

    tools: int
    documents: int = 0
    document_tools: int = 0
    sources: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, name, tools)
    other_tools: int = 0  # external tools from catalog files or Python
    subjects: list[str] = field(default_factory=list)


def summarize(catalog: Catalog, subjects: int = SUBJECTS) -> CatalogSummary:
    """Read the catalog's rows (SQLite only: no model, no vectors) into a ``CatalogSummary``."""
    specs = catalog.list_tools()
    owned: dict[str, tuple[str, str]] = {}
    sources = []
    for row in catalog.sources():
        names = catalog.source_tools(row["name"])
        owned.update({n: (row["transport"], row["name"]) for n in names})
        sources.append((_SOURCE_KINDS.get(row["transport"], row["transport"]), row["name"], len(names)))
    sources.sort(key=lambda s: (-s[2], s[1]))
    document_tools = sum(1 for s in specs if s.kind != "external")
    other = sum(1 for s in specs if s.kind == "external" and s.name not in owned)
    stop = default_stopwords() | _GENERIC
    counts: Counter[str] = Counter()
    texts = [f"{humanize_identifier(s.name.split('__')[-1])} {s.description}" for s in specs if s.kind == "external"]
    texts += [title for _, title, _ in catalog.document_leads()]
    for text in texts:
        counts.update({w for w in tokenize(text, stop) if len(w) >= 3 and w.isalpha()})
    floor = 2 if len(texts) >= 4 else 1  # a word of one tool among many is no common subject
    top = sorted(((w, n) for w, n in counts.items() if n >= floor), key=lambda kv: (-kv[1], kv[0]))[:subjects]
    return CatalogSummary(len(specs), catalog.count_documents(), document_tools, sources, other, [w for w, _ in top])


def search_description(summary: CatalogSummary, limit: int = MAX_SEARCH_DESCRIPTION) -> str:
    """The ``search_tools`` description: what the tool does, then the catalog's sources and subjects, as many
    as fit in ``limit`` characters (the smallest sources first folded into "N more")."""
    head = (f"Find the tools that fit a request among the {summary.tools} tools of this catalog: name, description, "
            "input schema, score and kind of each, best first; 'abstain' is true when no tool fits. k=0: as many as "
            "fit.")
    if not summary.tools:
        return head + " The catalog is empty for now."
    phrases = [f"{kind} {name} ({n} tools)" for kind, name, n in summary.sources]
    if summary.documents:
        phrases.insert(0, f"{summary.documents} documents ({summary.document_tools} tools)")
    if summary.other_tools:
        phrases.append(f"{summary.other_tools} tools from catalog files")
    room = limit - 60 if summary.subjects else limit  # keep a few subjects in view
    text = head
    for keep in range(len(phrases), -1, -1):
        shown = phrases[:keep] + ([f"{len(phrases) - keep} more sources"] if keep < len(phrases) else [])
        text = head + " Sources: " + ", ".join(shown) + "."
        if len(text) <= room:
            break
    words: list[str] = []
    for word in summary.subjects:
        if len(text) + len(" Subjects: .") + len(", ".join([*words, word])) > limit:
            break
        words.append(word)
    if words:
        text += " Subjects: " + ", ".join(words) + "."
    return text[:limit]
