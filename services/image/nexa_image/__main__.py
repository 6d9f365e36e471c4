from nexa_common.serve import main

from .settings import Settings

main("nexa_image.app:create_app", Settings)
