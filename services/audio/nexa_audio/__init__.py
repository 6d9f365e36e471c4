"""The audio service: OpenAI-style transcriptions and translations with faster-whisper."""
