"""Request fields a route accepted but did not act on are named in the `X-Nexa-Ignored-Fields`
answer header (PLAN contract 6, `nexa_common.fields`), never dropped silently; with
`NEXA_ROUTER_STRICT_FIELDS` an unknown field is a 400 naming it."""

from __future__ import annotations

from starlette.requests import Request

from nexa_common.fields import AccountedRequest, account_names


def account(request: Request, body: AccountedRequest, by_value: list[str], *, strict: bool) -> None:
    """`nexa_common.fields.account_fields`, plus the fields ignored for the value they have."""
    unknown = body.unknown_fields()
    ignored = [name for name in body.ignored_fields() if name not in unknown]
    account_names(request, [*ignored, *by_value], unknown=unknown, strict=strict)
