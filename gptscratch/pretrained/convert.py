"""Hugging Face folder → gptscratch checkpoint, one tensor at a time.

    1. config.json → architecture (gpt2 / phi; anything else is refused naming what is supported) → ModelConfig
    2. the expected shape of every tensor of our model, from a GPT built on the meta device (no memory)
    3. before reading any data: every HF tensor the table needs exists, nothing unknown is left over
       (buffers excepted) and every shape, after transposes and q|k|v stacking, matches — or a loud error
    4. stream: read one HF tensor (lazily, from the memory-mapped file), transform, cast to --dtype, append it to
       the new model.safetensors, drop it. Peak RAM ≈ the memory-mapped input, never a second copy.
    5. the tokenizer files are copied into the checkpoint (tokenizer/), which is swapped in atomically.

dtype "auto" keeps the source precision, except float16 → bfloat16 (same size; float16 matmuls are ~100×
slower on CPUs and overflow when fine-tuning). Tied weights stay tied: GPT-2's head is its embedding, stored once.
"""

from __future__ import annotations

import json
from pathlib import Path

from gptscratch.errors import CheckpointError, UsageError

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


def _source_shape(source, names: dict[str, str], rule) -> tuple[int, ...]:
    shapes = [source.shape(names[t]) for t in rule.theirs]
    shape = list(shapes[0])
    if len(shapes) > 1:  # q|k|v stacked along the output dimension
        shape[0] = sum(s[0] for s in shapes)
    return tuple(reversed(shape)) if rule.transpose else tuple(shape)


def convert_hf_folder(hf_dir, out_dir, dtype: str = "auto", progress=None, source: str | None = None) -> Path:
    """Convert a local GPT-2 or Phi model folder into a gptscratch checkpoint folder at out_dir."""
    import torch

    from gptscratch.checkpoint import FORMAT, write_checkpoint
    from gptscratch.model import GPT
    from gptscratch.tokenizers.hf_bpe import HfBpeTokenizer, looks_like_hf_bpe

    from .architectures import architecture_for
    from .tensorfile import TensorFileWriter, TensorSource

    hf_dir = Path(hf_dir).expanduser()
    hf_config = read_hf_config(hf_dir)
    arch = architecture_for(hf_config, str(hf_dir))
    try:
        config = arch.to_config(hf_config)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{hf_dir / 'config.json'} is not a valid {arch.name} config ({exc})") from None
    if not looks_like_hf_bpe(hf_dir):
        raise UsageError(f"{hf_dir} has no vocab.json + merges.txt; the tokenizer files must sit next to the "
                         "weights (download them from the model's repo)")
    tokenizer = HfBpeTokenizer(hf_dir)
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
    unknown = sorted(n for n in names if n not in used and not arch.ignored(n))
    if unknown:
        raise CheckpointError(f"{hf_dir} has {len(unknown)} tensors a {arch.name} model does not have (first: "
                              f"{unknown[0]}); the architecture differs from what gptscratch models")
    for rule in rules:
        found = _source_shape(tensors, names, rule)
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
                            "dtype": str(target).removeprefix("torch."), "hf_config": hf_config}}
    return write_checkpoint(out_dir, config.to_dict(), tokenizer.spec(), write_weights, extra=extra)


def install(name: str, dtype: str = "auto", progress=None, force: bool = False) -> Path:
    """Download a registry model (only the needed files) and convert it into pretrained_root()/name."""
    from .hub import download_model
    from .registry import converted_path, get_model, is_converted

    model = get_model(name)
    check_dtype(dtype)
    if is_converted(name) and not force:
        return converted_path(name)
    folder = download_model(model.repo_id, revision=model.revision, progress=progress)
    if progress:
        progress({"message": f"converting {name} into {converted_path(name)}", "completed": 0, "total": None})
    return convert_hf_folder(folder, converted_path(name), dtype=dtype, progress=progress,
                             source=f"hf://{model.repo_id}@{model.revision}")
