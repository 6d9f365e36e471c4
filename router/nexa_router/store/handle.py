"""The store as the routes see it: opened on first use, expired responses purged in the background,
and every database failure answered as a 503 that says the store is unavailable (never a 500)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from nexa_common.errors import APIError

from ..settings import Settings
from .records import StoredResponse

if TYPE_CHECKING:
    from .database import ResponseDatabase

log = logging.getLogger("nexa.router.store")
T = TypeVar("T")


def now_ms() -> int:
    return int(time.time() * 1000)


class ResponseStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ttl_ms = int(settings.responses_ttl_s * 1000)
        self._database: ResponseDatabase | None = None
        self._opening = asyncio.Lock()
        self._purger: asyncio.Task[None] | None = None

    @property
    def backend(self) -> str:
        return "postgresql" if self.settings.database_url else "sqlite"

    async def _open(self) -> ResponseDatabase:
        if self._database is not None:
            return self._database
        async with self._opening:
            if self._database is None:
                from . import database  # deferred: see the module's docstring

                url = self.settings.database_url
                target = database.async_url(url) if url else database.sqlite_url(self.settings.store_path)
                timeout_s = self.settings.store_timeout_s
                self._database = await asyncio.wait_for(database.ResponseDatabase.open(target, timeout_s), timeout_s)
                log.info("response store open (%s)", self.backend)
                self._purger = asyncio.create_task(self._purge_forever(self._database))
        return self._database

    async def _run(self, operation: Callable[[ResponseDatabase], Awaitable[T]]) -> T:
        try:
            database = await self._open()
            return await asyncio.wait_for(operation(database), self.settings.store_timeout_s)
        except (asyncio.CancelledError, APIError):
            raise
        except Exception as exc:
            # Connection refused, timeouts, a locked file, a full disk: the store is unavailable for
            # now. The message names no host nor path (they are the deployment's own business).
            log.warning("response store (%s) failed: %s: %s", self.backend, type(exc).__name__, str(exc)[:300])
            raise APIError(
                503,
                f"The response store ({self.backend}) is not available right now; retry shortly.",
                code="store_unavailable",
                headers={"Retry-After": "2"},
            ) from None

    def record(
        self,
        response: dict[str, object],
        input_items: list[dict[str, object]],
        context: list[dict[str, object]],
        previous_response_id: str | None,
    ) -> StoredResponse:
        return StoredResponse(
            id=str(response["id"]),
            created_at=int(response["created_at"]),  # type: ignore[call-overload]
            expires_at_ms=now_ms() + self.ttl_ms,
            previous_response_id=previous_response_id,
            response=response,
            input_items=input_items,
            context=context,
        )

    async def put(self, record: StoredResponse) -> None:
        await self._run(lambda db: db.put(record))

    async def get(self, response_id: str) -> StoredResponse | None:
        """The response, or None when it was never stored, was deleted or has expired."""
        return await self._run(lambda db: db.get(response_id, now_ms()))

    async def delete(self, response_id: str) -> bool:
        return await self._run(lambda db: db.delete(response_id, now_ms()))

    async def _purge_forever(self, database: ResponseDatabase) -> None:
        while True:
            try:
                removed = await asyncio.wait_for(database.purge(now_ms()), self.settings.store_timeout_s)
                if removed:
                    log.info("purged %d expired responses", removed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an unavailable database is retried at the next round
                log.warning("purging expired responses failed: %s", type(exc).__name__)
            await asyncio.sleep(self.settings.store_purge_interval_s)

    async def close(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        if self._database is not None:
            await self._database.close()
            self._database = None
