"""Docker HEALTHCHECK: GET a route of this container's component on 127.0.0.1; exit 0 only on 200.

usage: python3 healthcheck.py COMPONENT PATH   (e.g. `text /ready`); the port is NEXA_<COMPONENT>_PORT.
http.client, not urllib: proxy variables in the container's environment must not apply.
"""

from __future__ import annotations

import http.client
import os
import sys

DEFAULT_PORTS = {"router": 8000, "text": 8001, "image": 8002, "audio": 8003}


def main(component: str, path: str) -> int:
    port = int(os.environ.get(f"NEXA_{component.upper()}_PORT") or DEFAULT_PORTS[component])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        connection.request("GET", path)
        status = connection.getresponse().status
    except OSError as exc:
        print(f"{component}: {type(exc).__name__}")
        return 1
    finally:
        connection.close()
    print(f"{component}: GET {path} -> {status}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
