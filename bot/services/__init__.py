"""Service functions: the only code that writes requests, residents and events."""
