"""Pretrained models: GPT-2, Phi, Llama (TinyLlama, SmolLM2), Qwen2/2.5 and Qwen3 weights converted into
gptscratch's own GPT — one model class, each family a configuration of it — and exported back.

    registry.py       the supported models (pure data: instant `pretrained list`)
    hub.py            fetching only the needed files with huggingface_hub (cache, offline, resume, progress)
    tensor_rules.py   what an architecture is as data: config mapping + tensor-name table, used both ways
    gpt2.py, phi.py   GPT-2 and Phi ↔ ModelConfig
    llama.py          Llama, Qwen2 and Qwen3 ↔ ModelConfig (one tensor table, three configs)
    architectures.py  the table of them by model_type; which class an export uses
    convert.py        HF folder → gptscratch checkpoint, streamed tensor by tensor (peak RAM ≈ model size)
    export.py         gptscratch checkpoint → HF folder that transformers loads
    hf_tokenizer.py   a gptscratch tokenizer → the tokenizer.json written next to an export
    tensorfile.py     streaming safetensors writer and lazy multi-shard reader

A converted model's own tokenizer (vocab.json + merges.txt, kind "hf-bpe"; tokenizer.json, kind "hf-json") is a
tokenizer like any other, so it lives with them in gptscratch/tokenizers/; checkpoints load it without knowing
about this package. This file imports nothing heavy: import the submodules you need.
"""
