"""`gptscratch interpret`: logit lens, attention heads, induction heads and activation patching.

Thin layer over gptscratch.interpret: load the checkpoint, turn text into ids, call the library, render
rich tables (stdout), `--json` (one line), `--plot FILE.png` (matplotlib, optional) and `--demo` examples.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape

from gptscratch.cli.interpret_support import (Arg, BosOpt, CheckpointArg, CheckpointOpt, DemoOpt, JsonOpt, Opt,
                                               HtmlOpt, PlotOpt, TextOpt, check_plot, load_model, percent, save_page,
                                               save_plot, styled, text_ids)
from gptscratch.cli.render import announce_device, log, print_json, markup_table, show, warn
from gptscratch.errors import UsageError

app = typer.Typer(help="Look inside a model: logit lens, attention heads, induction heads, activation patching.",
                  no_args_is_help=True)


@app.command("logit-lens")
def logit_lens_command(
    checkpoint: CheckpointArg = None,
    checkpoint_option: CheckpointOpt = None,
    text: TextOpt = None,
    target: Annotated[Optional[str], Opt(help="The correct continuation after the text (its first token is used).")] = None,
    k: Annotated[int, Opt("--k", "-k", help="Top predictions shown per layer.")] = 5,
    position: Annotated[Optional[int], Opt(help="Position detailed (default: the last one with a known answer).")] = None,
    include_mid: Annotated[bool, Opt("--include-mid", help="Also read between attention and MLP (sequential blocks only).")] = False,
    bos: BosOpt = True, demo: DemoOpt = False, json_output: JsonOpt = False, plot: PlotOpt = None,
    html: HtmlOpt = None,
) -> None:
    """What each layer would predict (final norm applied). Example: gptscratch interpret logit-lens RUN --demo"""
    from gptscratch.interpret import first_token, logit_lens, token_label
    from gptscratch.interpret.demos import LENS_TEXTS
    from gptscratch.interpret.plots import Heatmap

    check_plot(plot, html)

    if k < 1:
        raise UsageError(f"--k must be ≥ 1 (got {k})")
    loaded = load_model(checkpoint, checkpoint_option)
    tokenizer, results, maps, answers = loaded.tokenizer, [], [], []
    inputs = [(t, None) for t in LENS_TEXTS] if demo else [(None, target)]
    for item_text, item_target in inputs:
        ids = text_ids(loaded, item_text if demo else text, bos, demo)
        answer = first_token(tokenizer, item_target)[0] if item_target else None
        lens = logit_lens(loaded.model, ids, k=k, target=answer, incl_mid=include_mid,
                          vocab_limit=tokenizer.vocab_size)
        pos = lens.position(position)
        results.append({**lens.to_dict(lambda t: token_label(tokenizer, t)), "position": pos})
        answers.append([None if t is None else token_label(tokenizer, t) for t in lens.targets])
        if json_output:
            continue
        shown = list(range(max(0, len(ids) - 12), len(ids)))
        rows = []
        for s, label in enumerate(lens.labels):
            cells = []
            for p in shown:
                top = lens.top_ids[s][p][0]
                word = escape(token_label(tokenizer, top))
                cells.append(f"[bold green]{word}[/]" if top == lens.targets[p] else word)
            rows.append([label, *cells])
        show(markup_table("top-1 prediction after each layer (green = the correct next token)",
                   ["layer", *[escape(token_label(tokenizer, ids[p])) for p in shown]], rows))
        correct = lens.targets[pos]
        detail = [[label, ", ".join(f"{escape(token_label(tokenizer, t))} {100 * pr:.1f}%" for t, pr in
                                     zip(lens.top_ids[s][pos], lens.top_probs[s][pos])),
                   lens.target_rank[s][pos], percent(lens.target_prob[s][pos])] for s, label in enumerate(lens.labels)]
        title = (f"after {escape(repr(token_label(tokenizer, ids[pos])))} (position {pos}); correct next token: "
                 f"{escape(repr(token_label(tokenizer, correct))) if correct is not None else 'unknown (give --target)'}")
        show(markup_table(title, ["layer", f"top {k}", "correct rank", "correct prob"], detail))
        probs = [[p if p is not None else None for p in layer] for layer in lens.target_prob]
        maps.append(Heatmap(probs, "probability of the correct next token", lens.labels,
                            [token_label(tokenizer, t) for t in ids], "position", "layer", 0.0, 1.0,
                            annotations=[[token_label(tokenizer, row[p][0])[:6] for p in range(len(ids))]
                                         for row in lens.top_ids]))
    if json_output:
        print_json(results if demo else results[0])
    if plot:
        save_plot(plot, maps or [Heatmap(r["target_prob"], "probability of the correct next token", r["labels"],
                                     r["token_strings"], "position", "layer", 0.0, 1.0) for r in results])
    if html:
        save_page(html, "logit-lens", "logit lens", loaded, {"items": [{**r, "target_strings": a} for r, a in zip(results, answers)], "k": k})


@app.command("attention")
def attention_command(
    checkpoint: CheckpointArg = None,
    checkpoint_option: CheckpointOpt = None,
    text: TextOpt = None,
    layer: Annotated[Optional[int], Opt(help="Only this layer.")] = None,
    head: Annotated[Optional[int], Opt(help="Show this head's pattern (needs --layer).")] = None,
    bos: BosOpt = True, demo: DemoOpt = False, json_output: JsonOpt = False, plot: PlotOpt = None,
    html: HtmlOpt = None,
) -> None:
    """Classify every head (previous-token, first-token, duplicate, induction, uniform, focused …)."""
    from gptscratch.interpret import analyse_heads, attention_patterns, token_label
    from gptscratch.interpret.demos import ATTENTION_TEXT
    from gptscratch.interpret.heads import DETECTORS
    from gptscratch.interpret.plots import Heatmap

    check_plot(plot, html)

    loaded = load_model(checkpoint, checkpoint_option)
    config, tokenizer = loaded.model.config, loaded.tokenizer
    if head is not None and layer is None:
        raise UsageError("--head needs --layer too, e.g. --layer 0 --head 1")
    if layer is not None and not 0 <= layer < config.n_layer:
        raise UsageError(f"--layer must be in 0..{config.n_layer - 1} (got {layer})")
    if head is not None and not 0 <= head < config.n_head:
        raise UsageError(f"--head must be in 0..{config.n_head - 1} (got {head})")
    ids = text_ids(loaded, ATTENTION_TEXT if demo else text, bos, demo)
    if len(ids) < 2:
        raise UsageError("attention analysis needs at least two tokens; give a longer --text")
    profiles = analyse_heads(loaded.model, ids, None if layer is None else [layer])
    labels = [token_label(tokenizer, t) for t in ids]
    layers = list(range(config.n_layer)) if layer is None else [layer]
    # The weights themselves: for --layer (its heads' patterns) and for the page (every shown layer's), read once.
    patterns = attention_patterns(loaded.model, ids, layers)[:, 0].float() if layer is not None or html else None
    pattern = patterns[0] if layer is not None else None                            # (nh, T, T)
    out = {"tokens": ids, "token_strings": labels, "heads": [p.to_dict() for p in profiles]}
    if head is not None:
        out["pattern"] = pattern[head].tolist()
    if json_output:
        print_json(out)
    else:
        short = {"previous_token": "prev", "first_token": "first", "current_token": "self",
                 "duplicate_token": "dup", "induction": "induct"}
        rows = [[p.name, styled(f"{p.kind} ({p.confidence:.2f})", p.kind), *[f"{p.scores[d]:.3f}" for d in DETECTORS],
                 f"{p.normalized_entropy:.3f}"] for p in profiles]
        show(markup_table("attention heads (scores: TransformerLens detection score Σ A⊙D / Σ A)",
                   ["head", "kind", *[short[d] for d in DETECTORS], "entropy (0-1)"], rows))
        if head is not None:
            where = []
            for q in range(len(ids)):
                weights, keys = pattern[head, q].topk(min(3, q + 1))
                where.append([escape(labels[q]), ", ".join(f"{escape(labels[k_])}@{k_} {w:.2f}"
                                                           for w, k_ in zip(weights.tolist(), keys.tolist()))])
            show(markup_table(f"where L{layer}H{head} looks (top 3 keys per query)", ["query", "attends to"], where))
    if plot:
        if head is not None:
            maps = [Heatmap(pattern[head].tolist(), f"L{layer}H{head} attention", labels, labels, "key", "query", 0, 1)]
        elif layer is not None:
            maps = [Heatmap(pattern[h].tolist(), f"L{layer}H{h}", labels, labels, "key", "query", 0, 1)
                    for h in range(config.n_head)]
        else:
            maps = [Heatmap([[p.scores[d] for p in profiles if p.layer == lay] for lay in range(config.n_layer)],
                            d.replace("_", "-"), [str(lay) for lay in range(config.n_layer)],
                            [str(h) for h in range(config.n_head)], "head", "layer", 0, 1) for d in DETECTORS]
        save_plot(plot, maps)
    if html:
        from gptscratch.views import causal_rows

        save_page(html, "attention", "attention", loaded, {
            **out, "layers": layers, "n_head": config.n_head,
            "selected": {"layer": layers[0], "head": head or 0},
            "patterns": [[causal_rows(m.tolist()) for m in per_layer] for per_layer in patterns]})


@app.command("induction-heads")
def induction_heads_command(
    checkpoint: CheckpointArg = None,
    checkpoint_option: CheckpointOpt = None,
    length: Annotated[Optional[int], Opt(help="Random tokens per copy (default: min(50, (context-1)/2)).")] = None,
    batch: Annotated[int, Opt(help="Random sequences averaged.")] = 4,
    seed: Annotated[int, Opt(help="Seed of the random tokens.")] = 0,
    top: Annotated[int, Opt(help="Heads listed.")] = 10,
    bos: BosOpt = True, demo: DemoOpt = False, json_output: JsonOpt = False, plot: PlotOpt = None,
    html: HtmlOpt = None,
) -> None:
    """Rank heads by induction score on repeated random tokens; find the previous-token heads feeding them."""
    from gptscratch.interpret import analyse_heads, copy_length, find_induction_heads, repeated_random_tokens
    from gptscratch.interpret.demos import ATTENTION_TEXT
    from gptscratch.interpret.plots import Heatmap

    check_plot(plot, html)

    loaded = load_model(checkpoint, checkpoint_option)
    config, tokenizer = loaded.model.config, loaded.tokenizer
    offset = 1 if bos else 0
    length = copy_length(config.context_length, bos, length)
    if batch < 1 or top < 1:
        raise UsageError("--batch and --top must be ≥ 1")
    tokens = repeated_random_tokens(tokenizer.vocab_size, length, batch, seed,
                                    tokenizer.eot_id if bos else None, exclude=(tokenizer.eot_id,))
    report = find_induction_heads(loaded.model, tokens.to(next(loaded.model.parameters()).device), length, offset)
    result = report.to_dict()
    if demo:
        profiles = analyse_heads(loaded.model, text_ids(loaded, ATTENTION_TEXT, bos, demo=True))
        by_name = {p.name: p for p in profiles}
        result["demo_text"] = {"text": ATTENTION_TEXT, "induction_scores": {
            h.name: by_name[h.name].scores["induction"] for h in report.ranked[:top]}}
    if json_output:
        print_json(result)
    else:
        show(markup_table(escape(f"repeated random tokens: {batch} × [{'bos, ' if bos else ''}S, S], |S| = {length}"),
                   ["loss on copy 1", "loss on copy 2", "in-context loss drop"],
                   [[f"{report.loss_first_copy:.3f}", f"{report.loss_second_copy:.3f}", f"{report.loss_drop:.3f}"]]))
        rows = []
        for rank, h in enumerate(report.ranked[:top], 1):
            fed = "; ".join(f"{f.name} (prev {f.previous_token_score:.2f}; ablated → {f.score_after_ablation:.2f})"
                            for f in h.feeders)
            extra = [result["demo_text"]["induction_scores"][h.name]] if demo else []
            rows.append([rank, h.name, styled(f"{h.score:.3f}", "induction" if h.score >= 0.4 else "mixed"),
                         f"{h.previous_token_score:.3f}", *[f"{e:.3f}" for e in extra], fed or "-"])
        show(markup_table("induction score = attention from copy 2 to the token after the earlier occurrence",
                   ["rank", "head", "induction", "prev-token", *(["on demo text"] if demo else []),
                    "fed by (zero-ablated: its induction score)"], rows))
    if plot:
        layers, heads = [str(i) for i in range(config.n_layer)], [str(i) for i in range(config.n_head)]
        save_plot(plot, [Heatmap(report.scores, "induction score", layers, heads, "head", "layer", 0, 1),
                     Heatmap(report.previous_token_scores, "previous-token score", layers, heads, "head", "layer", 0, 1)])
    if html:
        from gptscratch.interpret import attention_patterns
        from gptscratch.views import causal_rows

        best = report.ranked[:3]
        patterns = attention_patterns(loaded.model, tokens[:1].to(next(loaded.model.parameters()).device),
                                      sorted({h.layer for h in best}))
        where = {lay: i for i, lay in enumerate(sorted({h.layer for h in best}))}
        save_page(html, "induction", "induction heads", loaded, {**result, "offset": offset, "patterns": [
            {"name": h.name, "layer": h.layer, "head": h.head,
             "pattern": causal_rows(patterns[where[h.layer], 0, h.head].float().tolist(), 3)} for h in best]})


@app.command("patch")
def patch_command(
    checkpoint: CheckpointArg = None,
    checkpoint_option: CheckpointOpt = None,
    clean: Annotated[Optional[str], Opt(help="Prompt whose answer is right.")] = None,
    corrupted: Annotated[Optional[str], Opt(help="Same length, one detail changed.")] = None,
    target: Annotated[Optional[str], Opt(help="The clean answer (first token used), e.g. ' Mary'.")] = None,
    foil: Annotated[Optional[str], Opt(help="The competing answer (default: the corrupted run's best other token).")] = None,
    top: Annotated[int, Opt(help="Strongest effects listed.")] = 10,
    bos: BosOpt = True, demo: DemoOpt = False, json_output: JsonOpt = False, plot: PlotOpt = None,
) -> None:
    """Activation patching: how much of the clean answer each activation restores (0% corrupted, 100% clean)."""
    from gptscratch.interpret import activation_patching, assess, custom_example, token_label
    from gptscratch.interpret.demos import patch_examples
    from gptscratch.interpret.plots import Heatmap

    check_plot(plot)
    if top < 1:
        raise UsageError(f"--top must be ≥ 1 (got {top})")
    loaded = load_model(checkpoint, checkpoint_option)
    model, tokenizer = loaded.model, loaded.tokenizer
    if demo:
        examples = patch_examples(tokenizer, model.config.context_length, bos)
    else:
        if clean is None or corrupted is None or target is None:
            raise UsageError("patch needs --clean, --corrupted and --target (or --demo for built-in examples)")
        clean_ids = text_ids(loaded, clean, bos, flag="--clean")
        corrupted_ids = text_ids(loaded, corrupted, bos, flag="--corrupted")
        examples = [custom_example(model, tokenizer, clean_ids, corrupted_ids, target, foil)]
    results, maps = [], []
    for example in examples:
        result = activation_patching(model, example.clean, example.corrupted, example.target, example.foil)
        labels = [token_label(tokenizer, t) for t in example.clean]
        record = {"name": example.name, "description": example.description, **result.to_dict(),
                  "token_strings": labels, "target_string": token_label(tokenizer, example.target),
                  "foil_string": token_label(tokenizer, example.foil)}
        record["assessment"] = result.assessment()
        results.append(record)
        maps += [Heatmap(result.resid, f"{example.name}: residual stream", result.resid_labels, labels,
                         "position", "patched activation", diverging=True),
                 Heatmap(result.heads, f"{example.name}: attention heads (hook_z)",
                         [str(i) for i in range(model.config.n_layer)], [str(i) for i in range(model.config.n_head)],
                         "head", "layer", diverging=True)]
        if json_output:
            continue
        if example.description:
            log(f"{example.name}: {example.description}")
        if result.noisy:
            warn(f"{example.name}: the clean and corrupted logit differences are only "
                 f"{abs(result.clean_logit_diff - result.corrupted_logit_diff):.3g} apart, so the percentages "
                 "mostly amplify noise; use prompts whose answers the model actually tells apart")
        show(markup_table("logit(target) − logit(foil), last position",
                   ["target", "foil", "clean", "corrupted"],
                   [[escape(record["target_string"]), escape(record["foil_string"]),
                     f"{result.clean_logit_diff:.3f}", f"{result.corrupted_logit_diff:.3f}"]]))
        rows = [[label, escape(f"{labels[p]}@{p}" if p is not None else "all positions"),
                 styled(percent(v), assess(v)), styled(assess(v), assess(v))] for v, label, p in result.strongest(top)]
        show(markup_table("strongest effects (0% = corrupted, 100% = clean)",
                   ["activation", "position", "recovered", "assessment"], rows))
    if json_output:
        print_json(results if demo else results[0])
    if plot:
        save_plot(plot, maps)


@app.command("train-induction")
def train_induction_command(
    out: Annotated[str, Arg(help="Checkpoint folder to write: new, empty, or a checkpoint to replace.")],
    steps: Annotated[int, Opt(help="Most training steps (cosine schedule over this many).")] = 1500,
    seed: Annotated[int, Opt(help="Seed of the weights and of the data.")] = 0,
    stop_below: Annotated[Optional[float], Opt(help="Stop once the held-out second-copy loss (nats) is below this.",
                                               show_default=False)] = None,
    json_output: JsonOpt = False,
) -> None:
    """Train the textbook induction circuit: a 2-layer attention-only GPT that copies from its context (CPU, <1 min)."""
    import torch

    from gptscratch.checkpoint import check_checkpoint_target
    from gptscratch.cli.render import progress_callback
    from gptscratch.interpret.toy import ToyInductionSetup, save_induction_model, train_induction_model

    if steps < 1 or (stop_below is not None and stop_below <= 0):
        raise UsageError("--steps must be ≥ 1 and --stop-below > 0")
    check_checkpoint_target(out)  # before training: a run folder or a file there is never replaced
    setup = ToyInductionSetup(steps=steps, seed=seed, stop_below=stop_below)
    if announce_device() != "cpu":
        log("train-induction runs on the CPU (a 60k-parameter model: a GPU would not be faster)")
    torch.set_num_threads(1)    # measured on one core; more threads do not help a model this small
    with progress_callback("training the induction circuit") as progress:
        result = train_induction_model(setup, progress=progress)
    path = save_induction_model(out, result)
    summary = {"checkpoint": str(path), "steps": result.steps, "seconds": round(result.seconds, 1),
               "probe_first_copy": result.final["probe_first_copy"],
               "probe_second_copy": result.final["probe_second_copy"], "curve": result.curve}
    if json_output:
        print_json(summary)
        return
    show(markup_table("loss on held-out [bos] S S (|S| = 10): the second copy falls when the circuit forms",
               ["step", "train copy loss", "copy 1", "copy 2", "seconds"],
               [[p["step"], f"{p['copy_loss']:.3f}", f"{p['probe_first_copy']:.3f}",
                 f"{p['probe_second_copy']:.3f}", f"{p['seconds']:.0f}"] for p in result.curve]))
    log(f"saved {path}; next: gptscratch interpret induction-heads {escape(str(out))} --length 10")
