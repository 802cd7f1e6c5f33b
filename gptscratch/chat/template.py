"""Chat templates: a conversation (a list of messages) → token ids, and which of them the model learns to write.

A chat model is still a next-token predictor. What makes it answer instead of continuing the text is the *format*
it was fine-tuned on: every message is framed by special tokens that say who is speaking, and the model learns to
write the assistant's part — and the token that ends it, which is how generation knows when to stop.

gptscratch's own template (for models trained here; special tokens from gptscratch/tokenizers/chat.py):

    <start> <|system|>Be brief.<|end|> <|user|>What is the maximum of 3 8 1?<|end|> <|assistant|>8<|end|>
                                                                                     ^^^^^^^^^^^^^^^^ header: given
                                                                                                  ^^^^^^ trained
<start> is the tokenizer's start id (EOT for gptscratch tokenizers: a base model saw every document after one).
A reply is asked for by ending the prompt with the header `<|assistant|>` (the *generation prompt*).

A pretrained model brings its own template: a Jinja program in its tokenizer_config.json (`chat_template`) or a
chat_template.jinja file, e.g. Qwen's `<|im_start|>user\\n...<|im_end|>\\n`. It is rendered here with Jinja2 — the
library and the settings (sandboxed, trim_blocks, lstrip_blocks) that `transformers`' apply_chat_template uses,
so the text is the same (a test checks it against transformers).

Which tokens train (`Rendered.trained`): only the assistant's replies, including their end-of-turn token, never the
system prompt, the user's words or the headers (the *loss mask*; see gptscratch/training/sft.py for why). For a
Jinja template the reply's tokens are found by rendering twice: the conversation up to the reply with the
generation prompt, and up to the reply's end; what the second adds to the first is the reply. Each piece is
tokenized on its own (`encode_with_specials`), so the boundaries are exact; a template whose earlier text changes
when a turn is added is refused, since no token could then be said to belong to one turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gptscratch.errors import UsageError

TEMPLATE_FILE = "chat_template.jinja"
TOKENIZER_CONFIG = "tokenizer_config.json"


@dataclass
class Rendered:
    """Token ids of a rendered conversation and, per id, whether the model is trained to write it."""

    ids: list[int]
    trained: list[bool]


class ChatFormat:
    """How conversations become ids for one tokenizer. `stop_ids`: the ids that end an assistant turn."""

    name: str = ""
    stop_ids: tuple[int, ...] = ()

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def render(self, messages: list[dict], add_generation_prompt: bool = False) -> Rendered:
        raise NotImplementedError

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """The ids a model continues from to write the next assistant reply."""
        return self.render(messages, add_generation_prompt=True).ids

    def describe(self) -> dict:
        return {"name": self.name}


class GptScratchFormat(ChatFormat):
    """gptscratch's template over a ChatTokenizer (module docstring)."""

    name = "gptscratch"

    def __init__(self, tokenizer):
        super().__init__(tokenizer)
        ids = tokenizer.special_ids
        self.role_ids = {"system": ids["<|system|>"], "user": ids["<|user|>"], "assistant": ids["<|assistant|>"]}
        self.end_id = ids["<|end|>"]
        self.stop_ids = (self.end_id, tokenizer.eot_id)

    def render(self, messages: list[dict], add_generation_prompt: bool = False) -> Rendered:
        ids, trained = [self.tokenizer.start_id], [False]
        for message in messages:
            reply = message["role"] == "assistant"
            # A reply the model wrote in this session carries its exact ids: its text may not re-encode to them
            # (a byte-level model can write a broken UTF-8 sequence), and the KV cache holds those ids.
            body = list(message.get("token_ids") or self.tokenizer.encode(message["content"])) + [self.end_id]
            ids += [self.role_ids[message["role"]], *body]
            trained += [False] + [reply] * len(body)
        if add_generation_prompt:
            ids.append(self.role_ids["assistant"])
            trained.append(False)
        return Rendered(ids, trained)


class JinjaFormat(ChatFormat):
    """A Hugging Face chat template (Jinja source) over the model's own tokenizer (module docstring)."""

    name = "jinja"

    def __init__(self, tokenizer, source: str, special: dict | None = None, origin: str = ""):
        super().__init__(tokenizer)
        self.source, self.origin = source, origin
        self.special = special or {}                    # bos_token, eos_token, ... as the template expects them
        self.program = _compile(source, origin)
        self.stop_ids = tuple(dict.fromkeys([*self._turn_end_ids(), tokenizer.eot_id]))

    def text(self, messages: list[dict], add_generation_prompt: bool = False) -> str:
        """The rendered text, exactly as transformers' apply_chat_template(tokenize=False) gives it."""
        try:
            return self.program.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                       **self.special)
        except Exception as exc:  # noqa: BLE001 - a template's own raise_exception, or a Jinja error
            raise UsageError(f"the chat template {self.origin} cannot render this conversation ({exc}); "
                             "check the roles and order of its messages") from None

    def render(self, messages: list[dict], add_generation_prompt: bool = False) -> Rendered:
        ids: list[int] = []
        trained: list[bool] = []
        done = ""                                       # the text already turned into ids
        for index, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before = self.text(messages[:index], add_generation_prompt=True)
            through = self.text(messages[: index + 1])
            for text, reply in ((before, False), (through, True)):
                if not text.startswith(done):
                    raise UsageError(f"the chat template {self.origin} rewrites earlier turns when a turn is "
                                     "added, so replies cannot be located for the loss mask; use "
                                     "--chat-template gptscratch or another template")
                piece = self.tokenizer.encode_with_specials(text[len(done):])
                ids += piece
                trained += [reply] * len(piece)
                done = text
        final = self.text(messages, add_generation_prompt=add_generation_prompt)
        if not final.startswith(done):
            raise UsageError(f"the chat template {self.origin} rewrites earlier turns; use --chat-template "
                             "gptscratch or another template")
        piece = self.tokenizer.encode_with_specials(final[len(done):])
        return Rendered(ids + piece, trained + [False] * len(piece))

    def _turn_end_ids(self) -> list[int]:
        """The special token(s) a template writes right after a reply: what generation stops at."""
        probe = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "PROBE"}]
        try:
            text = self.text(probe)
        except UsageError:
            return []
        after = text[text.rfind("PROBE") + len("PROBE"):]
        specials = self.tokenizer.special_tokens()
        ids = [i for i in self.tokenizer.encode_with_specials(after) if i in specials.values()]
        return ids[:1]

    def describe(self) -> dict:
        return {"name": self.name, "origin": self.origin}


def _compile(source: str, origin: str):
    """The template compiled as transformers compiles it: a sandboxed, immutable Jinja2 environment with
    trim_blocks/lstrip_blocks, loop controls, `raise_exception`, `strftime_now`, a `tojson` that keeps non-ASCII,
    and `{% generation %}` blocks (which mark replies for transformers' own masks) rendered as their content."""
    try:
        import jinja2
        from jinja2 import nodes
        from jinja2.ext import Extension, loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ModuleNotFoundError:
        raise UsageError("chat templates need jinja2: `pip install jinja2`") from None

    class GenerationBlock(Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_content"), [], [], body).set_lineno(lineno)

        def _content(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def strftime_now(format_string):
        import datetime

        return datetime.datetime.now().strftime(format_string)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                extensions=[GenerationBlock, loopcontrols])
    environment.filters["tojson"] = lambda value, indent=None, separators=None, sort_keys=False: json.dumps(
        value, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = strftime_now
    try:
        return environment.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as exc:
        raise UsageError(f"chat template {origin} is not valid Jinja ({exc.message}, line {exc.lineno})") from None


def template_from_folder(folder: Path) -> tuple[str, dict, str] | None:
    """(Jinja source, special-token variables, origin) of a tokenizer folder's own chat template, or None.

    Looks where transformers looks: chat_template.jinja, then tokenizer_config.json's "chat_template" (a string,
    or a list of named templates of which "default" is used)."""
    folder = Path(folder)
    config = {}
    if (folder / TOKENIZER_CONFIG).is_file():
        try:
            config = json.loads((folder / TOKENIZER_CONFIG).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
    special = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            special[key] = value
    if (folder / TEMPLATE_FILE).is_file():
        return (folder / TEMPLATE_FILE).read_text(encoding="utf-8"), special, str(folder / TEMPLATE_FILE)
    source = config.get("chat_template")
    if isinstance(source, list):
        named = {entry.get("name"): entry.get("template") for entry in source if isinstance(entry, dict)}
        source = named.get("default")
    if isinstance(source, str) and source.strip():
        return source, special, str(folder / TOKENIZER_CONFIG)
    return None


def tokenizer_folder(tokenizer) -> Path | None:
    """The folder of a tokenizer made of files (a pretrained model's), else None."""
    folder = getattr(tokenizer, "folder", None)
    if folder is None and getattr(tokenizer, "base", None) is not None:
        folder = getattr(tokenizer.base, "folder", None)
    return Path(folder) if folder is not None else None


def chat_format(tokenizer, choice: str = "auto") -> ChatFormat:
    """The template for `tokenizer`: "gptscratch" (needs a ChatTokenizer), "auto" (the tokenizer folder's own
    template when it has one, else gptscratch's) or a Jinja file's path."""
    from gptscratch.tokenizers.chat import ChatTokenizer

    if choice not in ("auto", "gptscratch"):
        path = Path(choice).expanduser()
        if not path.is_file():
            raise UsageError(f"--chat-template {choice!r} is neither auto, gptscratch nor a Jinja file; pass one "
                             "of those")
        folder = tokenizer_folder(tokenizer)
        special = (template_from_folder(folder) or ("", {}, ""))[1] if folder else {}
        return JinjaFormat(tokenizer, path.read_text(encoding="utf-8"), special, str(path))
    if isinstance(tokenizer, ChatTokenizer):
        return GptScratchFormat(tokenizer)
    folder = tokenizer_folder(tokenizer)
    own = template_from_folder(folder) if folder is not None and choice == "auto" else None
    if own is not None:
        return JinjaFormat(tokenizer, *own)
    raise UsageError(f"the {tokenizer.name} tokenizer has no chat tokens and no chat template; fine-tune the "
                     "model with `gptscratch train sft` first (it adds them)")


def needs_chat_tokens(tokenizer, choice: str = "auto") -> bool:
    """Would `chat_format` need gptscratch's special tokens added to this tokenizer first?"""
    from gptscratch.tokenizers.chat import ChatTokenizer

    if isinstance(tokenizer, ChatTokenizer):
        return False
    if choice == "gptscratch":
        return True
    if choice != "auto":
        return False
    folder = tokenizer_folder(tokenizer)
    return folder is None or template_from_folder(folder) is None
