"""Reading and writing safetensors one tensor at a time, so conversions never hold two copies of a model.

A safetensors file is: 8 bytes (little-endian u64) header length N, N bytes of JSON
    {"name": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}
then the raw little-endian tensor bytes, back to back. Because every shape and dtype is known before any data
is read, `TensorFileWriter` writes the header first and then streams each tensor in the order declared: peak
memory is one tensor, not the whole state dict that `safetensors.torch.save_file` needs.

Reading uses `safetensors.safe_open` (lazy: the file is memory-mapped and each `get_tensor` copies only that
tensor), across the shards listed in `model.safetensors.index.json` when a model is split.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from gptscratch.errors import CheckpointError, UsageError

DTYPE_CODES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64",
               "int64": "I64", "int32": "I32", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


def dtype_code(dtype) -> str:
    return DTYPE_CODES[str(dtype).removeprefix("torch.")]


class TensorFileWriter:
    """Write a safetensors file from (name, shape, dtype) declared up front; then `write` each tensor in order."""

    def __init__(self, path: str | os.PathLike, entries: list[tuple[str, tuple[int, ...], object]],
                 metadata: dict[str, str] | None = None):
        header: dict[str, object] = {"__metadata__": dict(metadata or {})}
        self.expected: list[tuple[str, tuple[int, ...], str]] = []
        offset = 0
        for name, shape, dtype in entries:
            code = dtype_code(dtype)
            size = _itemsize(dtype)
            for dim in shape:
                size *= int(dim)
            header[name] = {"dtype": code, "shape": [int(d) for d in shape], "data_offsets": [offset, offset + size]}
            self.expected.append((name, tuple(int(d) for d in shape), code))
            offset += size
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        raw += b" " * (-len(raw) % 8)  # the data section starts 8-byte aligned
        self.handle = open(path, "wb")
        self.handle.write(struct.pack("<Q", len(raw)) + raw)
        self.position = 0

    def write(self, name: str, tensor) -> None:
        expected_name, shape, code = self.expected[self.position]
        if name != expected_name or tuple(tensor.shape) != shape or dtype_code(tensor.dtype) != code:
            raise CheckpointError(f"tensor {name} {tuple(tensor.shape)} {tensor.dtype} written where "
                                  f"{expected_name} {shape} {code} was declared; this is a converter bug, "
                                  "please report it")
        import torch

        flat = tensor.detach().reshape(-1).contiguous().cpu()
        if flat.numel():  # a uint8 view exposes any dtype (bfloat16 too) to numpy without a copy
            self.handle.write(memoryview(flat.view(torch.uint8).numpy()))
        self.position += 1

    def __enter__(self) -> "TensorFileWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:  # the caller's temporary folder is discarded anyway
            self.handle.close()
            return
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        if self.position != len(self.expected):
            raise CheckpointError(f"only {self.position} of {len(self.expected)} tensors were written; "
                                  "this is a converter bug, please report it")


def _itemsize(dtype) -> int:
    import torch

    return torch.empty((), dtype=dtype).element_size()


class TensorSource:
    """Lazy access to the tensors of a Hugging Face model folder (one file or an index of shards)."""

    def __init__(self, folder: str | os.PathLike):
        from safetensors import safe_open

        folder = Path(folder)
        if (folder / INDEX_FILE).is_file():
            try:
                weight_map = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))["weight_map"]
            except (OSError, ValueError, KeyError) as exc:
                raise CheckpointError(f"cannot read {folder / INDEX_FILE} ({exc}); re-download the model") from None
            files = sorted(set(weight_map.values()))
        elif (folder / SINGLE_FILE).is_file():
            weight_map, files = None, [SINGLE_FILE]
        else:
            raise UsageError(f"{folder} has no model.safetensors (or {INDEX_FILE}); only safetensors weights are "
                             "supported — re-save the model with save_pretrained(safe_serialization=True)")
        self.handles = {}
        for file in files:
            try:
                self.handles[file] = safe_open(str(folder / file), framework="pt")
            except Exception as exc:  # SafetensorError, OSError: keep one line
                raise CheckpointError(f"cannot open {folder / file} ({exc}); the download is damaged, delete it "
                                      "and download again") from None
        if weight_map is None:
            weight_map = {key: SINGLE_FILE for key in self.handles[SINGLE_FILE].keys()}
        self.weight_map: dict[str, str] = weight_map

    def keys(self) -> list[str]:
        return list(self.weight_map)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.handles[self.weight_map[key]].get_slice(key).get_shape())

    def dtype(self, key: str) -> str:
        return self.handles[self.weight_map[key]].get_slice(key).get_dtype()

    def get(self, key: str):
        return self.handles[self.weight_map[key]].get_tensor(key)
