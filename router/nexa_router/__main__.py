from nexa_common.serve import main

from .settings import Settings

main("nexa_router.app:create_app", Settings)
