"""Console translations: zh-CN by default, English when the user switches (cookie ``cw_lang``).

Messages live in ``web/i18n/<area>.json`` files, one per part of the console, each ``{"zh-CN": {key: text},
"en": {key: text}}``. Every key must exist in both languages (checked when the catalogue loads, and by a test).
Templates call ``t("nav.wall")``; the pages' JavaScript gets the same catalogue through the page's boot JSON.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from kernel.errors import KernelError

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANG_COOKIE = "cw_lang"
_DIR = Path(__file__).resolve().parent / "i18n"


class TranslationError(KernelError):
    """A message catalogue file is malformed or incomplete."""


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """Every message, by language then key."""
    merged: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    for path in sorted(_DIR.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise TranslationError(f"{path}: not a readable JSON file: {err}") from err
        if not isinstance(data, dict) or set(data) != set(LANGUAGES):
            raise TranslationError(f"{path}: expected the languages {', '.join(LANGUAGES)} at the top level")
        keys = {lang: set(data[lang]) for lang in LANGUAGES}
        if keys["zh-CN"] != keys["en"]:
            missing = sorted(keys["zh-CN"] ^ keys["en"])
            raise TranslationError(f"{path}: keys not in both languages: {', '.join(missing[:10])}")
        for lang in LANGUAGES:
            for key, text in data[lang].items():
                if key in merged[lang]:
                    raise TranslationError(f"{path}: key {key!r} is defined in another file too")
                merged[lang][key] = str(text)
    return merged


def pick_language(cookie: str | None) -> str:
    """The language a request asked for, or the default."""
    return cookie if cookie in LANGUAGES else DEFAULT_LANGUAGE


def translate(lang: str, key: str, **values: object) -> str:
    """The message ``key`` in ``lang`` with ``{name}`` placeholders filled; the key itself if unknown."""
    text = catalogue().get(lang, {}).get(key) or catalogue()[DEFAULT_LANGUAGE].get(key) or key
    return text.format(**values) if values else text
