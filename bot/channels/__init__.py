"""Channels: thin adapters that turn a platform's messages into Incoming and render Replies."""
