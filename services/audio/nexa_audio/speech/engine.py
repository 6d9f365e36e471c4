"""A Piper voice (a VITS model in ONNX Runtime, with espeak-ng phonemes): one sentence in, samples out.

The voice runs in the request's worker thread. Piper splits a sentence further into espeak-ng
clauses and runs the model once per clause; the cancellation event is checked between them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nexa_common.catalogue import ResolvedModel, piper_config
from nexa_common.kit.memory import release_freed_memory
from nexa_common.kit.models import MIB, files_bytes

from ..settings import Settings


@dataclass(frozen=True)
class Synthesis:
    samples: np.ndarray  # float32 in [-1, 1], mono, at the voice's sample rate
    phoneme_ids: int  # what the model read (the `input_tokens` of a usage report)
    frames: int  # what it produced, in units of its hop length (the `output_tokens`)


class PiperEngine:
    """One loaded Piper voice: its speakers, its sample rate, and synthesis of one sentence."""

    def __init__(self, model_path: Path, settings: Settings) -> None:
        # Heavy imports, paid only when a voice is loaded.
        import onnxruntime
        from piper import PiperConfig, PiperVoice

        config_file = piper_config(model_path)
        raw = json.loads(config_file.read_text(encoding="utf-8"))
        options = onnxruntime.SessionOptions()
        # ONNX Runtime's default is every logical CPU; the service's thread setting, as Whisper gets.
        options.intra_op_num_threads = settings.threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=_providers(settings))
        self._voice = PiperVoice(session=session, config=PiperConfig.from_dict(raw))
        self.sample_rate: int = self._voice.config.sample_rate
        self._hop_length: int = self._voice.config.hop_length
        self.speakers: tuple[str, ...] = _speakers(raw, model_path)
        # ONNX Runtime sessions run concurrent calls safely; the phonemizer has a lock of its own.
        self.slots = settings.max_concurrency

    def close(self) -> None:
        """Free the ONNX Runtime session and give its memory back to the system.

        Dropping the session frees its buffers into glibc's heap, which keeps most of them (piper-joe,
        `python -m bench.voice_memory`: 81 MiB before the first load, 252 loaded, ~200 after unloading);
        trimming the heap returns them (99 MiB after each of 6 rounds), so a voice runs in-process rather
        than in a worker process (see the audio service's README).
        """
        del self._voice
        release_freed_memory()  # the session may sit in a reference cycle of Piper's objects

    def synthesize(self, sentence: str, speaker: int, cancel: threading.Event) -> Synthesis:
        from piper import SynthesisConfig

        # A one-speaker voice takes no speaker input at all (Piper drops the id itself).
        config = SynthesisConfig(speaker_id=speaker if len(self.speakers) > 1 else None)
        pieces, phoneme_ids = [], 0
        for chunk in self._voice.synthesize(sentence, syn_config=config):  # lazy: one model run per clause
            pieces.append(chunk.audio_float_array)
            phoneme_ids += len(chunk.phoneme_ids)
            if cancel.is_set():
                break
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return Synthesis(samples, phoneme_ids, -(-len(samples) // self._hop_length))


VOICE_RUNTIME_BYTES = 112 * MIB
"""A loaded voice beside its .onnx file: ONNX Runtime's session buffers and the phonemizer (measured:
170 MiB for the 63 MB piper-joe, with a sentence synthesised)."""


def voice_bytes(model: ResolvedModel) -> int:
    """The pool's estimate of a voice's memory, before it is loaded."""
    return files_bytes(model.path) + VOICE_RUNTIME_BYTES


def _providers(settings: Settings) -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if settings.device == "cpu" or (settings.device == "auto" and "CUDAExecutionProvider" not in available):
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in available:
        raise RuntimeError("NEXA_AUDIO_DEVICE=cuda, but this ONNX Runtime build has no CUDA provider.")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def voice_speakers(model_path: Path) -> tuple[str, ...]:
    """A voice's speakers read from its config alone (no model loaded): what a request's `voice` is
    checked against before the voice is loaded for it."""
    return _speakers(json.loads(piper_config(model_path).read_text(encoding="utf-8")), model_path)


def _speakers(config: dict[str, object], model_path: Path) -> tuple[str, ...]:
    """Speaker names in id order; a one-speaker voice is named after its dataset ("joe")."""
    id_map = config.get("speaker_id_map")
    if isinstance(id_map, dict) and id_map:
        return tuple(name for name, _ in sorted(id_map.items(), key=lambda item: item[1]))
    count = config.get("num_speakers")
    if isinstance(count, int) and count > 1:
        return tuple(str(i) for i in range(count))
    dataset = config.get("dataset")
    if isinstance(dataset, str) and dataset:
        return (dataset,)
    # Piper's file names read LANG_REGION-NAME-QUALITY.
    parts = model_path.name.removesuffix(".onnx").split("-")
    return (parts[1] if len(parts) == 3 else model_path.name.removesuffix(".onnx"),)
