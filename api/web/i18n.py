"""Languages of the dashboard: one JSON message catalogue per language under ``api/web/i18n/``.

Portuguese (pt-BR) is the default; English is chosen by the ``beazap_lang`` cookie (the switch in
the page header) or else by the browser's ``Accept-Language``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from fastapi import Request

LANGUAGES = ("pt-BR", "en")
DEFAULT = "pt-BR"
COOKIE = "beazap_lang"
_DIR = Path(__file__).with_name("i18n")


@cache
def catalogue(language: str) -> dict[str, str]:
    return json.loads((_DIR / f"{language.replace('-', '_')}.json").read_text(encoding="utf-8"))


def pick(request: Request) -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("pt"):
            return "pt-BR"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


def translator(language: str):
    messages = catalogue(language)
    fallback = catalogue(DEFAULT)

    def t(key: str, **values: object) -> str:
        text = messages.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t
