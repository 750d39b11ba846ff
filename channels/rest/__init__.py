"""The REST channel: the JSON API, and a sender that keeps messages on the thread."""
