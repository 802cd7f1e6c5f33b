"""Tokenizers made of files — a pretrained model's own tokenizer files — and how they travel with a checkpoint.

Three kinds are read from a folder instead of being built by name:

    "hf-bpe"   vocab.json + merges.txt (GPT-2, Phi-2), run by tiktoken          (hf_bpe.py)
    "hf-json"  tokenizer.json (Llama, SmolLM2, Qwen2/3, ...), run by `tokenizers`  (hf_json.py)
    "bpe"      bpe.tiktoken + bpe.json, trained by `gptscratch data train-tokenizer` (trained.py); its spec's
               "name" is the name the user gave it and "kind" says "bpe"

Their spec carries a "path" to the folder holding the files. A checkpoint must not depend on a download cache
that can be cleared, so `bundle_files` copies the files into the checkpoint's own `tokenizer/` folder and
rewrites "path" to that relative name; `spec_folder` resolves it against the checkpoint folder again on load.
An export to Hugging Face copies a pretrained model's files unchanged (`spec_files`), so `transformers` reads
exactly what the model came with; a trained BPE is written as a tokenizer.json instead (`own_hf_files`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gptscratch.errors import TokenizerError

HF_BPE = "hf-bpe"
HF_JSON = "hf-json"
TRAINED_BPE = "bpe"
TRAINED_FILES = ("bpe.tiktoken", "bpe.json")
BUNDLE_DIR = "tokenizer"
# The files each kind reads, or that `transformers` reads next to them; the ones present are copied.
KIND_FILES: dict[str, tuple[str, ...]] = {
    HF_BPE: ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
             "added_tokens.json"),
    HF_JSON: ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
              "chat_template.jinja", "chat_template.json"),
    TRAINED_BPE: TRAINED_FILES,
}


def spec_kind(spec: dict) -> str | None:
    """The kind of a (non-chat) spec: "kind" where the name is the user's (a trained BPE), else the name."""
    return spec.get("kind") or spec.get("name") if isinstance(spec, dict) else None


def spec_identity(spec: dict) -> dict:
    """What makes two specs the same tokenizer: the spec without its folder where a digest names the content (a
    trained BPE copied into a dataset and into a checkpoint is one tokenizer in two folders)."""
    if isinstance(spec, dict) and isinstance(spec.get("base"), dict):
        return {**spec, "base": spec_identity(spec["base"])}
    if isinstance(spec, dict) and spec.get("digest"):
        return {key: value for key, value in spec.items() if key != "path"}
    return spec


def own_hf_files(spec: dict) -> bool:
    """Does the tokenizer come with Hugging Face files of its own (a pretrained model's, also under a chat
    tokenizer: a fine-tuned model keeps its model's template), to export unchanged? A trained BPE does not."""
    if isinstance(spec, dict) and isinstance(spec.get("base"), dict):
        return own_hf_files(spec["base"])
    return is_file_spec(spec) and spec_kind(spec) in (HF_BPE, HF_JSON)


def is_file_spec(spec: dict) -> bool:
    """Is `spec` the spec of a tokenizer made of files (whose folder must travel with it)? A chat tokenizer
    (chat.py) is when its base is."""
    if isinstance(spec, dict) and isinstance(spec.get("base"), dict):
        return is_file_spec(spec["base"])
    return isinstance(spec, dict) and spec_kind(spec) in KIND_FILES


def spec_folder(spec: dict, base_dir: str | Path | None = None) -> Path:
    """The folder holding a file tokenizer's files: its "path", resolved against `base_dir` (the checkpoint
    folder) when relative."""
    if isinstance(spec.get("base"), dict):
        return spec_folder(spec["base"], base_dir)
    path = Path(spec.get("path") or "")
    if path.is_absolute():
        return path
    if base_dir is None:
        raise TokenizerError(f"tokenizer files at relative path {str(path)!r} need the checkpoint folder they "
                             "belong to; load the model with gptscratch.checkpoint.load_checkpoint")
    return Path(base_dir) / path


def existing_folder(spec: dict, base_dir: str | Path | None = None) -> Path:
    """`spec_folder`, or a TokenizerError when that folder is gone."""
    folder = spec_folder(spec, base_dir)
    if not folder.is_dir():
        raise TokenizerError(f"tokenizer folder {folder} is missing; the checkpoint is incomplete, re-convert it "
                             "with `gptscratch pretrained convert`")
    return folder


def spec_files(spec: dict, base_dir: str | Path | None = None) -> list[Path]:
    """The files of a file tokenizer that are present in its folder."""
    if isinstance(spec.get("base"), dict):
        return spec_files(spec["base"], base_dir)
    folder = spec_folder(spec, base_dir)
    return [folder / name for name in KIND_FILES[spec_kind(spec)] if (folder / name).is_file()]


def bundle_files(spec: dict, destination: Path, source_base: Path | None = None) -> dict:
    """Copy a file tokenizer's files into destination/tokenizer/ and return the spec pointing there; any other
    spec is returned unchanged. A relative source path is resolved against `source_base` (the checkpoint being
    replaced), else against `destination`."""
    if not is_file_spec(spec):
        return spec
    if isinstance(spec.get("base"), dict):  # a chat tokenizer over a file tokenizer: bundle its base
        return {**spec, "base": bundle_files(spec["base"], destination, source_base)}
    target = destination / BUNDLE_DIR
    target.mkdir(parents=True, exist_ok=True)
    for file in spec_files(spec, source_base or destination):
        if file.resolve() != (target / file.name).resolve():
            shutil.copyfile(file, target / file.name)
    return {**spec, "path": BUNDLE_DIR}
