"""MCP servers as an outside system: the adapter that speaks the protocol through the
official ``mcp`` SDK (the only code that imports it), handed to ``agent.toolbox`` behind the
``agent.mcp_tools.McpServer`` Protocol, as the model client is behind ``agent.llm.LLM``."""
