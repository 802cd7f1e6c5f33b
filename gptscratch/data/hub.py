"""Rows of tables as documents, through the `datasets` library: local files and Hub datasets.

Local tables (`TableSource`): .jsonl/.json (builder "json"), .parquet, .csv -- a file, a folder
holding only such files, or a glob -- loaded with `datasets.load_dataset(builder,
data_files=..., streaming=True)`: rows are read in order without building a cache copy.
Except JSON Lines (.jsonl[.gz] only): jsonl.py reads the same rows ~10x cheaper, no import; and
Parquet (.parquet): parquet.py reads only the text and id columns with pyarrow, without `datasets`.

Hub datasets (`HubSource`): `fineweb-edu[:CONFIG]` (HuggingFaceFW/fineweb-edu, config
sample-10BT by default) and `hf:ORG/NAME[:CONFIG]`, loaded with
`datasets.load_dataset(ORG/NAME, name=CONFIG, split=SPLIT, streaming=True)`: rows arrive
as they download, nothing is stored but our shards. With $GPTSCRATCH_HF_DATASETS_DIR set,
ORG/NAME is read from that folder instead (a copy laid out like the Hub repository: README.md
with its `configs:` and the data files) -- the same call, only the location differs; tests
and offline mirrors use it.

Each row is one document: text = row[text_field]; id = row["id"] when present (FineWeb-Edu
has one), else "row-<index>"; rows without text are skipped (their index still counts, so
ids stay stable). Every SNAPSHOT_EVERY rows the stream's `state_dict()` (for .jsonl: file and
byte offset) is attached to a document: prepare() stores the last one before its commit
point, and a resumed prepare continues from it instead of re-reading the rows already done.

No network: with HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set, or when huggingface.co does not
answer a TCP connection within 3 s, we raise one NetworkError line at once instead of letting
the Hub client retry for half a minute.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path

from gptscratch.data.jsonl import is_jsonl
from gptscratch.data.parquet import is_parquet
from gptscratch.data.streams import Doc, Source, _digest
from gptscratch.errors import DataError, GptScratchError, NetworkError, UsageError

ENV_HF_DATASETS_DIR = "GPTSCRATCH_HF_DATASETS_DIR"
FINEWEB_EDU = "fineweb-edu"
FINEWEB_EDU_REPO = "HuggingFaceFW/fineweb-edu"
FINEWEB_EDU_CONFIG = "sample-10BT"
SNAPSHOT_EVERY = 1000
NO_NETWORK = ("cannot reach the Hugging Face Hub; use a local source or `gptscratch data download` "
              "where you have a connection")
_PROBE_SECONDS = 3.0
_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def is_hub_source(source: str) -> bool:
    lowered = source.lower()
    return lowered == FINEWEB_EDU or lowered.startswith(FINEWEB_EDU + ":") or lowered.startswith("hf:")


def _table_kind(path: str) -> str | None:
    lowered = path.lower().removesuffix(".gz")
    return next((ext for ext in _BUILDERS if lowered.endswith(ext)), None)


def table_files(source: str) -> list[Path]:
    """The table files a local source names, or [] when it is not a table source."""
    from gptscratch.data.sources import TEXT_EXTENSIONS, canonical_source, is_glob, walk_files

    canonical = canonical_source(source)
    if is_glob(canonical):
        files = sorted(Path(p) for p in glob.glob(canonical, recursive=True) if os.path.isfile(p))
        tables = [f for f in files if _table_kind(str(f))]
        if tables and len(tables) != len(files):
            raise UsageError(f"{source!r} matches both table files ({', '.join(_BUILDERS)}) and other files; "
                             "narrow the pattern to one kind")
        return tables
    path = Path(canonical)
    if path.is_file():
        return [path] if _table_kind(str(path)) else []
    if path.is_dir():
        tables = []
        for relative, entry in walk_files(path):
            if entry.name.lower().endswith(TEXT_EXTENSIONS):
                return []  # a folder of text files: one document per file, as before
            if _table_kind(entry.name):
                tables.append(Path(entry.path))
        return sorted(tables)
    return []


def _load_streaming(*args, **kwargs):
    """datasets.load_dataset(..., streaming=True) without importing torch.

    `datasets` creates a shared-memory torch tensor for every streamed dataset when torch is
    installed (for DataLoader workers), which imports torch: +180 MB and seconds of start-up
    for a prepare that never touches torch. Unless torch is already loaded, we tell datasets
    it is absent for the duration of the call."""
    import sys

    import datasets

    hide = "torch" not in sys.modules and datasets.config.TORCH_AVAILABLE
    if hide:
        datasets.config.TORCH_AVAILABLE = False
    try:
        return datasets.load_dataset(*args, streaming=True, **kwargs)
    finally:
        if hide:
            datasets.config.TORCH_AVAILABLE = True


class _RowSource(Source):
    """Shared by local tables and Hub datasets: rows of a streamed `datasets` table."""

    text_field = "text"
    # `datasets` gives every row every column (None where absent): the first row tells. A
    # .jsonl row may simply lack a key, so that reader gives up after this many rows without it.
    missing_field_patience = 1

    def _load(self):
        raise NotImplementedError

    def _read_error(self, error: Exception) -> GptScratchError:
        raise NotImplementedError

    def _rows(self, start: int, resume: dict | None):
        """(rows iterator, number of the first row it gives, state() of the stream after a row)."""
        stream = self._load()
        position = 0
        if resume and resume.get("stream_state") is not None and int(resume.get("stream_at", 0)) <= start:
            stream.load_state_dict(resume["stream_state"])
            position = int(resume["stream_at"])
        return iter(stream), position, stream.state_dict

    def documents(self, start: int = 0, resume: dict | None = None) -> Iterator[Doc]:
        field, seen_field, missing = self.text_field, False, 0
        try:
            rows, position, state = self._rows(start, resume)
            pending_snapshot = None
            row = None
            for row in rows:
                index, position = position, position + 1
                if not seen_field:
                    seen_field = field in row
                    missing += not seen_field
                    if missing >= self.missing_field_patience:
                        raise self._no_field(row)
                if index < start:
                    continue
                if (index + 1) % SNAPSHOT_EVERY == 0:
                    pending_snapshot = (state(), index + 1)
                text = row.get(field)
                if not isinstance(text, str) or not text:
                    continue
                doc_id = row.get("id")
                doc_id = str(doc_id) if doc_id is not None else f"row-{index}"
                yield Doc(index, doc_id, text, snapshot=pending_snapshot)
                pending_snapshot = None
            if missing and not seen_field:
                raise self._no_field(row)
        except GptScratchError:
            raise
        except Exception as error:  # network drops, malformed files: one line each
            raise self._read_error(error) from None

    def _no_field(self, row: dict) -> UsageError:
        return UsageError(f"{self.describe()} has no field {self.text_field!r} (fields: {', '.join(sorted(row))}); "
                          "pass --text-field NAME")

    def describe(self) -> str:
        return self.canonical


class TableSource(_RowSource):
    """Local .jsonl/.json/.parquet/.csv files, one row per document."""

    kind = "table"

    def __init__(self, source: str, files: list[Path], text_field: str = "text"):
        from gptscratch.data.sources import canonical_source, source_stem

        kinds = {_BUILDERS[_table_kind(str(f))] for f in files}
        if len(kinds) > 1:
            raise UsageError(f"{source!r} mixes table formats ({', '.join(sorted(kinds))}); prepare one kind at a time")
        self.builder = kinds.pop()
        self.files = files
        self.canonical = canonical_source(source)
        self.stem = source_stem(source) if not Path(self.canonical).is_file() else _clean(Path(self.canonical).name.split(".")[0])
        self.text_field = text_field
        self.options = {"text_field": text_field}
        # JSON Lines are read by our own reader (jsonl.py: same rows, ~10x cheaper than `datasets`)
        self.plain_jsonl = all(is_jsonl(f) for f in files)
        self.plain_parquet = all(is_parquet(f) for f in files)  # parquet.py: two columns, no `datasets`
        self.missing_field_patience = SNAPSHOT_EVERY if self.plain_jsonl else 1

    def fingerprint(self) -> str:
        stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in self.files]
        return _digest({"files": stats, **self.options})

    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def _rows(self, start: int, resume: dict | None):
        if self.plain_parquet:
            from gptscratch.data.parquet import ParquetReader

            reader = ParquetReader(self.files, self.text_field)
        elif self.plain_jsonl:
            from gptscratch.data.jsonl import JsonlReader

            reader = JsonlReader(self.files)
        else:
            return super()._rows(start, resume)
        state = (resume or {}).get("stream_state")
        position = 0
        if int((resume or {}).get("stream_at", 0)) <= start and reader.seek(state):
            position = reader.rows
        return iter(reader), position, reader.state

    def _load(self):
        try:
            return _load_streaming(self.builder, data_files=[str(f) for f in self.files], split="train")
        except Exception as error:
            raise self._read_error(error) from None

    def _read_error(self, error: Exception) -> GptScratchError:
        message = " ".join(str(error).split())[:300]
        return UsageError(f"cannot read {self.describe()} as {self.builder} ({type(error).__name__}: {message}); "
                          "check the file format")


class HubSource(_RowSource):
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
        self.stem = _clean(self.stem)
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
            return _load_streaming(location, name=self.config, split=self.split)
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


def _clean(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-") or "data"
