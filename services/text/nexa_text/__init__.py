"""nexa text service: completions, chat and function calling on a GGUF model (llama-cpp-python)."""
