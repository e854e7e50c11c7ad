"""Fake external servers on loopback (Evolution API, OpenAI-compatible LLM) started by the tests."""
