"""Chat: conversations, templates and the special tokens that turn a base model into one you can talk to.

    conversations.py  the {"messages": [...]} data, read from JSONL / parquet / the Hub, checked row by row
    builtin.py        builtin-chat: questions about digits, generated offline (the demonstration set)
    template.py       conversation → ids + which ids train (gptscratch's template, or the model's own Jinja one)
    tokens.py         adding gptscratch's chat tokens to a base model: vocabulary rows grown and initialised

Used by `gptscratch train sft` (gptscratch/training/sft.py), `gptscratch chat` (gptscratch/generation/chat.py)
and `gptscratch eval chat` (gptscratch/evaluation/chat.py). Importing this package imports no torch.
"""

from .conversations import BUILTIN, ROLES, check_messages, read_conversations
from .template import ChatFormat, GptScratchFormat, JinjaFormat, Rendered, chat_format, needs_chat_tokens

__all__ = ["BUILTIN", "ROLES", "ChatFormat", "GptScratchFormat", "JinjaFormat", "Rendered", "chat_format",
           "check_messages", "needs_chat_tokens", "read_conversations"]
