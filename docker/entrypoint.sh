#!/bin/sh
# Link the models baked into the image (/opt/nexa/models, laid out as a cache) into the model cache
# ($NEXA_CACHE, usually a mounted volume) unless the cache has its own copy, then run the component.
set -eu
baked=/opt/nexa/models
if [ -d "$baked" ] && [ -n "${NEXA_CACHE:-}" ]; then
    for item in "$baked"/*/*; do
        [ -e "$item" ] || continue
        link="$NEXA_CACHE/${item#"$baked"/}"
        if [ ! -e "$link" ]; then
            mkdir -p "$(dirname "$link")"
            ln -sfn "$item" "$link"
        fi
    done
fi
exec "$@"
