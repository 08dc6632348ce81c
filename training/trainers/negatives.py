"""Hard negatives for the bi-encoder and reranker trainers: mined with the base model, never a text that
answers the question (its positives, or any text of its own document)."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.trainers.common import Pair, corpus_texts

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)


def blocked_texts(dataset: RoutingDataset, pairs: list[Pair]) -> dict[str, set[str]]:
    """Per question text, the texts of its own documents (``dataset.groups``): never its negatives."""
    if not dataset.groups:
        return {}
    texts = corpus_texts(dataset)
    members: dict[str, list[str]] = {}
    for tid, group in dataset.groups.items():
        if tid in texts:
            members.setdefault(group, []).append(texts[tid])
    out: dict[str, set[str]] = {}
    for p in pairs:
        own = dataset.groups.get(p.positive_id)
        if own is not None:
            out.setdefault(p.query, set()).update(members.get(own, ()))
    return out


def mine_negatives(model: "SentenceTransformer", pairs: list[Pair], corpus: dict[str, str], num_negatives: int,
                   seed: int, output_format: Literal["triplet", "n-tuple", "labeled-pair"] = "n-tuple",
                   relative_margin: float | None = 0.05,
                   cache_dir: Path | None = None,
                   blocked: dict[str, set[str]] | None = None) -> tuple[Any, dict[str, int]]:
    """Hard negatives from the base model with ``sentence_transformers.util.mine_hard_negatives``.

    The corpus is every card and chunk; a question's own positives are never negatives (the function groups
    rows by question text). ``relative_margin=0.05`` drops candidates scoring within 5% of the weakest
    positive: near-copies of a positive (a sibling tool card of the same document, an overlapping chunk)
    are more likely unlabelled positives than negatives. ``range_min`` stays 0 because a tool catalog is
    small and its top-ranked wrong tools are exactly the confusions the router must learn.

    Candidates are searched among the ``50 + 10 x num_negatives`` nearest texts, so a question whose top
    texts all sit inside the margin still finds some further down. A question left short (few texts, or a
    weak base model) gets seeded random non-positive texts, so every positive is trained on and the
    reranker always sees label-0 rows; ``filled_rows`` counts them. ``blocked`` (question text -> texts,
    see ``blocked_texts``) are never negatives: a mined one is swapped for a random allowed text
    (``replaced_negatives``). Returns the ``datasets.Dataset`` and counts for the result record.
    """
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    base = Dataset.from_dict({"anchor": [p.query for p in pairs], "positive": [p.positive for p in pairs]})
    positives_of: dict[str, set[str]] = {}
    for p in pairs:
        positives_of.setdefault(p.query, set()).add(p.positive)
    for query, texts_of_query in (blocked or {}).items():  # from here on "positive" means "not a negative"
        if query in positives_of:
            positives_of[query] |= texts_of_query
    texts = list(dict.fromkeys(corpus.values()))
    available = min(len(set(texts) - pos) for pos in positives_of.values())
    num = min(num_negatives, available)
    if num < 1:
        logger.warning("no text can serve as a negative for some question; training with in-batch negatives only")
        return base, {"mined_rows": 0, "filled_rows": 0, "negatives_per_row": 0}
    mined = mine_hard_negatives(
        base, model, anchor_column_name="anchor", positive_column_name="positive", corpus=texts,
        range_max=50 + 10 * num, num_negatives=num, relative_margin=relative_margin, sampling_strategy="top",
        output_format=output_format, batch_size=64, verbose=False, cache_folder=str(cache_dir) if cache_dir else None,
    )
    rows, rng, filled = mined.to_dict(), random.Random(seed), 0
    rows, replaced = _drop_blocked(rows, positives_of, texts, output_format, rng)
    if output_format == "n-tuple":
        kept = set(zip(rows["anchor"], rows["positive"]))
        for p in pairs:
            if (p.query, p.positive) not in kept:
                kept.add((p.query, p.positive))
                pool = [t for t in texts if t not in positives_of[p.query]]
                rows["anchor"].append(p.query)
                rows["positive"].append(p.positive)
                for i, text in enumerate(rng.sample(pool, num), start=1):
                    rows[f"negative_{i}"].append(text)
                filled += 1
    else:  # labeled-pair: top every question up to ``num`` label-0 rows
        negatives: dict[str, set[str]] = {q: set() for q in positives_of}
        for query, text, label in zip(rows["anchor"], rows["positive"], rows["label"]):
            if not label:
                negatives[query].add(text)
        for query, chosen in negatives.items():
            if len(chosen) < num:
                pool = [t for t in texts if t not in positives_of[query] and t not in chosen]
                for text in rng.sample(pool, min(len(pool), num - len(chosen))):
                    rows["anchor"].append(query)
                    rows["positive"].append(text)
                    rows["label"].append(0)
                    filled += 1
    counts = {"mined_rows": len(mined), "filled_rows": filled, "negatives_per_row": num,
              "replaced_negatives": replaced}
    return (Dataset.from_dict(rows) if filled or replaced else mined), counts


def _drop_blocked(rows: dict[str, list], allowed_not: dict[str, set[str]], texts: list[str], output_format: str,
                  rng: random.Random) -> tuple[dict[str, list], int]:
    """Swap (n-tuple) or drop (labeled-pair, topped up later) negatives that belong to the question."""
    replaced = 0
    if output_format == "n-tuple":
        neg_cols = [c for c in rows if c.startswith("negative")]
        for i, query in enumerate(rows["anchor"]):
            taken = {rows[c][i] for c in neg_cols}
            for c in neg_cols:
                if rows[c][i] in allowed_not.get(query, ()):
                    pool = [t for t in texts if t not in allowed_not[query] and t not in taken]
                    if pool:
                        rows[c][i] = rng.choice(pool)
                        taken.add(rows[c][i])
                        replaced += 1
        return rows, replaced
    keep = [i for i, (q, t, label) in enumerate(zip(rows["anchor"], rows["positive"], rows["label"]))
            if label or t not in allowed_not.get(q, ())]
    replaced = len(rows["anchor"]) - len(keep)
    return {k: [v[i] for i in keep] for k, v in rows.items()}, replaced
