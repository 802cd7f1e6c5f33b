"""Pretrained models: GPT-2 and Phi-2 weights converted into gptscratch's own GPT, and exported back.

    registry.py       the supported models (pure data: instant `pretrained list`)
    hub.py            fetching only the needed files with huggingface_hub (cache, offline, resume, progress)
    architectures.py  HF config → ModelConfig, and the tensor-name table per architecture
    convert.py        HF folder → gptscratch checkpoint, streamed tensor by tensor (peak RAM ≈ model size)
    export.py         gptscratch checkpoint → HF GPT-2 folder that transformers loads
    hf_tokenizer.py   a gptscratch tokenizer → the tokenizer.json written next to an export
    tensorfile.py     streaming safetensors writer and lazy multi-shard reader

A converted model's own tokenizer (vocab.json + merges.txt, kind "hf-bpe") is a tokenizer like any other, so it
lives with them in gptscratch/tokenizers/hf_bpe.py; checkpoints load it without knowing about this package.
This file imports nothing heavy: import the submodules you need.
"""
