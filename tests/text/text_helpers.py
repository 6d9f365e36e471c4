"""Requests the text tests share (the seed's examples, verbatim); the stream and metrics readers
live in `support`, shared with tests/throughput."""

from __future__ import annotations

SEED_COMPLETION = {
    "prompt": "Tell me a story",
    "temperature": 1,
    "max_new_tokens": 16,  # the seed says 128; fewer keeps the suite fast
    "top_k": 50,
    "top_p": 1,
    "stop_words": ["string"],
}

SEED_CHAT = {
    "messages": [{"role": "user", "content": "Tell me a story"}],
    "max_tokens": 16,
    "temperature": 0.1,
    "stream": False,
    "stop_words": [],
}

USER_DETAIL = {
    "type": "function",
    "function": {
        "name": "UserDetail",
        "parameters": {
            "properties": {
                "name": {"description": "The user's name", "type": "string"},
                "age": {"description": "The user's age", "type": "integer"},
            },
            "required": ["name", "age"],
            "type": "object",
        },
    },
}

SEED_FUNCTION_CALLING = {
    "messages": [{"role": "user", "content": "Extract Jason is 25 years old"}],
    "tools": [USER_DETAIL],
    "tool_choice": "auto",
}
