"""LangChain integration for gprochat-compatible (GeminiProChat) chat endpoints."""
