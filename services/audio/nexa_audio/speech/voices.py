"""OpenAI's voice names, mapped onto the speakers of the voice model serving the request.

A one-speaker voice (piper-joe) answers to every OpenAI name and to its own speaker name. A
multi-speaker voice gives the OpenAI names its first speakers in order (alloy the first, ash the
second, ...), so different names sound different; its own speaker names work too.
"""

from __future__ import annotations

from nexa_common.errors import APIError
from nexa_common.schemas.audio import VoiceReference

# In the order of OpenAI's documentation, which fixes which speaker each one gets.
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar",
)  # fmt: skip
_LISTED_SPEAKERS = 20  # an error lists this many of a voice's own speaker names


def voice_table(speakers: tuple[str, ...]) -> dict[str, int]:
    """Every accepted voice name (lower case) and the speaker id it selects."""
    table = {name.lower(): i for i, name in enumerate(speakers)}
    for i, name in enumerate(OPENAI_VOICES):
        table.setdefault(name, i % len(speakers))
    return table


def pick(voice: str | VoiceReference | None, speakers: tuple[str, ...], model: str) -> int:
    """The speaker id for the request's `voice`; raises a 400 listing the voices when it is unknown."""
    if voice is None:
        return 0
    name = voice.id if isinstance(voice, VoiceReference) else voice
    speaker = voice_table(speakers).get(name.strip().lower())
    if speaker is not None:
        return speaker
    own = ", ".join(speakers[:_LISTED_SPEAKERS])
    more = f" and {len(speakers) - _LISTED_SPEAKERS} more" if len(speakers) > _LISTED_SPEAKERS else ""
    raise APIError(
        400,
        f"Unknown voice '{name[:100]}' for model '{model}'. Voices: {', '.join(OPENAI_VOICES)}; "
        f"and the model's own speaker{'s' if len(speakers) > 1 else ''}: {own}{more}.",
        param="voice",
        code="invalid_voice",
    )
