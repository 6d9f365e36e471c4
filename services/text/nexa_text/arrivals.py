"""Requests on their way to an engine: inside the service's route (being read, checked, tokenised)
and not queued at their engine yet. Engines that batch wait briefly for them, so that a burst of
requests goes into one batch instead of the first one starting alone while the rest are still parsed.

A count, not a queue: it is changed on the event loop only; an engine's own thread may read it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from starlette.types import ASGIApp, Receive, Scope, Send


class Arrivals:
    """How many requests of one kind are in the route and not queued yet. One per service and kind
    (embeddings, generation), shared by every loaded model of that kind: a request counts from its
    first moment, before its body says which model it is for."""

    def __init__(self) -> None:
        self.count = 0
        self.listeners: set[Callable[[], None]] = set()
        """Woken when a request stops being on its way: each running collector's (on the event loop)."""

    def wake(self) -> None:
        for listener in list(self.listeners):
            listener()

    @contextlib.contextmanager
    def coming(self) -> Iterator[Ticket]:
        """Held by a request from its start until it is queued (`Ticket.done`) or has failed."""
        ticket = Ticket(self)
        self.count += 1
        try:
            yield ticket
        finally:
            ticket.done()


class Ticket:
    def __init__(self, arrivals: Arrivals) -> None:
        self._arrivals = arrivals
        self._done = False

    def done(self) -> None:
        if not self._done:
            self._done = True
            self._arrivals.count -= 1
            self._arrivals.wake()


_TICKET = "arrival_ticket"


class CountArrivals:
    """ASGI middleware: a request to one of `paths` counts in `arrivals` from its first moment, before
    its body is read and validated (about half of the service's time for a request), until the route
    queues its sequence (`ticket_of(...).done()`) or the request ends."""

    def __init__(self, app: ASGIApp, arrivals: Arrivals, paths: frozenset[str]) -> None:
        self.app, self.arrivals, self.paths = app, arrivals, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        with self.arrivals.coming() as ticket:
            scope.setdefault("state", {})[_TICKET] = ticket
            await self.app(scope, receive, send)


def ticket_of(scope: Scope) -> Ticket | None:
    """The request's place among the arrivals, if `CountArrivals` counted it."""
    ticket: Ticket | None = scope.get("state", {}).get(_TICKET)
    return ticket
