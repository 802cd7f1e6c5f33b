"""Hugging Face Hub datasets as documents, streamed: fineweb-edu[:CONFIG] and hf:ORG/NAME[:CONFIG].

`fineweb-edu[:CONFIG]` is HuggingFaceFW/fineweb-edu (config sample-10BT by default);
`hf:ORG/NAME[:CONFIG]` is any Hub dataset with a text column. Both are loaded with
`datasets.load_dataset(ORG/NAME, name=CONFIG, split=SPLIT, streaming=True)`: rows arrive
as they download, nothing is stored but our shards; rows become documents as table_rows.py says.
With $GPTSCRATCH_HF_DATASETS_DIR set, ORG/NAME is read from that folder instead (a copy laid
out like the Hub repository: README.md with its `configs:` and the data files) -- the same
call, only the location differs; tests and offline mirrors use it.

No network: with HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set, or when huggingface.co does not
answer a TCP connection within 3 s, we raise one NetworkError line at once instead of letting
the Hub client retry for half a minute.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gptscratch.data.sources.base import clean_stem
from gptscratch.data.sources.table_rows import RowSource, load_streaming
from gptscratch.errors import DataError, GptScratchError, NetworkError, UsageError

ENV_HF_DATASETS_DIR = "GPTSCRATCH_HF_DATASETS_DIR"
FINEWEB_EDU = "fineweb-edu"
FINEWEB_EDU_REPO = "HuggingFaceFW/fineweb-edu"
FINEWEB_EDU_CONFIG = "sample-10BT"
NO_NETWORK = ("cannot reach the Hugging Face Hub; use a local source or `gptscratch data download` "
              "where you have a connection")
_PROBE_SECONDS = 3.0


def is_hub_source(source: str) -> bool:
    lowered = source.lower()
    return lowered == FINEWEB_EDU or lowered.startswith(FINEWEB_EDU + ":") or lowered.startswith("hf:")


class HubSource(RowSource):
    """fineweb-edu[:CONFIG] or hf:ORG/NAME[:CONFIG], streamed (see module docstring)."""

    kind = "hub"
    default_tokenizer = "cl100k_base"

    def __init__(self, source: str, text_field: str = "text", split: str = "train"):
        text = source.strip()
        if text.lower().startswith(FINEWEB_EDU):
            self.repo, config = FINEWEB_EDU_REPO, text[len(FINEWEB_EDU) + 1:] or FINEWEB_EDU_CONFIG
            self.canonical = f"{FINEWEB_EDU}:{config}"
            self.stem = FINEWEB_EDU if config == FINEWEB_EDU_CONFIG else f"{FINEWEB_EDU}-{config}"
        else:
            repo, _, config = text[3:].partition(":")
            if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo):
                raise UsageError(f"{source!r} is not hf:ORG/NAME[:CONFIG]; e.g. hf:roneneldan/TinyStories")
            self.repo = repo
            self.canonical = f"hf:{repo}" + (f":{config}" if config else "")
            self.stem = repo.split("/")[1] + (f"-{config}" if config else "")
        self.config = config or None
        self.split, self.text_field = split, text_field
        if split != "train":
            self.stem += f"-{split}"
        self.stem = clean_stem(self.stem)
        self.options = {"text_field": text_field, "split": split}

    def location(self) -> str:
        """The repository id, or its local copy under $GPTSCRATCH_HF_DATASETS_DIR."""
        mirror = os.environ.get(ENV_HF_DATASETS_DIR, "").strip()
        if not mirror:
            return self.repo
        folder = Path(mirror).expanduser() / self.repo
        if not folder.is_dir():
            raise UsageError(f"${ENV_HF_DATASETS_DIR} is set but {folder} does not exist; put a copy of "
                             f"{self.repo} there or unset the variable")
        return str(folder)

    def _load(self):
        location = self.location()
        if location == self.repo:
            check_hub_reachable()
        try:
            return load_streaming(location, name=self.config, split=self.split)
        except Exception as error:
            raise self._load_error(error) from None

    def _load_error(self, error: Exception) -> GptScratchError:
        message = " ".join(str(error).split())[:300]
        name = type(error).__name__
        if name == "DatasetNotFoundError" or isinstance(error, FileNotFoundError):
            return UsageError(f"no dataset {self.repo} on the Hugging Face Hub ({message}); check the name")
        if "BuilderConfig" in message or "Unknown split" in message or "Bad split" in message:
            return UsageError(f"{self.canonical}: {message}; pick a listed config (ORG/NAME:CONFIG) or --split")
        if isinstance(error, (ConnectionError, TimeoutError)) or "Couldn't reach" in message:
            return NetworkError(NO_NETWORK)
        return DataError(f"cannot open {self.canonical} ({name}: {message}); check the name and config")

    def _read_error(self, error: Exception) -> GptScratchError:
        if isinstance(error, (OSError, ConnectionError, TimeoutError)) or "connect" in str(error).lower():
            return NetworkError(f"lost the connection to the Hugging Face Hub while reading {self.canonical}; "
                                "run the same command again to resume from the last complete shard")
        message = " ".join(str(error).split())[:300]
        return DataError(f"error while reading {self.canonical} ({type(error).__name__}: {message}); "
                         "run the same command again to resume, or report it if it persists")

    def vocabulary_texts(self):
        raise UsageError("the char tokenizer needs the whole text before preparing; use byte or a BPE tokenizer "
                         "(cl100k_base) for Hub datasets")


def check_hub_reachable(timeout: float = _PROBE_SECONDS) -> None:
    """NetworkError (one line) when offline mode is on or the Hub does not answer within `timeout`."""
    if any(os.environ.get(flag, "").strip().lower() in ("1", "true", "yes", "on")
           for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        raise NetworkError(NO_NETWORK + " (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set)")
    from gptscratch.network import hub_reachable

    if not hub_reachable(timeout):
        raise NetworkError(NO_NETWORK)
