"""Supervised fine-tuning (SFT): the same loop as pretraining, on conversations, learning only the replies.

What changes from pretraining (trainer.py is shared; only the data side differs, through setup.py):

    data      conversations ({"messages": [...]}, gptscratch/chat/conversations.py) instead of a token stream
    template  each conversation rendered to ids by a chat template (gptscratch/chat/template.py); a base model
              trained here gets the template's special tokens first (gptscratch/chat/tokens.py)
    mask      the loss counts only the assistant's tokens (and the end-of-turn token after each reply)
    batches   one conversation per row, padded, instead of windows cut anywhere from a stream

The mask. A row's targets are the ids shifted by one, as in pretraining, except that every position whose target
is *not* a reply token gets the target −1, which cross-entropy ignores (GPT.forward: ignore_index −1):

    ids      <s> <|user|>  W  h  a  t  …  ?  <|end|> <|assistant|>  8  <|end|>
    x        <s> <|user|>  W  h  a  t  …  ?  <|end|> <|assistant|>  8
    y         −1    −1     −1 −1 −1 −1  −1   −1     −1              8  <|end|>
                                                                    ^ trained: the answer, then "stop"
Why not learn the question too? The model would spend its capacity predicting what users type (and learn to
write users' turns); the loss would be dominated by the prompts, which are usually much longer than the answers.
Learning the end-of-turn token is what makes generation stop after a reply.

Padding. Conversations have different lengths. Each batch is padded on the right to its longest row (rounded up
to a multiple of 8, so few distinct shapes reach torch.compile) with the end-of-text id and target −1: causal
attention means no real position ever looks at the padding after it, and the padding's own predictions are
ignored, so padded and unpadded rows compute the same loss. A conversation longer than the context keeps its first
context + 1 tokens (a warning says how many were cut); one left with no reply token at all is dropped.
(Packing several conversations into one row wastes less compute on padding but lets them attend to each other
unless the mask is made block-diagonal; at these lengths padding costs little and is exact.)

Order: every epoch visits each training conversation once, in an order drawn from a seeded generator; the
generator's state at the epoch's start and the position within it are the sampler's state, so --resume continues
the same order. Under torchrun the ranks take disjoint slices of the same global batch, as WindowSampler does.

Validation: a held-out split (builtin-chat: the task's test questions; a file or Hub dataset: every 20th
conversation), the loss on the same rows at every evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import checkpoint as ckpt
from ..errors import CheckpointNotFoundError, UsageError

VAL_EVERY = 20          # files and Hub datasets: conversation i is held out for validation when i % 20 == 19
PAD_MULTIPLE = 8


@dataclass
class ConversationSet:
    """Rendered conversations: per split a list of (ids, trained) rows; the tokenizer and template that made them."""

    name: str
    tokenizer: object
    format: object
    splits: dict = field(default_factory=dict)
    truncated: int = 0
    dropped: int = 0
    first_prompt: list[int] | None = None
    new_ids: range = range(0)       # ids of the chat tokens added to the base tokenizer (none when it had them)

    @property
    def sample_prompt(self) -> tuple[list[int], tuple[int, ...]] | None:
        """(ids, stop ids) the trainer's samples continue from: the first validation question."""
        return (self.first_prompt, self.format.stop_ids) if self.first_prompt else None


def base_tokenizer(config):
    """The tokenizer the fine-tuned model starts from: the --init-from checkpoint's, else --tokenizer (byte)."""
    from ..tokenizers import from_spec, get_tokenizer

    if config.init_from:
        path = ckpt.resolve_checkpoint(config.init_from)
        return from_spec(ckpt.read_config(path)["tokenizer"], base_dir=path)
    return get_tokenizer(config.tokenizer or "byte")


def _context_length(config, tokenizer) -> int:
    from ..model import model_config, pad_vocab

    if config.init_from:
        path = ckpt.resolve_checkpoint(config.init_from)
        return ckpt.read_model_config(path).context_length
    try:
        return model_config(config.size, pad_vocab(tokenizer.vocab_size), **config.model).context_length
    except (KeyError, ValueError, TypeError) as exc:
        raise UsageError(f"invalid model settings: {exc.args[0] if exc.args else exc}") from None


def _resumed_tokenizer(config, resume_from) -> tuple:
    """(tokenizer, context length, ids of the chat tokens the run added) of a run being resumed, from its own
    checkpoint: the --init-from checkpoint may be gone by then. The chat tokens count as added by the run unless
    the --init-from checkpoint, when it is still there, already had them."""
    from ..tokenizers import from_spec
    from ..tokenizers.chat import ChatTokenizer

    tokenizer = from_spec(ckpt.read_config(resume_from)["tokenizer"], base_dir=resume_from)
    context = ckpt.read_model_config(resume_from).context_length
    if not isinstance(tokenizer, ChatTokenizer):
        return tokenizer, context, range(0)
    try:
        started_with_them = isinstance(base_tokenizer(config), ChatTokenizer)
    except CheckpointNotFoundError:
        started_with_them = False
    return tokenizer, context, range(0) if started_with_them else range(tokenizer.base.vocab_size,
                                                                          tokenizer.vocab_size)


def resolve_conversations(config, progress=None, resume_from=None) -> ConversationSet:
    """Read, check and render the conversations of `config.data` (see the module docstring)."""
    from ..chat import BUILTIN, chat_format, needs_chat_tokens, read_conversations
    from ..tokenizers.chat import ChatTokenizer

    if resume_from is not None:
        tokenizer, context, new_ids = _resumed_tokenizer(config, resume_from)
    else:
        tokenizer = base = base_tokenizer(config)
        if needs_chat_tokens(tokenizer, config.chat_template):
            tokenizer = ChatTokenizer(tokenizer)
        context, new_ids = _context_length(config, tokenizer), range(base.vocab_size, tokenizer.vocab_size)
    fmt = chat_format(tokenizer, config.chat_template)
    data = ConversationSet(name=config.data, tokenizer=tokenizer, format=fmt, splits={"train": [], "val": []},
                           new_ids=new_ids)
    builtin = config.data.strip() == BUILTIN or config.data.strip().startswith(BUILTIN + ":")
    sources = [("train", "train"), ("val", "test")] if builtin else [(None, "train")]
    for split, read_split in sources:
        for index, (where, messages) in enumerate(read_conversations(config.data, read_split)):
            target = split or ("val" if index % VAL_EVERY == VAL_EVERY - 1 else "train")
            try:
                rendered = fmt.render(messages)
            except UsageError as exc:
                raise UsageError(f"{where}: {exc}") from None
            ids, trained = rendered.ids, rendered.trained
            if len(ids) > context + 1:
                data.truncated += 1
                ids, trained = ids[: context + 1], trained[: context + 1]
            if not any(trained[1:]):
                data.dropped += 1
                continue
            data.splits[target].append((ids, trained))
            if target == "val" and data.first_prompt is None:
                first_reply = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
                data.first_prompt = fmt.prompt_ids(messages[:first_reply])[-context:]
    if not data.splits["train"]:
        raise UsageError(f"{config.data} has no conversation with a reply that fits the context of {context} "
                         "tokens; give more (or shorter) conversations")
    if not data.splits["val"]:  # fewer than VAL_EVERY conversations: validate on the training ones
        data.splits["val"] = list(data.splits["train"])
    if progress is not None and (data.truncated or data.dropped):
        progress({"event": "warning", "message": f"{data.truncated} conversation(s) longer than the context "
                  f"({context} tokens) were cut to it; {data.dropped} left without any reply token were dropped"})
    return data


def initial_chat_weights(config, tokenizer, device: str):
    """(ModelConfig, weights) of the --init-from checkpoint, with the chat tokens added when `tokenizer` has them
    and the checkpoint's does not (gptscratch/chat/tokens.py)."""
    from ..chat.tokens import add_chat_tokens
    from ..tokenizers.chat import ChatTokenizer
    from .init_from import same_tokenizer

    loaded = ckpt.load_checkpoint(config.init_from, device=device)
    model_config, state = loaded.model.config, loaded.model.state_dict()
    if isinstance(tokenizer, ChatTokenizer) and not isinstance(loaded.tokenizer, ChatTokenizer):
        model_config, state, _ = add_chat_tokens(model_config, state, loaded.tokenizer, seed=config.seed)
    elif not same_tokenizer(loaded.tokenizer, tokenizer):
        raise UsageError(f"{config.init_from}'s tokenizer ({loaded.tokenizer.name}) is not the one the "
                         f"conversations were rendered with ({tokenizer.name}); drop --tokenizer")
    if "dropout" in config.model:
        model_config = model_config.replace(dropout=config.model["dropout"])
    return model_config, state


def pad_rows(rows: list[tuple[list[int], list[bool]]], pad_id: int, context_length: int | None = None):
    """(x, y) int64 (B, T): inputs and masked targets of conversation rows, right-padded (module docstring); T is
    the longest row rounded up to a multiple of 8, at most `context_length` (rows are already cut to fit it)."""
    import torch

    width = max(len(ids) - 1 for ids, _ in rows)
    width = -(-width // PAD_MULTIPLE) * PAD_MULTIPLE
    if context_length is not None:
        width = min(width, context_length)
    x = torch.full((len(rows), width), pad_id, dtype=torch.long)
    y = torch.full((len(rows), width), -1, dtype=torch.long)
    for row, (ids, trained) in enumerate(rows):
        inputs = torch.tensor(ids[:-1])
        targets = torch.tensor(ids[1:])
        targets[~torch.tensor(trained[1:], dtype=torch.bool)] = -1
        x[row, : len(inputs)], y[row, : len(targets)] = inputs, targets
    return x, y


class ConversationSampler:
    """Shuffled (x, y) batches of padded conversations, epoch after epoch; resumable (module docstring)."""

    def __init__(self, data: ConversationSet, split: str, batch_size: int, context_length: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        import torch

        self.rows, self.split = data.splits[split], split
        self.pad_id = data.tokenizer.eot_id
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.context_length = context_length
        self.generator = torch.Generator().manual_seed(seed)
        self._new_epoch()

    def _new_epoch(self) -> None:
        import torch

        self.epoch_start = self.generator.get_state()
        self.order = torch.randperm(len(self.rows), generator=self.generator).tolist()
        self.position = 0

    def next_batch(self):
        picks = []
        for _ in range(self.batch_size * self.world_size):
            if self.position == len(self.order):
                self._new_epoch()
            picks.append(self.order[self.position])
            self.position += 1
        mine = picks[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
        return pad_rows([self.rows[i] for i in mine], self.pad_id, self.context_length)

    def state_dict(self) -> dict:
        return {"epoch_start": self.epoch_start, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["epoch_start"])
        self._new_epoch()
        self.position = int(state["position"])


def conversation_eval_batches(data: ConversationSet, split: str, batch_size: int, context_length: int,
                              num_batches: int):
    """The same num_batches batches of held-out conversations every time (cycling when there are fewer)."""
    rows = data.splits[split]
    for batch in range(num_batches):
        picks = [rows[(batch * batch_size + i) % len(rows)] for i in range(batch_size)]
        yield pad_rows(picks, data.tokenizer.eot_id, context_length)
