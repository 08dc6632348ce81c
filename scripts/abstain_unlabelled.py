"""Can the "no tool fits" threshold be set without labelled requests? Thresholds from generated text,
judged on real requests (answerable and not).

    .venv/bin/python scripts/abstain_unlabelled.py WORKSPACE MIX.jsonl

For every tool of the catalog, its description's first sentence is a generated request. ``self``: the fit
of that request with its tool in the catalog (a generated answerable request). ``leave-out``: the fit of
the best *other* tool (a generated request no tool fits, the closest kind of off-catalog text). Each
candidate threshold (a low quantile of either) is then applied to MIX.jsonl (labelled real requests,
``"gold": []`` where no tool fits): the share of answerable requests still answered, and the precision
and recall of abstaining.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from agentic_router import AgenticRouter
from agentic_router.router.retrieval.scoring import fit, score
from agentic_router.training.calibrate import gather
from agentic_router.training.evaluate import LabelledQuery, load_queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace")
    parser.add_argument("mix")
    args = parser.parse_args()
    router = AgenticRouter.open(args.workspace, llm_provider="none")
    view, weights = router.view, router.view.weights
    generated = [LabelledQuery(t.name, t.description.split(". ")[0][:300], (t.name,))
                 for t in view.list_tools() if t.description]
    own, other = [], []
    for q, ev in zip(generated, gather(view, generated, "tool").evidence):
        own.append(fit(score(ev, weights)))
        other.append(fit(score(replace(ev, specs={k: v for k, v in ev.specs.items() if k != q.qid}), weights)))
    rows = load_queries(args.mix, allow_unanswerable=True)
    fits = np.array([fit(score(ev, weights)) for ev in gather(view, rows, "tool").evidence])
    none_fits = np.array([not q.gold for q in rows])
    for label, values in (("self", own), ("leave-out", other), ("real answerable", fits[~none_fits]),
                          ("real, no tool fits", fits[none_fits])):
        print(f"{label:<19} fit quantiles 5/10/25/50%: {np.quantile(values, [.05, .1, .25, .5]).round(3).tolist()}")
    for label, values, q in (("self", own, 0.05), ("self", own, 0.10), ("leave-out", other, 0.10),
                             ("leave-out", other, 0.25)):
        threshold = float(np.quantile(values, q))
        abstain = fits < threshold
        hit = (abstain & none_fits).sum()
        print(f"{label} q{int(q * 100):02d}: threshold {threshold:.3f}  answered {1 - abstain[~none_fits].mean():.3f}  "
              f"abstain precision {hit / max(abstain.sum(), 1):.3f}  recall {hit / none_fits.sum():.3f}")
    router.close()


if __name__ == "__main__":
    main()
