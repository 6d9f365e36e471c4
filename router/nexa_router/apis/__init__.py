"""The Responses API and the Anthropic Messages API: translation layers onto the text service's
`/v1/chat/completions`, so both use its one generation path (chat templates, tool grammars, queue,
cancellation, metrics). The router translates requests, event streams and errors, and keeps the
stored responses (`nexa_router.store`)."""
