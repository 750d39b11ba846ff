"""Example agents. Each is a module with ``tools(config) -> list[Tool]`` and a prompt folder."""
