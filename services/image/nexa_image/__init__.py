"""nexa image service: txt2img and img2img with diffusers and torch."""
