"""Hugging Face folder → gptscratch checkpoint, one tensor at a time.

    1. config.json → architecture (architectures.py; anything else is refused naming what is supported) →
       ModelConfig, its context capped (below)
    2. the expected shape of every tensor of our model, from a GPT built on the meta device (no memory)
    3. before reading any data: every HF tensor the table needs exists, nothing unknown is left over
       (buffers excepted) and every shape, after transposes and q|k|v stacking, matches — or a loud error
    4. stream: read one HF tensor (lazily, from the memory-mapped file), transform, cast to --dtype, append it to
       the new model.safetensors, drop it. Peak RAM ≈ the memory-mapped input, never a second copy.
    5. the tokenizer files are copied into the checkpoint (tokenizer/), which is swapped in atomically: the
       architecture says which kind its repos ship — vocab.json + merges.txt ("hf-bpe": GPT-2, Phi) or
       tokenizer.json ("hf-json": Llama, SmolLM2, Qwen), read by gptscratch/tokenizers/.

dtype "auto" keeps the source precision, except float16 → bfloat16 (same size; float16 matmuls are ~100×
slower on CPUs and overflow when fine-tuning). Tied weights stay tied: the head is the embedding, stored once (a
file that stores a tied head anyway has it ignored, as transformers does).

Context: a rotary model's context_length is only a limit — nothing is sized by it in the weights — but the KV
cache generation preallocates, evaluation windows and fine-tuning windows are. Qwen2.5 says 32,768 and Llama 3.1
131,072: a 0.5B Qwen's cache would take 0.8 GB in fp32 before the first token. So a conversion records at most
`CONVERTED_CONTEXT` (8,192, SmolLM2's own and Llama 3's pre-training length) unless `context` asks for more (up to
the model's max_position_embeddings, which stays recorded in the checkpoint's "pretrained" section and is what an
export writes back). Positions below the cap compute exactly as before: the rotary frequencies, llama3 scaling
included, do not depend on it. A learned position table (GPT-2) is a weight, so its length is kept.
"""

from __future__ import annotations

import json
from pathlib import Path

from gptscratch.errors import CheckpointError, UsageError

from .registry import CONVERTED_CONTEXT
from .tensor_rules import stacked_widths

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


def check_dtype(requested: str) -> None:
    """UsageError for a --dtype that is none of DTYPE_CHOICES (or their short forms): checked before any download."""
    if requested != "auto" and requested not in DTYPES:
        raise UsageError(f"unknown dtype {requested!r}; choose one of {', '.join(DTYPE_CHOICES)}")


def resolve_dtype(requested: str, source_code: str):
    """A torch dtype from 'auto' / 'float32' / 'bf16' ... and the source's safetensors dtype code."""
    import torch

    check_dtype(requested)
    if requested == "auto":
        name = {"F32": "float32", "F16": "bfloat16", "BF16": "bfloat16"}.get(source_code, "float32")
    else:
        name = DTYPES[requested]
    return getattr(torch, name)


def read_hf_config(hf_dir: Path) -> dict:
    if not hf_dir.is_dir():
        raise UsageError(f"{hf_dir} is not a folder; pass a Hugging Face model folder (config.json + safetensors)")
    try:
        return json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{hf_dir} has no config.json; pass a Hugging Face model folder") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {hf_dir / 'config.json'} ({exc}); re-download the model") from None


def default_target(hf_dir) -> Path:
    """Where a converted folder goes when no destination is given: the pretrained cache, under the source
    folder's own name (so `--checkpoint NAME` finds it like a downloaded model)."""
    from gptscratch.paths import pretrained_root

    return pretrained_root() / Path(hf_dir).resolve().name


def _source_shape(source, names: dict[str, str], rule, config) -> tuple[int, ...]:
    """The shape a rule produces from the HF tensors (after stacking and transposing), or a CheckpointError when
    one part of a q|k|v stack has the wrong width."""
    shapes = [source.shape(names[t]) for t in rule.theirs]
    shape = list(shapes[0])
    if len(shapes) > 1:  # q|k|v stacked along the output dimension
        for name, part, width in zip(rule.theirs, shapes, stacked_widths(config, len(shapes))):
            if part[0] != width:
                raise CheckpointError(f"shape mismatch: {name} has {part[0]} rows but {rule.ours} needs {width} "
                                      "there; config.json does not describe these weights (check "
                                      "num_key_value_heads)")
        shape[0] = sum(s[0] for s in shapes)
    return tuple(reversed(shape)) if rule.transpose else tuple(shape)


def choose_context(config, requested: int | None, progress=None):
    """config with the context a conversion records (module docstring): `requested`, or the source's capped at
    CONVERTED_CONTEXT; a learned position table keeps its length."""
    source = config.context_length
    if config.positional == "learned":
        if requested not in (None, source):
            raise UsageError(f"this model has a learned table of {source} positions; --context cannot change it "
                             "(leave it out)")
        return config
    if requested is not None and not 1 <= requested <= source:
        raise UsageError(f"--context must be in 1..{source}, the model's max_position_embeddings")
    context = requested or min(source, CONVERTED_CONTEXT)
    if context < source and requested is None and progress:
        progress({"message": f"context capped at {context} of the model's {source} tokens (the KV cache is sized by "
                             f"it); pass --context {source} to keep all", "completed": 0, "total": None})
    return config.replace(context_length=context)


def source_tokenizer(kind: str, hf_dir: Path):
    """The tokenizer of a model folder, of the kind its architecture ships (tensor_rules.Architecture.tokenizer)."""
    from gptscratch.tokenizers.files import HF_JSON

    if kind == HF_JSON:
        from gptscratch.tokenizers.hf_json import HfJsonTokenizer, looks_like_hf_json

        if not looks_like_hf_json(hf_dir):
            raise UsageError(f"{hf_dir} has no tokenizer.json; the tokenizer files (tokenizer.json, "
                             "tokenizer_config.json) must sit next to the weights (download them from the model's repo)")
        return HfJsonTokenizer(hf_dir)
    from gptscratch.tokenizers.hf_bpe import HfBpeTokenizer, looks_like_hf_bpe

    if not looks_like_hf_bpe(hf_dir):
        raise UsageError(f"{hf_dir} has no vocab.json + merges.txt; the tokenizer files must sit next to the "
                         "weights (download them from the model's repo)")
    return HfBpeTokenizer(hf_dir)


def convert_hf_folder(hf_dir, out_dir, dtype: str = "auto", progress=None, source: str | None = None,
                      context: int | None = None) -> Path:
    """Convert a local model folder of a supported architecture (architectures.py) into a gptscratch checkpoint
    folder at out_dir. context: the context length to record (module docstring; default: capped)."""
    import torch

    from gptscratch.checkpoint import FORMAT, write_checkpoint
    from gptscratch.model import GPT

    from .architectures import architecture_for
    from .tensorfile import TensorFileWriter, TensorSource

    hf_dir = Path(hf_dir).expanduser()
    hf_config = read_hf_config(hf_dir)
    arch = architecture_for(hf_config, str(hf_dir))
    try:
        config = arch.to_config(hf_config)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{hf_dir / 'config.json'} is not a valid {arch.name} config ({exc})") from None
    config = choose_context(config, context, progress)
    tokenizer = source_tokenizer(arch.tokenizer, hf_dir)
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(f"the tokenizer has {tokenizer.vocab_size} ids but the model only "
                              f"{config.vocab_size}; the tokenizer files belong to another model")

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in GPT(config).state_dict().items()}
    if config.tie_weights:
        expected.pop("lm_head.weight")
    rules = arch.expanded_rules(config)
    assert {r.ours for r in rules} == set(expected), "conversion table out of date with the model"

    tensors = TensorSource(hf_dir)
    prefix = arch.strip_prefix
    names = {(k[len(prefix):] if prefix and k.startswith(prefix) else k): k for k in tensors.keys()}
    missing = [t for r in rules for t in r.theirs if t not in names]
    if missing:
        raise CheckpointError(f"{hf_dir} lacks {len(missing)} tensors of a {arch.name} model (first: "
                              f"{missing[0]}); the download is incomplete or the folder holds another model")
    used = {t for r in rules for t in r.theirs}
    tied_copy = {"lm_head.weight"} if config.tie_weights else set()  # a tied head stored anyway: the embedding
    unknown = sorted(n for n in names if n not in used | tied_copy and not arch.ignored(n))
    if unknown:
        raise CheckpointError(f"{hf_dir} has {len(unknown)} tensors a {arch.name} model does not have (first: "
                              f"{unknown[0]}); the architecture differs from what gptscratch models")
    for rule in rules:
        found = _source_shape(tensors, names, rule, config)
        if found != expected[rule.ours]:
            raise CheckpointError(f"shape mismatch: {' + '.join(rule.theirs)} gives {found} but {rule.ours} needs "
                                  f"{expected[rule.ours]}; config.json does not describe these weights")
    target = resolve_dtype(dtype, tensors.dtype(names[rules[0].theirs[0]]))

    def write_weights(path: Path) -> None:
        entries = [(r.ours, expected[r.ours], target) for r in rules]
        with TensorFileWriter(path, entries, metadata={"format": FORMAT}) as writer:
            for done, rule in enumerate(rules, 1):
                parts = [tensors.get(names[t]) for t in rule.theirs]
                tensor = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
                if rule.transpose:  # Conv1D [in, out] → Linear [out, in]
                    tensor = tensor.t()
                writer.write(rule.ours, tensor.to(target))
                del parts, tensor
                if progress:
                    progress({"completed": done, "total": len(rules), "unit": "tensors"})

    extra = {"pretrained": {"source": source or str(hf_dir.resolve()), "architecture": arch.name,
                            "dtype": str(target).removeprefix("torch."), "hf_config": hf_config,
                            "generation_config": _generation_config(hf_dir)}}
    return write_checkpoint(out_dir, config.to_dict(), tokenizer.spec(), write_weights, extra=extra)


def _generation_config(hf_dir: Path) -> dict | None:
    """The folder's generation_config.json (stop ids, sampling defaults), kept so an export can write it back."""
    try:
        value = json.loads((hf_dir / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def install(name: str, dtype: str = "auto", progress=None, force: bool = False, context: int | None = None) -> Path:
    """Download a registry model (only the needed files) and convert it into pretrained_root()/name."""
    from .architectures import ARCHITECTURES
    from .hub import download_model
    from .registry import converted_path, get_model, is_converted

    model = get_model(name)
    check_dtype(dtype)
    if is_converted(name) and not force:
        return converted_path(name)
    folder = download_model(model.repo_id, revision=model.revision, progress=progress,
                            tokenizer_kind=ARCHITECTURES[model.architecture].tokenizer)
    if progress:
        progress({"message": f"converting {name} into {converted_path(name)}", "completed": 0, "total": None})
    return convert_hf_folder(folder, converted_path(name), dtype=dtype, progress=progress,
                             source=f"hf://{model.repo_id}@{model.revision}", context=context)
