"""Which split (train or val) each document goes to: the rule prepare() records in the manifest.

Rule "hash": a document goes to val when the first 8 bytes of sha256(document id), read as a
fraction u in [0, 1), are below VAL_FRACTION (0.1). The id is the path relative to the source,
the topic name, the row's `id` field (FineWeb-Edu) or "row-<index>" -- so a document's split
never depends on which other documents exist: adding files or preparing more rows later never
moves a document between train and val. Both splits must be non-empty: for files (listed up
front) a document is moved when needed (the smallest u to val, or the largest to train) and
recorded in the manifest's `split_overrides`; a streamed table that ends with an empty split is
rebuilt with such an override (only tiny tables get there).
Rule "position": a single document (one text file, one row) is split by position -- the first
90% of its tokens train, the rest val (build.build_by_position cuts the token stream).
Rule "task": the task's held-out test set is val (the source marks each document's split).
"""

from __future__ import annotations

import hashlib

from gptscratch.data.shards import SPLITS

VAL_FRACTION = 0.1


def hash_fraction(doc_id: str) -> float:
    """Stable pseudo-random number in [0, 1) for a document id."""
    return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big") / 2**64


def hash_split(doc_id: str) -> str:
    return "val" if hash_fraction(doc_id) < VAL_FRACTION else "train"


def assign_splits(doc_ids: list[str]) -> dict[str, str]:
    """doc id -> "train"/"val" by hash (see module docstring); both non-empty when >= 2 ids."""
    fractions = {doc_id: hash_fraction(doc_id) for doc_id in doc_ids}
    splits = {doc_id: "val" if u < VAL_FRACTION else "train" for doc_id, u in fractions.items()}
    if len(doc_ids) >= 2:
        if "val" not in splits.values():
            splits[min(fractions, key=fractions.get)] = "val"
        if "train" not in splits.values():
            splits[max(fractions, key=fractions.get)] = "train"
    return splits


def split_rule(src) -> tuple[str, dict[str, str]]:
    """The manifest's (split_rule, split_overrides) for a new dataset of the Source `src`.

    `src.forced` (set by prepare() when a streamed build came out with an empty split) is either
    "position" or overrides to add, as empty_split_fallback() returned them."""
    forced = getattr(src, "forced", None) or {}
    rule = "task" if src.kind == "task" else "position" if (src.single_document or forced == "position") else "hash"
    forced = forced if isinstance(forced, dict) else {}
    return rule, ({**src.split_overrides(), **forced} if rule == "hash" else {})


def document_split(doc, overrides: dict[str, str]) -> str:
    """The split of a Doc under the hash or task rule: the source's own say, then an override, then the hash."""
    return doc.split or overrides.get(doc.doc_id) or hash_split(doc.doc_id)


def empty_split_fallback(manifest: dict, src):
    """After a complete streamed build with an empty split: the override that fixes it, else None."""
    if not manifest.get("complete") or manifest["split_rule"] != "hash" or src.kind not in ("table", "hub"):
        return None
    counts = {split: int(manifest["splits"][split]["documents"]) for split in SPLITS}
    if all(counts.values()):
        return None
    if sum(counts.values()) == 1:
        return "position"
    fractions = {doc.doc_id: hash_fraction(doc.doc_id) for doc in src.documents()}
    if not counts["val"]:
        return {min(fractions, key=fractions.get): "val"}
    return {max(fractions, key=fractions.get): "train"}
