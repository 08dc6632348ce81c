"""Convert the BFCL "live" categories (requests written by real users) into our shared JSONL format.

Why: Seal-Tools questions were written by an LLM from the tool descriptions, so they flatter embedding
routers; the Berkeley Function Calling Leaderboard's live categories are real requests against real
function definitions, a harder and more honest dev benchmark for tool routing.

The data come from the installed ``bfcl-eval`` wheel, read as plain files: the package is located with
``importlib.util.find_spec`` (which does not execute it), so bfcl-eval's own heavy dependencies are not
needed. Install it on a fresh machine with::

    .venv/bin/pip install --no-deps bfcl-eval==2026.3.23

Usage::

    .venv/bin/python scripts/bfcl_to_jsonl.py --out DIR [--json] [--data-dir PATH]

Writes, under DIR (nothing else is written):

- ``docs.jsonl``: one tool per line, ``{"name", "description", "parameters"}`` (JSON Schema), pooled from the
  candidate functions of ``live_simple`` and ``live_multiple``; accepted by ``agentic-router tools add``.
- ``live.queries.jsonl``: ``live_simple`` + ``live_multiple`` requests, ``{"qid", "query", "gold", "category"}``.
- ``live_multi.queries.jsonl``: ``live_parallel`` + ``live_parallel_multiple`` requests; ``gold`` lists every
  function their ground truth calls (several tools per request).
- ``live_irrelevance.queries.jsonl``: requests that no candidate function serves, ``"gold": []``.

Decisions (see ``convert``):

- One catalog entry per function name. BFCL repeats a function in every row that offers it, often with a
  reworded description or slightly different parameters. Identical definitions merge; for a name with several
  definitions the most frequent one is kept (ties: the first seen) and the others are dropped. Suffixing the
  variants instead would turn paraphrases of one function into competing tools and make the gold label
  (which BFCL gives by name) ambiguous between them.
- The request text is every user message of the conversation, in order, joined by a newline; system and
  assistant messages are left out (system prompts are app instructions, not the request).
- Irrelevance rows contribute no functions to the catalog: adding theirs would change the catalog that the
  live questions are measured against, and they exist to test abstention, not retrieval.
- Names longer than the router's 64-character limit (or holding control characters) are rewritten to a
  stable short form (prefix + hash) in the catalog and in every gold label alike.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE = "bfcl_eval"
INSTALL_HINT = "pip install --no-deps bfcl-eval==2026.3.23"
MAX_NAME = 64  # same limit as agentic_router.indexes.schema.MAX_TOOL_NAME; kept local so no import is needed
MAX_QUERY_CHARS = 10_000  # the router refuses longer questions (agentic_router.router.retrieval.retriever)

CATALOG_CATEGORIES = ("live_simple", "live_multiple")
MULTI_CATEGORIES = ("live_parallel", "live_parallel_multiple")
IRRELEVANCE_CATEGORY = "live_irrelevance"

# BFCL writes Python-flavoured type names; JSON Schema spells them differently ("any" has no spelling: the
# type keyword is dropped, which in JSON Schema means any value).
_TYPE_MAP = {"dict": "object", "float": "number", "tuple": "array", "list": "array", "int": "integer",
             "str": "string", "bool": "boolean"}
_INVALID = re.compile(r"[^A-Za-z0-9_-]+")


class ConversionError(Exception):
    """A problem reported to the user as one line (exit code 1)."""


# ---------------------------------------------------------------------------------------------- locating data


def find_data_dir(override: str | Path | None = None) -> Path:
    """The ``data`` folder of the installed bfcl-eval, located without importing the package."""
    if override is not None:
        data = Path(override)
        if not data.is_dir():
            raise ConversionError(f"no such BFCL data folder: {data}")
        return data
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ConversionError(f"bfcl-eval is not installed (install it with: {INSTALL_HINT})")
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [str(Path(spec.origin).parent)]
    for root in roots:
        data = Path(root) / "data"
        if data.is_dir():
            return data
    raise ConversionError(f"bfcl-eval is installed but has no data folder (looked in {', '.join(roots) or '?'})")


def _version_of(path: Path) -> int:
    match = re.match(r"BFCL_v(\d+)_", path.name)
    return int(match.group(1)) if match else -1


def category_file(data: Path, category: str, answers: bool = False) -> Path:
    """``BFCL_v<N>_<category>.json`` (newest N), under ``possible_answer/`` for the ground truth.

    Globbing the version keeps the script working when a later wheel renames v4 to v5.
    """
    folder = data / "possible_answer" if answers else data
    found = sorted(folder.glob(f"BFCL_v*_{category}.json"), key=_version_of)
    if not found:
        where = "possible_answer/" if answers else ""
        raise ConversionError(f"BFCL data file {where}BFCL_v*_{category}.json not found in {data}")
    return found[-1]


def has_category(data: Path, category: str) -> bool:
    return any(data.glob(f"BFCL_v*_{category}.json"))


def read_rows(path: Path) -> list[dict[str, Any]]:
    """BFCL files are JSON Lines despite the ``.json`` suffix."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConversionError(f"{path} line {lineno}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "id" not in row:
                raise ConversionError(f"{path} line {lineno}: expected an object with an 'id'")
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------- conversions


def to_json_schema(node: Any) -> Any:
    """Rewrite BFCL's parameter schema into JSON Schema (type names only; everything else is kept)."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, str):
            if value == "any":
                continue
            out[key] = _TYPE_MAP.get(value, value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    return out


def safe_name(name: str) -> str:
    """A name every client accepts (``^[A-Za-z0-9_-]{1,64}$``, as the router requires; BFCL has names such
    as ``uber.ride``), stable so gold labels can use it too: other characters become ``_``, a longer name
    keeps its first 55 characters and a hash."""
    clean = _INVALID.sub("_", name.strip()).strip("_")
    if clean == name and len(name) <= MAX_NAME:
        return name
    if clean and len(clean) <= MAX_NAME:
        return clean
    return hash_name(name, clean)


def hash_name(name: str, clean: str) -> str:
    return f"{clean[:MAX_NAME - 9]}_{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"


def request_text(row: dict[str, Any]) -> str:
    """All user messages of the conversation, in order, one per line."""
    parts: list[str] = []
    for turn in row.get("question") or []:
        messages = turn if isinstance(turn, list) else [turn]
        for message in messages:
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str) and content.strip():
                    parts.append(content.strip())
    return "\n".join(parts)


def called_functions(answer: dict[str, Any]) -> list[str]:
    """Function names a ground truth calls, in order, each once.

    Each ground-truth entry is ``{function_name: {arg: [allowed values]}}``.
    """
    names: list[str] = []
    for call in answer.get("ground_truth") or []:
        if isinstance(call, dict):
            for name in call:
                if name not in names:
                    names.append(name)
    return names


# ------------------------------------------------------------------------------------------------- pipeline


@dataclass
class Outcome:
    """Everything written, plus the counts that explain it."""

    catalog: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)


def pool_catalog(rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One entry per function name: the most frequent definition (ties: first seen)."""
    variants: dict[str, Counter[str]] = {}
    first_seen: dict[tuple[str, str], int] = {}
    original: dict[str, dict[str, Any]] = {}  # canonical key -> definition with BFCL's property order
    occurrences = 0
    for row in rows:
        for function in row.get("function") or []:
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                continue
            occurrences += 1
            name = function["name"]
            description = " ".join(str(function.get("description") or "").split()) or name
            definition = {"name": name, "description": description,
                          "parameters": to_json_schema(function.get("parameters") or {"type": "dict"})}
            key = json.dumps(definition, sort_keys=True, ensure_ascii=False)
            variants.setdefault(name, Counter())[key] += 1
            first_seen.setdefault((name, key), occurrences)
            original.setdefault(key, definition)
    catalog: list[dict[str, Any]] = []
    renamed: dict[str, str] = {}
    for name, counter in variants.items():
        best = min(counter, key=lambda k: (-counter[k], first_seen[(name, k)]))
        definition = dict(original[best])
        short = safe_name(name)
        if short != name and short in variants:  # cleaning made it collide with a real name: use the hash form
            short = hash_name(name, short)
        if short != name:
            renamed[name] = short
            definition["name"] = short
        catalog.append(definition)
    distinct_definitions = sum(len(c) for c in variants.values())
    counts = {
        "function_occurrences": occurrences,
        "distinct_definitions": distinct_definitions,
        "identical_duplicates_merged": occurrences - distinct_definitions,
        "names_with_variant_definitions": sum(1 for c in variants.values() if len(c) > 1),
        "variant_definitions_dropped": distinct_definitions - len(variants),
        "functions_pooled": len(catalog),
        "names_renamed": len(renamed),
        "renamed": renamed,
    }
    return catalog, counts


def labelled_rows(data: Path, category: str, names: dict[str, str], catalog: set[str], too_long: dict[str, int]
                  ) -> tuple[list[dict[str, Any]], int, int]:
    """Query rows of one answered category; returns rows, requests skipped (no user text), gold-missing count.
    Requests the router would refuse for length are counted in ``too_long`` and left out.

    ``n_calls`` counts calls, not distinct functions: a parallel request may call one function several times.
    """
    answers = {a["id"]: a for a in read_rows(category_file(data, category, answers=True))}
    out: list[dict[str, Any]] = []
    skipped = missing = 0
    for row in read_rows(category_file(data, category)):
        answer = answers.get(row["id"])
        text = request_text(row)
        if len(text) > MAX_QUERY_CHARS:
            too_long[category] = too_long.get(category, 0) + 1
            continue
        gold = [names.get(n, safe_name(n)) for n in called_functions(answer)] if answer else []
        if not text or not gold:
            skipped += 1
            continue
        if not set(gold) <= catalog:
            missing += 1
        out.append({"qid": row["id"], "query": text, "gold": gold, "category": category,
                    "n_calls": len(answer.get("ground_truth") or [])})
    return out, skipped, missing


def convert(data: Path) -> Outcome:
    """Read the live categories under ``data`` and build the catalog and the three query files."""
    outcome = Outcome()
    too_long: dict[str, int] = {}
    catalog_rows = {c: read_rows(category_file(data, c)) for c in CATALOG_CATEGORIES}
    catalog, counts = pool_catalog(r for c in CATALOG_CATEGORIES for r in catalog_rows[c])
    outcome.catalog = catalog
    names = counts["renamed"]
    in_catalog = {t["name"] for t in catalog}
    per_category: dict[str, int] = {}
    skipped: dict[str, int] = {}
    missing: dict[str, int] = {}

    live: list[dict[str, Any]] = []
    for category in CATALOG_CATEGORIES:
        rows, skipped[category], missing[category] = labelled_rows(data, category, names, in_catalog, too_long)
        per_category[category] = len(rows)
        live.extend(rows)

    multi: list[dict[str, Any]] = []
    for category in MULTI_CATEGORIES:
        if not has_category(data, category):  # live_parallel may be absent from other releases
            continue
        rows, skipped[category], missing[category] = labelled_rows(data, category, names, in_catalog, too_long)
        per_category[category] = len(rows)
        multi.extend(rows)

    irrelevant: list[dict[str, Any]] = []
    candidate_names: set[str] = set()
    for row in read_rows(category_file(data, IRRELEVANCE_CATEGORY)):
        candidate_names.update(f["name"] for f in row.get("function") or [] if isinstance(f, dict) and "name" in f)
        text = request_text(row)
        if len(text) > MAX_QUERY_CHARS:
            too_long[IRRELEVANCE_CATEGORY] = too_long.get(IRRELEVANCE_CATEGORY, 0) + 1
            continue
        if not text:
            skipped[IRRELEVANCE_CATEGORY] = skipped.get(IRRELEVANCE_CATEGORY, 0) + 1
            continue
        irrelevant.append({"qid": row["id"], "query": text, "gold": [], "category": IRRELEVANCE_CATEGORY})
    per_category[IRRELEVANCE_CATEGORY] = len(irrelevant)

    outcome.files = {"live.queries.jsonl": live, "live_multi.queries.jsonl": multi,
                     "live_irrelevance.queries.jsonl": irrelevant}
    counts.update({
        "requests": per_category,
        "requests_skipped_no_text_or_answer": {k: v for k, v in skipped.items() if v},
        "gold_missing_from_catalog": missing,
        "requests_over_max_chars": too_long,
        "irrelevance_candidate_functions": len(candidate_names),
        "irrelevance_candidates_already_in_catalog": len({safe_name(n) for n in candidate_names} & in_catalog),
        "data_files": [str(p.relative_to(data)) for p in used_files(data)],
    })
    outcome.counts = counts
    return outcome


def used_files(data: Path) -> list[Path]:
    """The BFCL files this conversion reads (for the report)."""
    answered = [c for c in (*CATALOG_CATEGORIES, *MULTI_CATEGORIES) if has_category(data, c)]
    files = [category_file(data, c) for c in (*answered, IRRELEVANCE_CATEGORY)]
    return files + [category_file(data, c, answers=True) for c in answered]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write(outcome: Outcome, out: Path) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    written = {"docs.jsonl": out / "docs.jsonl"}
    write_jsonl(written["docs.jsonl"], outcome.catalog)
    for name, rows in outcome.files.items():
        written[name] = out / name
        write_jsonl(written[name], rows)
    return {k: str(v) for k, v in written.items()}


def summary(counts: dict[str, Any]) -> str:
    req = counts["requests"]
    miss = counts["gold_missing_from_catalog"]
    lines = [
        (f"functions pooled: {counts['functions_pooled']} (from {counts['function_occurrences']} occurrences in "
         f"{' + '.join(CATALOG_CATEGORIES)})"),
        (f"identical duplicates merged: {counts['identical_duplicates_merged']}; names with several definitions: "
         f"{counts['names_with_variant_definitions']} (kept the most frequent, dropped "
         f"{counts['variant_definitions_dropped']} variant definitions)"),
        f"names renamed to what clients accept: {counts['names_renamed']}",
        "requests: " + ", ".join(f"{k} {v}" for k, v in req.items()),
        "requests whose gold is missing from the catalog: " + ", ".join(f"{k} {v}" for k, v in miss.items()),
        (f"irrelevance candidate functions: {counts['irrelevance_candidate_functions']} "
         f"({counts['irrelevance_candidates_already_in_catalog']} already in the catalog; none added)"),
    ]
    if counts["requests_over_max_chars"]:
        lines.append(f"requests over {MAX_QUERY_CHARS:,} characters dropped (the router refuses them): "
                     f"{counts['requests_over_max_chars']}")
    if counts["requests_skipped_no_text_or_answer"]:
        lines.append(f"requests skipped (no user text or no answer): {counts['requests_skipped_no_text_or_answer']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="Folder for docs.jsonl and the *.queries.jsonl files.")
    parser.add_argument("--json", action="store_true", help="Print the counts as one JSON document.")
    parser.add_argument("--data-dir", help="BFCL data folder to read instead of the installed package's.")
    args = parser.parse_args(argv)
    try:
        data = find_data_dir(args.data_dir)
        outcome = convert(data)
        written = write(outcome, args.out)
    except (ConversionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**outcome.counts, "files": written}, ensure_ascii=False, indent=2))
    else:
        print(summary(outcome.counts))
        print(f"wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
