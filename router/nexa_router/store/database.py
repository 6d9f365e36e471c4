"""The responses table on SQLAlchemy Core (asyncio): one set of queries for SQLite and PostgreSQL.

Imported only when the store is first used (see `handle.py`): SQLAlchemy and its drivers add
about 20 MB to a process, which a router that only proxies should not carry.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, MetaData, String, Table, delete, event, insert, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .records import StoredResponse

log = logging.getLogger("nexa.router.store")

metadata = MetaData()
responses = Table(
    "nexa_responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False, index=True),
    Column("previous_response_id", String(64), nullable=True),
    Column("response", JSON, nullable=False),
    Column("input_items", JSON, nullable=False),
    Column("context", JSON, nullable=False),
)

# The async driver of each database SQLAlchemy is given a plain URL for.
_ASYNC_DRIVERS = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": "aiosqlite"}


def async_url(url: str) -> URL:
    """`postgresql://…` (as operators write it) → `postgresql+asyncpg://…`; an explicit driver stays."""
    parsed = make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":  # Heroku-style spelling
        backend = "postgresql"
    if not driver:
        driver = _ASYNC_DRIVERS.get(backend, "")
    return parsed.set(drivername=f"{backend}+{driver}" if driver else backend)


def sqlite_url(path: Path) -> URL:
    return URL.create("sqlite+aiosqlite", database=str(path))


class ResponseDatabase:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, url: URL, timeout_s: float) -> ResponseDatabase:
        """Connect and create the table when missing."""
        if url.get_backend_name() == "sqlite":
            if url.database:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            # The busy timeout lets two routers on one file (local mode) wait for each other's writes.
            engine = create_async_engine(url, connect_args={"timeout": timeout_s})
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            # pre_ping: a connection the database closed (restart, failover) is replaced, not failed on.
            engine = create_async_engine(
                url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=_pg_timeouts(url, timeout_s)
            )
        database = cls(engine)
        try:
            await database._create_table()
        except BaseException:
            await engine.dispose()
            raise
        return database

    async def _create_table(self) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
        except DBAPIError:
            # Two routers starting together on one PostgreSQL both see no table and both create it;
            # the loser's CREATE fails. Checking again finds the winner's table.
            async with self.engine.begin() as conn:
                await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()

    async def put(self, record: StoredResponse) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(responses).values(
                    id=record.id,
                    created_at=record.created_at,
                    expires_at_ms=record.expires_at_ms,
                    previous_response_id=record.previous_response_id,
                    response=record.response,
                    input_items=record.input_items,
                    context=record.context,
                )
            )

    async def get(self, response_id: str, now_ms: int) -> StoredResponse | None:
        query = select(responses).where(responses.c.id == response_id, responses.c.expires_at_ms > now_ms)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        return StoredResponse(
            id=row["id"],
            created_at=row["created_at"],
            expires_at_ms=row["expires_at_ms"],
            previous_response_id=row["previous_response_id"],
            response=row["response"],
            input_items=row["input_items"],
            context=row["context"],
        )

    async def delete(self, response_id: str, now_ms: int) -> bool:
        query = delete(responses).where(responses.c.id == response_id, responses.c.expires_at_ms > now_ms)
        async with self.engine.begin() as conn:
            result = await conn.execute(query)
        return bool(result.rowcount)

    async def purge(self, now_ms: int) -> int:
        """Delete every expired response; returns how many."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(responses).where(responses.c.expires_at_ms <= now_ms))
        return int(result.rowcount or 0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never wait for the writer, and several router processes can share the file.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _pg_timeouts(url: URL, timeout_s: float) -> dict[str, Any]:
    if url.get_driver_name() == "asyncpg":
        return {"timeout": timeout_s, "command_timeout": timeout_s}
    return {}
