"""Where training text comes from: every kind of source behind one interface, parse_source().

    parse_source(text)          kind   documents                                          module
    builtin, file, folder, glob files  text files, one document each                      files.py
    *.jsonl *.json *.parquet    table  one row = one document, read by `datasets`         tables.py
    *.csv (file/folder/glob)           (.jsonl by jsonl.py, .parquet by parquet.py: same rows)
    fineweb-edu[:CONFIG]        hub    FineWeb-Edu rows, streamed from the Hugging Face Hub hub.py
    hf:ORG/NAME[:CONFIG]        hub    any Hub dataset with a text column, streamed       hub.py
    task:NAME[:options]         task   generated examples (gptscratch.tasks)              tasks.py

One module per kind, named after the kind (the manifest's `source_kind`: files, table, hub,
task), plus what the kinds share:

    base.py        Doc and Source: the interface (documents in a fixed order, stable ids), the digest
    table_rows.py  rows of a streamed table -> documents, resumable (shared by tables.py and hub.py)
    jsonl.py       the fast reader for local .jsonl tables (same rows as `datasets`, ~10x cheaper)
    parquet.py     the fast reader for local .parquet tables (pyarrow, two columns, no `datasets`)

Nothing here imports `datasets` or pyarrow until a table or Hub dataset is read.
"""

from __future__ import annotations

from gptscratch.data.sources.base import Doc, Source
from gptscratch.data.sources.files import FileSource
from gptscratch.data.sources.hub import HubSource, is_hub_source
from gptscratch.data.sources.tables import TableSource, table_files
from gptscratch.data.sources.tasks import TaskSource
from gptscratch.errors import UsageError

__all__ = ["Doc", "Source", "parse_source"]


def parse_source(source: str, text_field: str = "text", split: str = "train") -> Source:
    """The Source for a source string (see module docstring); bad input raises UsageError."""
    from gptscratch.tasks import is_task_source

    text = source.strip()
    if not text:
        raise UsageError("empty source; give 'builtin', a file, folder or glob, fineweb-edu, hf:ORG/NAME or task:NAME")
    if is_task_source(text):
        return TaskSource(text)
    if is_hub_source(text):
        return HubSource(text, text_field=text_field, split=split)
    tables = table_files(text)
    if tables:
        return TableSource(text, tables, text_field=text_field)
    return FileSource(text)
