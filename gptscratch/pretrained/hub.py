"""Fetching a model's files from the Hugging Face Hub: only what conversion needs, through huggingface_hub.

Files: config.json, the safetensors weights (one file, or an index plus its shards), generation_config.json
where the repo has one, and the tokenizer files of the kind the architecture ships (`TOKENIZER_FILES`): GPT-2
and Phi need vocab.json + merges.txt, Llama / SmolLM2 / Qwen need tokenizer.json + tokenizer_config.json (which
names the end-of-text token); the other files of the kind (special_tokens_map.json, added_tokens.json, a chat
template) come along where the repo has them. Never the TensorFlow, Flax, ONNX or PyTorch-pickle copies, nor
SentencePiece's tokenizer.model, that the same repos hold.

huggingface_hub keeps them in its usual cache (HF_HOME / HF_HUB_CACHE, shared with transformers), reads HF_TOKEN
for gated or private repos, and resumes a dropped connection within the call (a Range request); after a failure,
files already complete stay cached, so running the command again fetches only the rest. The order of work:

    1. resolve every file from the local cache only (`local_files_only=True`): a complete cache needs no network
       — this also serves HF_HUB_OFFLINE=1 and tests, which point HF_HUB_CACHE at a folder in hub layout
       (models--ORG--NAME/refs/main + snapshots/<commit>/...);
    2. otherwise, offline mode or an unreachable host ends in one NetworkError line within seconds;
    3. otherwise download, optional files first and weights last, reporting bytes to `progress`.
"""

from __future__ import annotations

import os
from pathlib import Path

from gptscratch.errors import NetworkError, UsageError
from gptscratch.tokenizers.files import HF_BPE, HF_JSON, KIND_FILES

CONFIG_FILES = ("config.json",)
OPTIONAL_FILES = ("generation_config.json",)
# tokenizer kind → (files a download needs, files it takes where the repo has them)
_REQUIRED = {HF_BPE: ("vocab.json", "merges.txt"), HF_JSON: ("tokenizer.json", "tokenizer_config.json")}
TOKENIZER_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    kind: (required, tuple(name for name in KIND_FILES[kind] if name not in required))
    for kind, required in _REQUIRED.items()}
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
PROBE_SECONDS = 3.0


def hub_cache_dir() -> str | None:
    """HF_HUB_CACHE / HF_HOME read now (huggingface_hub reads them once at import), else its default."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def offline_requested() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """Can a TCP connection to the Hub be opened within `timeout` s? (see gptscratch.network)"""
    from ..network import hub_reachable as probe

    return probe(timeout)


def _progress_class(progress, state: dict):
    """A tqdm class huggingface_hub draws its byte counts into; it forwards them to our progress callback."""
    from tqdm.std import tqdm

    class Forward(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # we draw our own bar
            super().__init__(*args, **kwargs)
            state["total"] += kwargs.get("total") or 0
            state["completed"] += kwargs.get("initial") or 0  # resumed bytes count as done

        def update(self, n=1):
            state["completed"] += n or 0
            progress({"total": state["total"], "completed": state["completed"], "unit": "bytes"})

    return Forward


class _Fetcher:
    def __init__(self, repo_id: str, revision: str, local_only: bool, progress, tokenizer_kind: str):
        self.repo_id, self.revision, self.local_only = repo_id, revision, local_only
        self.tokenizer_required, self.tokenizer_optional = TOKENIZER_FILES[tokenizer_kind]
        self.current = ""  # the file being fetched, named in errors
        self.tqdm_class = _progress_class(progress, {"total": 0, "completed": 0}) if progress else None

    def get(self, filename: str, required: bool = True) -> Path | None:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        self.current = filename
        try:
            return Path(hf_hub_download(self.repo_id, filename, revision=self.revision, cache_dir=hub_cache_dir(),
                                        local_files_only=self.local_only, tqdm_class=self.tqdm_class))
        except LocalEntryNotFoundError:
            if required or not self.local_only:
                raise
            return None
        except EntryNotFoundError:  # the repo has no such file
            if required:
                raise
            return None

    def fetch_all(self) -> Path:
        for name in (*self.tokenizer_optional, *OPTIONAL_FILES):
            self.get(name, required=False)
        config = self.get("config.json")
        for name in self.tokenizer_required:
            self.get(name)
        index = self.get(INDEX_FILE, required=False)
        if index is None:
            self.get(SINGLE_FILE)
        else:
            import json

            for shard in sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())):
                self.get(shard)
        return config.parent


def download_model(repo_id: str, revision: str = "main", progress=None, tokenizer_kind: str = HF_BPE) -> Path:
    """The local snapshot folder holding the needed files of repo_id, downloading what the cache lacks.
    tokenizer_kind: which tokenizer files the model ships (TOKENIZER_FILES; the architecture says)."""
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    try:
        return _Fetcher(repo_id, revision, local_only=True, progress=None, tokenizer_kind=tokenizer_kind).fetch_all()
    except (EntryNotFoundError, OSError):  # LocalEntryNotFoundError is one of these
        pass  # not (completely) cached: download
    if offline_requested():
        raise NetworkError(f"{repo_id} is not (completely) in the Hugging Face cache and HF_HUB_OFFLINE=1; unset "
                           "HF_HUB_OFFLINE to download it, or convert a local copy with `gptscratch pretrained "
                           "convert HF_DIR`")
    if not hub_reachable():
        raise NetworkError(f"cannot reach the Hugging Face Hub to download {repo_id}; connect to the internet "
                           "(or set HF_ENDPOINT to a mirror), or convert a local copy with `gptscratch pretrained "
                           "convert HF_DIR`")
    fetcher = _Fetcher(repo_id, revision, local_only=False, progress=progress, tokenizer_kind=tokenizer_kind)
    try:
        return fetcher.fetch_all()
    except GatedRepoError:
        raise NetworkError(f"{repo_id} is gated; accept its licence on huggingface.co and set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise UsageError(f"repository {repo_id} not found (or private: set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise UsageError(f"revision {revision} of {repo_id} not found; use an existing branch or commit") from None
    except EntryNotFoundError:
        raise NetworkError(f"{repo_id} has no {fetcher.current} at revision {revision}; only safetensors repos "
                           f"with {' + '.join(fetcher.tokenizer_required)} are supported") from None
    except (HfHubHTTPError, OSError) as exc:
        raise NetworkError(f"download of {repo_id} failed ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})"
                           "; run the same command again: files already fetched are kept") from None
