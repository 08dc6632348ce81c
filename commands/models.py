"""The model commands of the command line: ``generate``, ``train``, ``finetune``, ``calibrate`` and the
``models`` group. Thin: each parses its options, calls ``training`` and prints; ``cli.py`` registers them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from agentic_router.commands.shell import emit_json, json_mode, open_router
from agentic_router.indexes.config import LLM_PROVIDERS


@click.command()
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
    from agentic_router.router.answering.llms import load_llm
    from agentic_router.training.generate import generate_dataset

    router = open_router(ctx)
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


@click.command()
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

    router = open_router(ctx)
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


@click.command()
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
@click.option("--train-minutes", type=click.FloatRange(0.1), default=None,
              help="Training time per model; a full fine-tune stops after the step that passes it. "
                   "Default 5 with labelled requests, 30 with generated ones (one epoch on 2 cores).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-activate", is_flag=True, help="Report only; change nothing but the usage memory.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
@json_mode("as_json")
def finetune(ctx: click.Context, from_queries: Path | None, gen_llm: str | None, methods: str, heldout: float,
             epochs: int | None, max_steps: int | None, threads: int | None, train_minutes: float | None, seed: int,
             no_activate: bool, as_json: bool) -> None:
    """Record, calibrate, train and activate what beats the current router on held-out requests."""
    from agentic_router.router.answering.llms import load_llm
    from agentic_router.training.finetune import finetune as run

    router = open_router(ctx)
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    needs_llm = from_queries is None and not router.catalog.recorded_requests()
    llm = load_llm(router.config.with_overrides(llm_provider=gen_llm) if gen_llm else router.config) if needs_llm else None
    report = run(router.view, from_queries=from_queries, llm=llm, methods=chosen, heldout_share=heldout, seed=seed,
                 activate_result=not no_activate, progress=not as_json, epochs=epochs, max_steps=max_steps,
                 threads=threads, max_seconds=train_minutes * 60 if train_minutes else None)
    if as_json:
        emit_json(report.to_dict())
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


@click.group()
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
@json_mode("as_json")
def models_calibrate(ctx: click.Context, name: str, dataset_path: Path | None, queries_path: Path | None,
                     as_json: bool) -> None:
    """Choose a reranker's fusion weight (router score + w x reranker) again on labelled questions."""
    from agentic_router.training.pipeline import calibrate_version

    fusion = calibrate_version(open_router(ctx).view, name, dataset_path, queries_path)
    if as_json:
        emit_json(fusion)
        return
    weight = "reranker alone" if fusion["weight"] in (None, "alone") else fusion["weight"]
    click.echo(f"{name}: fusion weight {weight}, chosen on {fusion['n']} questions")
    for w, row in fusion["grid"].items():
        click.echo(f"  w={w:>5}  hit@1 {row['hit@1']:.3f}  mrr {row['mrr']:.3f}  fixed {row['fixed']}  broken {row['broken']}")


@click.command()
@click.option("--queries", "queries_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Labelled requests of this catalog {qid, query, gold} (logs, feedback).")
@click.option("--level", type=click.Choice(["document", "tool"]), default=None)
@click.option("--reset", is_flag=True, help="Forget the chosen weights first (back to the configured ones).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@json_mode("as_json")
def calibrate(ctx: click.Context, queries_path: Path, level: str | None, reset: bool, as_json: bool) -> None:
    """Choose the routing weights (BM25, usage memory) for this catalog on its labelled requests."""
    from agentic_router.training.calibrate import calibrate_routing
    from agentic_router.training.evaluate import load_queries

    if reset:  # before opening: a damaged weights file must not stand in the way of removing it
        from agentic_router.indexes.config import RouterConfig
        from agentic_router.router.workspace import ROUTING_WEIGHTS

        obj = ctx.find_root().obj
        (RouterConfig.load(obj["workspace"], **obj["overrides"]).workspace / ROUTING_WEIGHTS).unlink(missing_ok=True)
    router = open_router(ctx)
    if reset and router.config.shared:
        router.workspace.save_routing(None)
    level = level or ("document" if router.catalog.count_documents() else "tool")
    chosen = calibrate_routing(router.view, load_queries(queries_path, allow_unanswerable=True), level,
                               progress=not as_json)
    if as_json:
        emit_json({k: v for k, v in chosen.items() if k != "grid"})
        return
    verdict = "kept in the workspace" if chosen["changed"] else "no setting beat the current weights clearly; unchanged"
    click.echo(f"weights on {chosen['n']} labelled requests: {json.dumps(chosen['weights'])} ({verdict})")


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@json_mode("as_json")
def models_list(ctx: click.Context, as_json: bool) -> None:
    router = open_router(ctx)
    versions, active = router.registry.list(), router.registry.active()
    if as_json:
        from agentic_router.router.payloads import models_json

        emit_json(models_json(router.registry))
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

    router = open_router(ctx)
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


COMMANDS = (generate, train, finetune, calibrate, models)
