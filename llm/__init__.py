"""LLM support for routing and conversation analysis (docs/llm.md), and the insights it produces.

Any OpenAI-compatible server works; without one every feature falls back to deterministic rules.
Modules: ``redact`` (PII out before text leaves BeaZap), ``transcript`` (build + truncate),
``schemas`` (structured answers), ``prompts``, ``client`` (retries, validation, concurrency),
``rules`` (rule-based analyser), ``store`` (cache + per-tenant usage/budget).
"""

RULES_MODEL = "rules-v1"
