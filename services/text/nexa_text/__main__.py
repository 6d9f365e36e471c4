from nexa_common.serve import main

from .settings import Settings

if __name__ == "__main__":
    main("nexa_text.app:create_app", Settings)
