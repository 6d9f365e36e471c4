"""The `tiny-sd` catalogue model: a Stable-Diffusion-shaped pipeline with seeded random weights.

No text-to-image weights are reachable offline, so tests and the offline demo build this one
(~7 MB, images are noise) and the service loads it through the same code as a real model.
`nexa pull tiny-sd` calls `build_tiny_pipeline` with the catalogue's cache path.
"""

from __future__ import annotations

from pathlib import Path

from nexa_common.staging import staged_folder

SEED = 0
MAX_TOKENS = 77  # CLIP's context; without it the tokenizer never truncates and the encoder overflows
HIDDEN = 32


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (GPT-2's and CLIP's table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def _byte_level_tokenizer():  # type: ignore[no-untyped-def]
    from transformers import CLIPTokenizer

    # Every byte is a symbol (alone and word-final), so any prompt tokenises without merges.
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TOKENS)


def _components() -> dict[str, object]:
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(SEED)
    tokenizer = _byte_level_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=HIDDEN,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=HIDDEN,
    )
    # Four blocks give Stable Diffusion's VAE scale factor of 8, so a 256x256 image is a 32x32
    # latent as in the real model; with fewer, the UNet's attention runs on 4-16x more positions
    # and the seed's 256x256, 20-step request takes minutes instead of about a second.
    vae = AutoencoderKL(
        block_out_channels=[16, 32, 32, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        norm_num_groups=16,
    )
    # Stable Diffusion 1.x's own scheduler settings.
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": scheduler,
        "safety_checker": None,
        "feature_extractor": None,
    }


def build_tiny_pipeline(dest: Path) -> None:
    """Build the tiny pipeline and save it in the diffusers folder layout at `dest`.

    It is written to a temporary folder beside `dest` and renamed into place, so a build that
    fails half-way never leaves a folder that looks like a model.
    """
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline(**_components(), requires_safety_checker=False)  # type: ignore[arg-type]
    with staged_folder(Path(dest)) as staging:
        pipeline.save_pretrained(staging, safe_serialization=True)  # type: ignore[attr-defined]
