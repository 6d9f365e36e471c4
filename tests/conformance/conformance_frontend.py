"""A chat request shaped like a chat front end's (Open WebUI's built-in tools, a long system prompt):
written here, not copied. 36 tools whose parameters use the property names that schema checks
mistake for keywords (`pattern`, `type`, `query`, `maxLength`, `minItems`, `$ref`, ...), real
agent limits (`maxLength: 524288`), defaults, examples, `$defs` and `anyOf` with null; and a
system prompt of retrieved knowledge of more than 6k tokens.
"""

from __future__ import annotations

from typing import Any

# The property names a keyword-blind schema check refused (issue #22).
KEYWORD_NAMES = ("pattern", "type", "minLength", "maxLength", "minItems", "maxItems", "$ref")


def _text(description: str, max_length: int = 524288, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, "maxLength": max_length, **extra}


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str], **extra: Any) -> dict:
    parameters = {"type": "object", "properties": properties, "required": required, **extra}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def frontend_tools() -> list[dict[str, Any]]:
    page = {"type": "integer", "description": "Page of results, from 1.", "default": 1, "minimum": 1}
    limit = {"type": "integer", "description": "Most results to return.", "default": 10, "maximum": 100}
    tools = [
        _tool("grep_knowledge_files", "Search the attached knowledge files with a regular expression.",
              {"pattern": _text("Regular expression to look for.", examples=["TODO|FIXME"]),
               "type": {"type": "string", "enum": ["file", "chunk"], "default": "chunk"},
               "maxLength": {"type": "integer", "description": "Longest excerpt to return.", "default": 400}},
              ["pattern"]),
        _tool("search_web", "Search the web and return the best pages.",
              {"query": _text("What to search for."), "count": limit}, ["query"]),
        _tool("fetch_url", "Fetch a web page as text.",
              {"url": _text("The page's address.", 2048, format="uri"),
               "maxLength": {"type": "integer", "description": "Characters to keep.", "default": 524288}},
              ["url"]),
        _tool("query_knowledge_bases", "Semantic search over the user's knowledge bases.",
              {"query": _text("The question."), "minItems": {"type": "integer", "description": "Fewest chunks."},
               "maxItems": {"type": "integer", "description": "Most chunks."}}, ["query"]),
        _tool("view_knowledge_file", "Read one file of a knowledge base.",
              {"file_id": _text("The file's id.", 128), "$ref": _text("A revision reference, e.g. a commit.", 128)},
              ["file_id"]),
        _tool("list_knowledge_bases", "List the knowledge bases the user can read.", {"page": page}, []),
        _tool("search_notes", "Find the user's notes.",
              {"query": _text("Words to find."), "type": {"type": "string", "enum": ["note", "folder"]}}, ["query"]),
        _tool("write_note", "Create or replace a note.",
              {"title": _text("Note title.", 256), "content": _text("Markdown body."),
               "tags": {"type": "array", "items": {"type": "string", "maxLength": 64}, "minItems": 0, "maxItems": 16}},
              ["title", "content"]),
        _tool("search_chats", "Search earlier conversations.",
              {"query": _text("Words to find."), "minLength": {"type": "integer", "description": "Shortest match."}},
              ["query"]),
        _tool("get_chat", "Open an earlier conversation.", {"chat_id": _text("The chat's id.", 64)}, ["chat_id"]),
        _tool("add_memory", "Remember a fact about the user.", {"content": _text("The fact.")}, ["content"]),
        _tool("search_memories", "Recall facts about the user.",
              {"query": _text("What to recall."), "count": limit}, ["query"]),
        _tool("delete_memory", "Forget a remembered fact.", {"memory_id": _text("The memory's id.", 64)}, ["memory_id"]),
        _tool("execute_code", "Run Python in the sandbox and return its output.",
              {"code": _text("Python source."), "timeout": {"type": "number", "default": 30}}, ["code"]),
        _tool("generate_image", "Make an image from a description.",
              {"prompt": _text("What to draw.", 4000),
               "size": {"type": "string", "enum": ["256x256", "512x512", "1024x1024"], "default": "512x512"}},
              ["prompt"]),
        _tool("edit_image", "Change an image according to an instruction.",
              {"image_id": _text("The image's id.", 64), "instruction": _text("What to change.", 4000)},
              ["image_id", "instruction"]),
        _tool("get_current_time", "The current date and time.", {"timezone": _text("IANA zone.", 64)}, []),
        _tool("calculator", "Evaluate an arithmetic expression.", {"expression": _text("E.g. 2*(3+4).", 1024)},
              ["expression"]),
        _tool("get_weather", "Weather for a place.",
              {"location": _text("City and country.", 256),
               "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"}}, ["location"]),
        _tool("translate_text", "Translate text.",
              {"text": _text("The text."), "target": _text("Target language code.", 16)}, ["text", "target"]),
        _tool("summarize_document", "Summarise an attached document.",
              {"document_id": _text("The document's id.", 64),
               "maxLength": {"type": "integer", "description": "Longest summary, in words.", "default": 200}},
              ["document_id"]),
        _tool("list_files", "List files in a folder of the workspace.",
              {"path": _text("Folder path.", 4096), "pattern": _text("Glob, e.g. *.md.", 1024)}, ["path"]),
        _tool("read_file", "Read a file of the workspace.",
              {"path": _text("File path.", 4096),
               "range": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}}, ["path"]),
        _tool("write_file", "Write a file of the workspace.",
              {"path": _text("File path.", 4096), "content": _text("New content.")}, ["path", "content"]),
        _tool("search_files", "Search file contents in the workspace.",
              {"pattern": _text("Regular expression."), "path": _text("Folder to search.", 4096),
               "type": {"type": "string", "description": "File type, e.g. py.", "maxLength": 16}},
              ["pattern"]),
        _tool("create_event", "Add an event to the calendar.",
              {"title": _text("Event title.", 256), "start": {"type": "string", "format": "date-time"},
               "attendees": {"type": "array", "items": {"$ref": "#/$defs/person"}, "maxItems": 20}},
              ["title", "start"],
              **{"$defs": {"person": {"type": "object", "properties": {"name": _text("Name.", 128),
                                                                       "email": _text("Address.", 256, format="email")},
                                      "required": ["name"]}}}),
        _tool("list_events", "Events in a date range.",
              {"from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"}}, []),
        _tool("send_email", "Send an email.",
              {"to": {"type": "array", "items": _text("Address.", 256), "minItems": 1},
               "subject": _text("Subject.", 998), "body": _text("Body.")}, ["to", "subject", "body"]),
        _tool("create_task", "Add a task to the list.",
              {"title": _text("Task.", 256), "due": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}],
                                                      "default": None}}, ["title"]),
        _tool("complete_task", "Mark a task done.", {"task_id": _text("The task's id.", 64)}, ["task_id"]),
        _tool("run_sql", "Run a read-only SQL query on the analytics database.",
              {"query": _text("SQL."), "maxItems": {"type": "integer", "description": "Row limit.", "default": 100}},
              ["query"]),
        _tool("http_request", "Call an HTTP API.",
              {"method": {"type": "string", "enum": ["GET", "POST", "PUT", "DELETE"]},
               "url": _text("Address.", 2048), "body": {"type": ["string", "null"], "maxLength": 524288}},
              ["method", "url"]),
        _tool("youtube_transcript", "The transcript of a video.", {"video_url": _text("Video address.", 2048)},
              ["video_url"]),
        _tool("wikipedia", "Look a topic up on Wikipedia.",
              {"query": _text("Topic."), "lang": {"type": "string", "pattern": "^[a-z]{2}$", "default": "en"}},
              ["query"]),
        _tool("convert_units", "Convert between units.",
              {"value": {"type": "number"}, "from": _text("Unit.", 32), "to": _text("Unit.", 32)},
              ["value", "from", "to"]),
        _tool("schema_lookup", "Describe a JSON schema keyword.",
              {"$ref": _text("A JSON pointer, e.g. #/$defs/item.", 512),
               "minLength": {"type": "integer"}, "maxLength": {"type": "integer"},
               "pattern": _text("A keyword name pattern.", 512)},
              ["$ref"]),
    ]  # fmt: skip
    return tools


_PARAGRAPHS = (
    "The deployment guide describes how the service is installed on a single machine, how its "
    "configuration is read from environment variables, and how the logs are collected. Every "
    "component writes one JSON line per event, with the request identifier, so that a request can "
    "be followed from the public router to the model service that answered it.",
    "Capacity planning starts from the memory each model needs: the weights, which are mapped from "
    "the file, and the key and value cache, which grows with the context. A small model with a long "
    "context may need more memory for its cache than for its weights, which is why the context is "
    "bounded by a setting.",
    "The support rota lists who answers pages during the week. Escalations go first to the on-call "
    "engineer, then to the team lead, and only then to the vendor. Each incident gets a short write-up "
    "that says what happened, what was changed, and what will prevent it next time.",
    "Meeting notes from the planning session record three decisions: the batch size stays at eight "
    "until the new benchmarks are in, the image service keeps its outputs for one day, and the "
    "documentation moves next to the code it describes so that both change in the same commit.",
    "The glossary defines the terms used across the knowledge base: a route is a path the API "
    "answers, a service is a process hosting models of one modality, a model pool is the set of "
    "models a service may load, and a grammar is the set of rules that constrains generated text.",
)


def knowledge_prompt(min_words: int = 2500) -> str:
    """A system prompt carrying retrieved knowledge, as front ends send with every message (about
    3.2k tokens; with the 36 tools the prompt is about 6.8k, like Open WebUI's 6.6k)."""
    parts = [
        "You are a helpful assistant. Use the tools when they help. Answer briefly.",
        "The following excerpts were retrieved from the user's knowledge base:",
    ]
    words, i = 0, 0
    while words < min_words:
        text = f"[source {i + 1}] {_PARAGRAPHS[i % len(_PARAGRAPHS)]}"
        parts.append(text)
        words += len(text.split())
        i += 1
    return "\n\n".join(parts)


def frontend_request(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": knowledge_prompt()},
            {"role": "user", "content": "Find the notes that mention the batch size."},
        ],
        "tools": frontend_tools(),
        "tool_choice": "auto",
        "stream": False,
        "max_completion_tokens": 48,
        "temperature": 0,
        "seed": 1,
        # What such front ends send besides: advisory and unknown fields, which must not break anything.
        "user": "someone@example.com",
        "metadata": {"chat_id": "c1"},
        "stream_options": None,
    }


def keyword_named_schema(name: str) -> dict[str, Any]:
    """Parameters with one property called `name`, next to an ordinary one; every string bounded, so
    a greedy answer always closes within the token limit."""
    values: dict[str, dict[str, Any]] = {
        "pattern": {"type": "string", "maxLength": 40},
        "type": {"type": "string", "enum": ["file", "directory"]},
        "minLength": {"type": "integer"},
        "maxLength": {"type": "integer"},
        "minItems": {"type": "integer"},
        "maxItems": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
        "$ref": {"type": "string", "maxLength": 40},
    }
    return {
        "type": "object",
        "properties": {name: values[name], "note": {"type": "string", "maxLength": 24, "default": "x"}},
        "required": [name, "note"],
        "additionalProperties": False,
    }
