"""The speech-to-text engine behind a small protocol, and its faster-whisper implementation.

The engine runs in a worker thread. It checks a cancellation event between segments, so a
client that goes away frees the model after the window being decoded, not after the whole file.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from nexa_common.kit.worker import WorkerEngine
from nexa_common.schemas.audio import TranscriptionSegment, TranscriptionWord

from .decode import SAMPLE_RATE, decode, is_silent
from .settings import Settings

Task = Literal["transcribe", "translate"]


@dataclass(frozen=True)
class TranscribeOptions:
    task: Task = "transcribe"
    language: str | None = None
    beam_size: int = 5
    temperature: float = 0.0
    prompt: str | None = None
    word_timestamps: bool = False


@dataclass
class Transcript:
    language: str
    duration: float
    segments: list[TranscriptionSegment] = field(default_factory=list)
    elapsed_s: float = 0.0
    cancelled: bool = False

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()

    @property
    def words(self) -> list[TranscriptionWord]:
        return [w for s in self.segments for w in (s.words or [])]


class Transcriber(Protocol):
    @property
    def languages(self) -> list[str]:
        """ISO-639-1 codes the model understands (just "en" for an English-only model)."""
        ...

    @property
    def multilingual(self) -> bool: ...

    def transcribe(self, audio_file: Path, options: TranscribeOptions, cancel: threading.Event) -> Transcript:
        """Decode and transcribe a file; raises decode.UndecodableAudio for what is not audio."""
        ...


def temperature_schedule(start: float) -> list[float]:
    # Whisper's fallback: retry a window at higher temperatures when decoding looks degenerate
    # (OpenAI documents temperature 0 as "increase automatically until thresholds are hit").
    steps = [round(start + 0.2 * i, 2) for i in range(6)]
    return [t for t in steps if t <= 1.0] or [start]


class WhisperEngine:
    """faster-whisper (CTranslate2) on one loaded model."""

    def __init__(self, model_dir: Path, settings: Settings) -> None:
        from faster_whisper import WhisperModel  # heavy import, paid only when a model is loaded

        self._model = WhisperModel(
            str(model_dir),
            device=settings.device,
            compute_type=settings.resolved_compute_type(),
            cpu_threads=settings.threads,
            # One CTranslate2 worker per admitted request, so concurrent requests really run in parallel.
            num_workers=settings.max_concurrency,
            local_files_only=True,
        )
        self._vad = settings.vad
        self.slots = settings.max_concurrency

    def close(self) -> None:
        del self._model

    @property
    def languages(self) -> list[str]:
        return list(self._model.supported_languages)

    @property
    def multilingual(self) -> bool:
        return bool(self._model.model.is_multilingual)

    def transcribe(self, audio_file: Path, options: TranscribeOptions, cancel: threading.Event) -> Transcript:
        started = time.perf_counter()
        audio = decode(audio_file)
        duration = len(audio) / SAMPLE_RATE
        fallback_language = options.language or "en"
        if cancel.is_set():  # the client left while the file was decoding
            return Transcript(fallback_language, duration, cancelled=True)
        if is_silent(audio):
            # Whisper invents words ("you", "Thank you.") for silence when VAD is off; skip the model.
            return Transcript(fallback_language, duration, elapsed_s=time.perf_counter() - started)
        transcript = self._run(audio, options, cancel)
        transcript.duration = duration
        transcript.elapsed_s = time.perf_counter() - started
        return transcript

    def _run(self, audio: np.ndarray, options: TranscribeOptions, cancel: threading.Event) -> Transcript:
        segments, info = self._model.transcribe(
            audio,
            language=options.language,
            task=options.task,
            beam_size=options.beam_size,
            temperature=temperature_schedule(options.temperature),
            initial_prompt=options.prompt or None,
            word_timestamps=options.word_timestamps,
            vad_filter=self._vad,
        )
        transcript = Transcript(info.language, info.duration)
        for segment in segments:  # lazy: each step decodes the next 30 s window
            transcript.segments.append(_wire_segment(segment, len(transcript.segments)))
            if cancel.is_set():
                transcript.cancelled = True
                break
        return transcript


class WhisperWorker(WorkerEngine):
    """A WhisperEngine in a worker process: CTranslate2 keeps memory in the process after a model is
    freed (measured: tens of MiB per load), so unloading one ends its worker instead."""

    languages: list[str]
    multilingual: bool
    slots: int

    def __init__(self, model_dir: Path, settings: Settings) -> None:
        super().__init__(
            "nexa_audio.engine:WhisperEngine",
            (model_dir, settings),
            attributes=("languages", "multilingual", "slots"),
            calls={"transcribe": True},
            name=model_dir.name,
        )

    def transcribe(self, audio_file: Path, options: TranscribeOptions, cancel: threading.Event) -> Transcript:
        result: Transcript = self.call("transcribe", audio_file, options, cancel)
        return result


def _wire_segment(segment, index: int) -> TranscriptionSegment:  # type: ignore[no-untyped-def]
    words = None
    if segment.words is not None:
        words = [
            TranscriptionWord(word=w.word, start=round(w.start, 3), end=round(w.end, 3), probability=w.probability)
            for w in segment.words
        ]
    return TranscriptionSegment(
        id=index,
        seek=segment.seek,
        start=round(segment.start, 3),
        end=round(segment.end, 3),
        text=segment.text,
        tokens=list(segment.tokens),
        temperature=segment.temperature if segment.temperature is not None else 0.0,
        avg_logprob=segment.avg_logprob,
        compression_ratio=segment.compression_ratio,
        no_speech_prob=segment.no_speech_prob,
        words=words,
    )
