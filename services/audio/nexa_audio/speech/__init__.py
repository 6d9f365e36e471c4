"""Speech synthesis (`/v1/audio/speech`) on Piper voices: engine, sentences, encoders, voices, route."""
