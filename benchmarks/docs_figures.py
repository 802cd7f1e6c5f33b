"""The docs' pictures, one generator each (registered with benchmarks/docs_assets.py, which documents the rules).

Every generator reads real results: the quick preset trained for QUICK_STEPS steps (its curves, heads, logit
lens, learned positions and next-token distribution), the lesson 10 over-fitting run, the toy induction circuit,
and measured decoding speeds. The equivalent command line is in each picture's title or caption, so a reader can
reproduce it (`--no-accel --precision fp32`: the settings the figures are measured with).
"""

from __future__ import annotations

import random
from dataclasses import replace

from docs_assets import DPI, Context, generator

QUICK_STEPS = 200
# quick_run() as a command line (the lessons' captions quote it; OMP_NUM_THREADS=1 gives the one thread):
QUICK_COMMAND = (f"gptscratch --no-accel train --preset quick --max-steps {QUICK_STEPS} --max-time 1h --precision fp32 "
                 "--eval-every 25 --eval-batches 8 --log-every 5 --sample-tokens 0")
QUICK_TITLE = f"train --preset quick --max-steps {QUICK_STEPS} --precision fp32"
ATTENTION_TEXT = "return the value"                # short enough to read every cell of the heatmap
LENS_TEXT, LENS_TARGET = "the return statement returns the valu", "e"     # lesson 13's logit-lens example
OVERFIT_WORDS = "alpha beta gamma delta kappa sigma omega tensor vector matrix token layer".split()


# -- shared runs (built once per script run, only when a generator asks) -----------------------------------------

def quick_run(ctx: Context):
    """The quick preset, a fixed number of steps, fp32, evaluated every 25 steps (for the curve)."""
    def build():
        from gptscratch.training import preset_config, train

        config = preset_config("quick", max_steps=QUICK_STEPS, precision="fp32", eval_every=25, eval_batches=8,
                               log_every=5, sample_tokens=0)
        return train(replace(config, max_time=None), run_dir=ctx.work / "quick")
    return ctx.cached("quick run", build)


def toy_induction(ctx: Context):
    """The textbook induction circuit (`interpret train-induction --stop-below 0.15`), trained once per script run."""
    def build():
        from gptscratch.interpret.toy import ToyInductionSetup, train_induction_model

        return train_induction_model(ToyInductionSetup(stop_below=0.15))
    return ctx.cached("toy induction model", build)


def quick_model(ctx: Context):
    def build():
        from gptscratch.checkpoint import load_checkpoint

        return load_checkpoint(quick_run(ctx).run_dir)
    return ctx.cached("quick model", build)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path) -> None:
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=DPI)
    _pyplot().close(figure)


def _short(machine: str) -> str:
    name, _, details = machine.partition(" (")
    return f"{name}, {details.split(';')[0].rstrip(')')}"


# -- training --------------------------------------------------------------------------------------------------

@generator("training_curves", "training-curves.png")
def training_curves(ctx: Context) -> dict:
    """Loss and learning-rate curves of the quick preset (lessons 9 and 10)."""
    from gptscratch.training.runs import curves, plot_png

    result = quick_run(ctx)
    series = curves(result.run_dir)
    plot_png(series, ctx.image("training-curves.png"),
             f"{QUICK_TITLE}\n{_short(ctx.machine)}")
    return {"quick_steps": result.step, "quick_initial_loss": series["train loss"][0][1],
            "quick_val_loss": result.val_loss, "quick_peak_lr": max(v for _, v in series["lr"]),
            "quick_tokens_per_second": result.tokens_per_second, "quick_seconds": result.elapsed}


@generator("overfitting", "overfitting.png")
def overfitting(ctx: Context) -> dict:
    """Lesson 10's over-fitting experiment: train and validation curves part."""
    from gptscratch.training import preset_config, train
    from gptscratch.training.runs import curves, plot_png

    random.seed(0)                                    # the corpus lesson 10's Python block writes
    corpus = ctx.work / "small-corpus"
    corpus.mkdir(exist_ok=True)
    for i in range(10):
        text = " ".join(random.choice(OVERFIT_WORDS) for _ in range(40)) + ".\n"
        (corpus / f"doc{i:02d}.txt").write_text(text, encoding="utf-8")
    config = preset_config(None, data=str(corpus), size="mini", model={"context_length": 32}, batch_size=16,
                           lr=3e-3, max_steps=600, eval_every=50, eval_batches=2, precision="fp32", sample_tokens=0)
    result = train(config, run_dir=ctx.work / "overfit")
    series = curves(result.run_dir)
    plot_png(series, ctx.image("overfitting.png"), "lesson 10: --data small-corpus --size mini --context-length 32 "
             f"--batch-size 16 --lr 3e-3 --max-steps 600\n{_short(ctx.machine)}")
    best_step, best = min(series["val loss"], key=lambda point: point[1])
    last_train = [v for s, v in series["train loss"] if s > 550]
    return {"overfit_val_min": best, "overfit_val_min_step": best_step, "overfit_val_final": series["val loss"][-1][1],
            "overfit_train_final": sum(last_train) / len(last_train), "overfit_seconds": result.elapsed}


# -- attention and interpretability ------------------------------------------------------------------------------

@generator("attention_heads", "attention-heads.png")
def attention_heads(ctx: Context) -> dict:
    """Two heads of the trained quick model: the most previous-token one and the most first-token one."""
    from gptscratch.interpret import analyse_heads, attention_patterns, encode_text, token_label
    from gptscratch.interpret.plots import Heatmap, save_heatmaps

    loaded = quick_model(ctx)
    ids = encode_text(loaded.tokenizer, ATTENTION_TEXT)
    profiles = analyse_heads(loaded.model, ids)
    patterns = attention_patterns(loaded.model, ids)[:, 0].float()          # (L, nh, T, T)
    labels = ["bos", *(token_label(loaded.tokenizer, t) for t in ids[1:])]
    chosen = {kind: max(profiles, key=lambda p: p.shares[kind] or 0.0) for kind in ("previous_token", "first_token")}
    where = {"previous_token": "the previous byte", "first_token": "the first position"}
    maps = [Heatmap(patterns[p.layer, p.head].tolist(),
                    f"{p.name}: {p.shares[kind]:.2f} of its weight on {where[kind]}", labels, labels,
                    "key (attended to)", "query", 0, 1) for kind, p in chosen.items()]
    save_heatmaps(ctx.image("attention-heads.png"), maps,
                  f'quick preset after {QUICK_STEPS} steps: "{ATTENTION_TEXT}"')
    T = len(ids)
    uniform = sum(1 / (i + 1) for i in range(1, T)) / (T - 1)   # weight on one key when attention is uniform
    prev, first = chosen["previous_token"], chosen["first_token"]
    return {"attention_previous_token_head": prev.name, "attention_previous_token_share": prev.shares["previous_token"],
            "attention_first_token_head": first.name, "attention_first_token_share": first.shares["first_token"],
            "attention_uniform_share": uniform}


@generator("logit_lens", "logit-lens.png")
def logit_lens_grid(ctx: Context) -> dict:
    """The logit lens on the quick model: each layer's guess for the next byte, and its probability."""
    from gptscratch.interpret import encode_text, logit_lens, token_label
    from gptscratch.interpret.plots import Heatmap, save_heatmaps

    loaded = quick_model(ctx)
    ids = encode_text(loaded.tokenizer, LENS_TEXT)
    target = loaded.tokenizer.encode(LENS_TARGET)[0]
    lens = logit_lens(loaded.model, ids, k=1, target=target, vocab_limit=loaded.tokenizer.vocab_size)
    labels = ["bos", *(token_label(loaded.tokenizer, t) for t in ids[1:])]
    eot = loaded.tokenizer.eot_id
    guesses = [["eot" if top[0] == eot else token_label(loaded.tokenizer, top[0]) for top in layer]
               for layer in lens.top_ids]
    save_heatmaps(ctx.image("logit-lens.png"), [Heatmap(
        lens.target_prob, "probability of the correct next byte (text: each layer's top guess)", lens.labels,
        labels, "input byte (position)", "read after", 0, 1, annotations=guesses)])
    mean = lambda row: sum(p for p in row if p is not None) / sum(p is not None for p in row)  # noqa: E731
    return {f"lens_mean_prob_{label}": mean(row) for label, row in zip(lens.labels, lens.target_prob)} | {
        "lens_final_target_prob": lens.target_prob[-1][-1]}


@generator("induction_circuit", "induction-phase-change.png", "induction-heads.png")
def induction_circuit(ctx: Context) -> dict:
    """The toy 2-layer attention-only model: its phase change, its previous-token and induction heads."""
    from gptscratch.interpret import find_induction_heads, repeated_random_tokens, run_with_cache
    from gptscratch.interpret.plots import Heatmap, save_heatmaps

    result = toy_induction(ctx)
    setup = result.setup
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 3.5))
    steps = [p["step"] for p in result.curve]
    for key, label in (("probe_first_copy", "first copy (unpredictable)"),
                       ("probe_second_copy", "second copy (predictable by copying)")):
        axis.plot(steps, [p[key] for p in result.curve], "o-", markersize=3, label=label)
    axis.set(xlabel="step", ylabel="loss (nats)", title="gptscratch interpret train-induction --stop-below 0.15")
    axis.legend()
    axis.grid(alpha=0.3)
    _save(figure, ctx.image("induction-phase-change.png"))

    length = 10
    tokens = repeated_random_tokens(setup.vocab_size, length, 4, 0, setup.bos_id, exclude=(setup.bos_id,))
    report = find_induction_heads(result.model, tokens, length, 1)
    top = report.ranked[0]
    feeder = top.feeders[0] if top.feeders else None
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(2)]
    _, cache = run_with_cache(result.model, tokens[:1], names)
    labels = ["bos", *(str(t) for t in tokens[0, 1:].tolist())]
    shown = [(feeder.layer, feeder.head, "previous-token head")] if feeder else []
    shown.append((top.layer, top.head, "induction head"))
    maps = [Heatmap(cache[names[layer]][0, head].float().tolist(), f"L{layer}H{head}: {what}", labels, labels,
                    "key", "query", 0, 1) for layer, head, what in shown]
    save_heatmaps(ctx.image("induction-heads.png"), maps, "[bos] S S, |S| = 10 (token ids)")
    values = {"toy_steps": result.steps, "toy_seconds": result.seconds, "toy_induction_head": top.name,
              "toy_induction_score": top.score, "toy_second_copy_loss": result.final["probe_second_copy"],
              "toy_copy_loss_drop": report.loss_drop}
    if feeder:
        values |= {"toy_previous_token_head": feeder.name, "toy_previous_token_score": feeder.previous_token_score}
    return values


# -- positions ---------------------------------------------------------------------------------------------------

@generator("positions", "positions-sinusoidal.png", "positions-rope.png")
def positions(ctx: Context) -> dict:
    """The sinusoidal table and RoPE's rotation: both make q·k depend on the distance between positions."""
    import torch

    from gptscratch.model.embeddings import RotaryEmbedding, SinusoidalPositions
    from gptscratch.model.kernels import rotate

    plt = _pyplot()
    table = SinusoidalPositions(128)(torch.arange(64))                     # the quick model's width and context
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), width_ratios=[3, 2])
    image = left.imshow(table.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=left, fraction=0.046, pad=0.04)
    left.set(title="SinusoidalPositions(128): P[t, 2i] = sin, P[t, 2i+1] = cos", xlabel="dimension",
             ylabel="position t")
    distances = torch.arange(0, 33)
    for start in (0, 20):
        dots = (table[start] * table[start + distances]).sum(-1)
        right.plot(distances, dots, "o-" if start == 0 else "x--", markersize=3, label=f"P[{start}] · P[{start} + d]")
    right.set(title="dot product: depends on d only", xlabel="distance d", ylabel="P[t] · P[t + d]")
    right.legend()
    right.grid(alpha=0.3)
    _save(figure, ctx.image("positions-sinusoidal.png"))

    rope, dims = RotaryEmbedding(rotary_dims=32), 32                        # the quick model's head size
    cos, _ = rope(torch.arange(64), torch.float32)                          # (64, 16)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), width_ratios=[3, 2])
    image = left.imshow(cos.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=left, fraction=0.046, pad=0.04)
    left.set(title="RotaryEmbedding(32): cos(t·θ_i), θ_i = 10000^(−2i/32)", xlabel="pair i", ylabel="position t")
    q = torch.ones(1, 1, 1, dims)                                           # q = k = 1: the classic decay plot
    shift = {}
    for query_pos, style in ((200, "o-"), (600, "x--")):
        keys = torch.arange(query_pos, query_pos - 200, -1)
        rq = rotate(q, *rope(torch.tensor([query_pos]), torch.float32))
        rk = rotate(q.expand(1, 1, len(keys), dims), *rope(keys, torch.float32))
        shift[query_pos] = (rq * rk).sum(-1)[0, 0]
        right.plot(range(200), shift[query_pos], style, markersize=2, label=f"query at {query_pos}")
    right.set(title="q·k after rotation (q = k = 1)", xlabel="distance to the key", ylabel="score")
    right.legend()
    right.grid(alpha=0.3)
    _save(figure, ctx.image("positions-rope.png"))
    return {"rope_shift_difference": float((shift[200] - shift[600]).abs().max()),
            "rope_score_distance_0": float(shift[200][0]), "rope_score_distance_100": float(shift[200][100])}


@generator("learned_positions", "positions-learned.png")
def learned_positions(ctx: Context) -> dict:
    """The quick model's learned position table after training: neighbours end up alike."""
    import torch

    table = quick_model(ctx).model.pos_embed.table.weight.detach().float()     # (64, 128)
    unit = torch.nn.functional.normalize(table, dim=-1)
    similarity = unit @ unit.T
    T = similarity.size(0)
    by_distance = [similarity.diagonal(d).mean().item() for d in range(T)]
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), width_ratios=[3, 2])
    image = left.imshow(similarity.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=left, fraction=0.046, pad=0.04)
    left.set(title=f"cosine similarity of P[t] and P[s] after {QUICK_STEPS} steps", xlabel="position s",
             ylabel="position t")
    right.plot(range(1, T), by_distance[1:], "o-", markersize=3)
    right.set(title="mean similarity vs distance", xlabel="distance |s − t|", ylabel="cosine similarity")
    right.grid(alpha=0.3)
    _save(figure, ctx.image("positions-learned.png"))
    return {"learned_cosine_distance_1": by_distance[1],
            "learned_cosine_distance_32_plus": sum(by_distance[32:]) / len(by_distance[32:])}


# -- generation --------------------------------------------------------------------------------------------------

@generator("sampling_temperature", "sampling-temperature.png")
def sampling_temperature(ctx: Context) -> dict:
    """The quick model's next-byte distribution after "The ", at three temperatures."""
    import torch

    from gptscratch.interpret import token_label

    loaded = quick_model(ctx)
    ids = torch.tensor([loaded.tokenizer.encode("The ")])
    with torch.no_grad():
        logits = loaded.model(ids)[0][0, -1, : loaded.tokenizer.vocab_size].float()
    order = logits.argsort(descending=True)[:12]
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 3.5))
    values = {}
    for offset, tau in ((-0.27, 0.5), (0.0, 1.0), (0.27, 2.0)):
        probs = torch.softmax(logits / tau, -1)
        values[f"sampling_top1_prob_t{tau:g}"] = probs[order[0]].item()
        axis.bar([i + offset for i in range(len(order))], probs[order].numpy(), width=0.27, label=f"τ = {tau:g}")
    axis.set_xticks(range(len(order)), [token_label(loaded.tokenizer, t) for t in order.tolist()])
    axis.set(title='p(next byte | "The ") = softmax(z / τ), the 12 most likely bytes', ylabel="probability")
    axis.legend()
    _save(figure, ctx.image("sampling-temperature.png"))
    return values


@generator("kv_cache_speed", "kv-cache-speed.png")
def kv_cache_speed(ctx: Context) -> dict:
    """Tokens per second with and without the KV cache, by number of new tokens (measured)."""
    import statistics

    import torch

    from gptscratch.evaluation.bench import time_decoding
    from gptscratch.model import GPT, ModelConfig

    torch.manual_seed(0)    # speed does not depend on the weights: the quick shape, untrained, context 256
    model = GPT(ModelConfig(vocab_size=320, context_length=256, n_layer=4, n_head=4, d_model=128)).eval()
    prompt = torch.randint(0, 257, (16,), generator=torch.Generator().manual_seed(1)).tolist()
    lengths, modes = [16, 32, 64, 128, 240], {"cached": True, "uncached": False}
    for cached in modes.values():
        time_decoding(model, prompt, 8, cached)                            # warm-up: first calls are slow
    seconds = {(n, mode): [] for n in lengths for mode in modes}
    for _ in range(5):         # interleaved, then medians: a busy machine's drift hits every point alike
        for n in lengths:
            for mode, cached in modes.items():
                seconds[n, mode].append(sum(time_decoding(model, prompt, n, cached)))
    rate = {key: key[0] / statistics.median(values) for key, values in seconds.items()}
    speedup = {n: rate[n, "cached"] / rate[n, "uncached"] for n in lengths}
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 3.8))
    for mode, label in (("cached", "with the KV cache"), ("uncached", "without (full forward every token)")):
        axis.plot(lengths, [rate[n, mode] for n in lengths], "o-", label=label)
    for n in lengths:
        axis.annotate(f"{speedup[n]:.1f}×", (n, rate[n, "cached"]), textcoords="offset points", xytext=(0, 6),
                      ha="center", fontsize=8)
    axis.set(xscale="log", xlabel="new tokens (after a 16-token prompt)", ylabel="tokens / s",
             title=f"greedy decoding, 4×128 model, context 256, fp32, 1 thread\n{_short(ctx.machine)}")
    axis.set_xticks(lengths, [str(n) for n in lengths])
    axis.xaxis.set_minor_formatter(plt.NullFormatter())
    axis.set_ylim(0, 1.15 * max(rate[n, "cached"] for n in lengths))
    axis.legend(loc="lower left")
    axis.grid(alpha=0.3)
    _save(figure, ctx.image("kv-cache-speed.png"))
    return {f"kv_speedup_{n}": speedup[n] for n in lengths} | {
        f"kv_{mode}_tokens_per_second_240": rate[240, mode] for mode in modes}
