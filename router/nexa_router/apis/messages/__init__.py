"""Anthropic's Messages API (`/v1/messages`) over the text service's chat completions."""
