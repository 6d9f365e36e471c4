"""The `nexa` command line."""
