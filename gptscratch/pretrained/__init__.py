"""Pretrained models: GPT-2 and Phi-2 weights converted into gptscratch's own GPT, and exported back.

    registry.py       the supported models (pure data: instant `pretrained list`)
    hub.py            fetching only the needed files with huggingface_hub (cache, offline, resume, progress)
    architectures.py  HF config → ModelConfig, and the tensor-name table per architecture
    convert.py        HF folder → gptscratch checkpoint, streamed tensor by tensor (peak RAM ≈ model size)
    export.py         gptscratch checkpoint → HF GPT-2 folder that transformers loads
    bpe.py            the repo's vocab.json + merges.txt as a tiktoken tokenizer ("hf-bpe")
    tensorfile.py     streaming safetensors writer and lazy multi-shard reader

This file imports nothing heavy: import the submodules you need.
"""
