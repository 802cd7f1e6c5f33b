"""`gptscratch pretrained`: list, download, convert and export GPT-2, Phi, Llama/SmolLM2 and Qwen weights (library:
gptscratch.pretrained)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gptscratch.cli.render import format_number, log, print_json, progress_callback, show, table
from gptscratch.errors import UsageError

app = typer.Typer(help="Pretrained GPT-2, Phi-2, SmolLM2, Qwen2.5 and TinyLlama weights in the from-scratch model, "
                       "and export to Hugging Face or GGUF (llama.cpp, Ollama).", no_args_is_help=True)
Opt, Arg = typer.Option, typer.Argument
DTYPE_HELP = "Stored precision: auto (source precision, float16 → bfloat16), float32, bfloat16 or float16."
CONTEXT_HELP = ("Context length to record, up to the model's own (default: at most 8192; the KV cache and "
                "evaluation windows are sized by it).")


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 1e9:.2f} GB" if num_bytes >= 1e9 else f"{num_bytes / 1e6:.0f} MB"


@app.command("list")
def list_models(json_output: Annotated[bool, Opt("--json", help="Print JSON instead of a table.")] = False) -> None:
    """The supported models, their size and licence, and whether they are downloaded."""
    from gptscratch.pretrained.registry import list_models as rows

    models = rows()
    if json_output:
        print_json(models)
        return
    show(table("pretrained models", ["name", "parameters", "download", "dtype", "context", "license",
                                     "memory (bf16)", "ready"],
               [[m["name"], f"{m['parameters'] / 1e6:,.0f}M", _size(m["download_bytes"]), m["source_dtype"],
                 _context(m), m["license"], f"{m['memory_gb']['generate_bf16']} GB",
                 "yes" if m["converted"] else "-"] for m in models]))
    log("download one with `gptscratch pretrained download gpt2`, then `gptscratch generate --checkpoint gpt2`")


def _context(model: dict) -> str:
    """The context a conversion records, and the model's own when that is longer (e.g. "8,192 of 32,768")."""
    used, own = model["converted_context"], model["context_length"]
    return format_number(used) if used == own else f"{format_number(used)} of {format_number(own)}"


def _report(path: Path, json_output: bool, **extra) -> None:
    if json_output:
        print_json({"path": str(path), **extra})
    else:
        typer.echo(str(path))


@app.command()
def download(
    name: Annotated[str, Arg(help="A model from `gptscratch pretrained list`, e.g. gpt2.")],
    dtype: Annotated[str, Opt(help=DTYPE_HELP)] = "auto",
    context: Annotated[Optional[int], Opt("--context", help=CONTEXT_HELP)] = None,
    force: Annotated[bool, Opt("--force", help="Convert again even if already converted.")] = False,
    json_output: Annotated[bool, Opt("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fetch the model's safetensors, config and tokenizer from the Hugging Face Hub, then convert it.

    Honours HF_TOKEN, HF_HOME / HF_HUB_CACHE and HF_HUB_OFFLINE; a dropped connection resumes, and after a
    failure running it again fetches only the files still missing."""
    from gptscratch.pretrained.convert import check_dtype, install
    from gptscratch.pretrained.registry import get_model, is_converted

    model = get_model(name)
    check_dtype(dtype)  # before any download
    if is_converted(name) and not force:
        log(f"{name} is already converted (use --force to redo it)")
    else:
        log(f"downloading {model.repo_id} (~{_size(model.download_bytes)}) and converting")
    with progress_callback(f"{name}") as progress:
        path = install(name, dtype=dtype, progress=progress, force=force, context=context)
    log(f"ready: gptscratch generate --checkpoint {name} --prompt \"Hello\"")
    _report(path, json_output, name=name)


@app.command()
def convert(
    hf_dir: Annotated[Path, Arg(help="Local Hugging Face model folder (config.json, *.safetensors and the "
                                     "tokenizer: vocab.json + merges.txt, or tokenizer.json).")],
    out: Annotated[Optional[Path], Opt("--out", help="Checkpoint folder to write: new, empty, or a checkpoint "
                                                     "to replace (default: the pretrained cache under the folder's "
                                                     "name).")] = None,
    dtype: Annotated[str, Opt(help=DTYPE_HELP)] = "auto",
    context: Annotated[Optional[int], Opt("--context", help=CONTEXT_HELP)] = None,
    json_output: Annotated[bool, Opt("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Convert a local GPT-2, Phi, Llama, Qwen2 or Qwen3 model folder (e.g. a fine-tune) into a gptscratch
    checkpoint."""
    from gptscratch.checkpoint import check_checkpoint_target
    from gptscratch.pretrained.convert import convert_hf_folder, default_target

    if not hf_dir.is_dir():
        raise UsageError(f"{hf_dir} is not a folder; pass a Hugging Face model folder")
    target = out or default_target(hf_dir)
    check_checkpoint_target(target)  # before reading GBs: --out may only be new, empty or a checkpoint to replace
    with progress_callback("convert") as progress:
        path = convert_hf_folder(hf_dir, target, dtype=dtype, progress=progress, context=context)
    log(f"converted into {path}; use it with --checkpoint {path}")
    _report(path, json_output)


@app.command()
def export(
    checkpoint: Annotated[str, Arg(help="Checkpoint folder, run name or pretrained name.")],
    out_dir: Annotated[Path, Arg(help="New folder for the Hugging Face files (--format hf), or the new .gguf file "
                                      "(--format gguf).")],
    format: Annotated[str, Opt("--format", help="hf: a folder for transformers (GPT-2, Phi, Llama, Qwen2 or Qwen3, "
                                                 "whichever expresses the model); gguf: one file for llama.cpp and "
                                                 "Ollama.")] = "hf",
    dtype: Annotated[str, Opt(help="GGUF tensor type: auto (the checkpoint's own), f32, f16 or bf16; norms and "
                                   "biases stay f32. Only with --format gguf.")] = "auto",
    json_output: Annotated[bool, Opt("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write a checkpoint as a folder transformers.AutoModelForCausalLM.from_pretrained loads (--format hf), or as
    one GGUF file that llama.cpp, llama-cpp-python and Ollama load (--format gguf)."""
    if format not in ("hf", "gguf"):
        raise UsageError(f"unknown export format {format!r}; choose hf (Hugging Face transformers) or gguf "
                         "(llama.cpp, Ollama)")
    if format == "gguf":
        from gptscratch.pretrained.gguf_export import check_gguf_dtype, export_gguf

        check_gguf_dtype(dtype)  # before anything is read
        with progress_callback("export") as progress:
            result = export_gguf(checkpoint, out_dir, dtype=dtype, progress=progress)
        log(f"{result['architecture']} GGUF ({result['dtype']}, {result['tokenizer']} tokenizer): run it with "
            f"`llama-cli -m {result['path']}`, or in Ollama from a Modelfile `FROM {result['path']}`")
    else:
        from gptscratch.pretrained.export import export_hf

        if dtype != "auto":
            raise UsageError("--dtype applies to --format gguf; the hf export keeps the checkpoint's precision")
        with progress_callback("export") as progress:
            result = export_hf(checkpoint, out_dir, progress=progress)
        if result["tokenizer"] is None:
            log(f"note: the folder holds weights and config but no tokenizer: {result['tokenizer_skipped']}")
        log(f"{result['architecture']}: load it with transformers.AutoModelForCausalLM.from_pretrained("
            f"{str(out_dir)!r})")
    if json_output:
        print_json(result)
    else:
        typer.echo(result["path"])


@app.command()
def merge(
    checkpoint: Annotated[str, Arg(help="A LoRA checkpoint: checkpoint folder or run name (`train --lora-rank`).")],
    out: Annotated[Path, Opt("--out", help="Checkpoint folder to write: new, empty, or a checkpoint to replace.")],
    json_output: Annotated[bool, Opt("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fold a LoRA checkpoint's adapters into its weights (W + (α/r)·B A): an ordinary checkpoint, without
    adapter.safetensors, that every command, converter and exporter reads."""
    from gptscratch.pretrained.export import merge_checkpoint

    result = merge_checkpoint(checkpoint, out)
    lora = result["lora"]
    log(f"merged rank-{lora['rank']} adapters ({', '.join(lora['targets'])}) into {result['path']}; use it with "
        f"--checkpoint {result['path']}")
    _report(Path(result["path"]), json_output, checkpoint=result["checkpoint"], lora=lora,
            parameters=result["parameters"])
