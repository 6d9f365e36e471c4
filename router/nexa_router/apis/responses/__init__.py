"""OpenAI's Responses API (`/v1/responses`) over the text service's chat completions."""
