"""Texts users read and prompts models read, loaded from ``prompts/<locale>/<name>.toml``.

A file holds ``version = "N"`` and either a ``text`` string (one text) or a ``[strings]`` table
(UI strings). Every text carries its sha256 so records and metadata can prove what was shown.
All files load once at startup; lookups are dict hits.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from aiguard.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Text:
    id: str  # the file's stem, e.g. "disclosure"
    locale: str
    version: str
    text: str
    sha256: str

    def ref(self) -> dict[str, str]:
        return {
            "id": self.id,
            "version": self.version,
            "locale": self.locale,
            "sha256": self.sha256,
        }


def packaged_prompts_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    installed = here / "_prompts"  # wheel layout (force-include)
    return installed if installed.is_dir() else here.parent / "prompts"


def _canonical(tag: str) -> str:
    parts = tag.replace("_", "-").split("-")
    return "-".join([parts[0].lower(), *(p.upper() if len(p) == 2 else p for p in parts[1:])])


class Catalogue:
    def __init__(self, root: Path | None = None, default_locale: str = "en") -> None:
        self.root = root or packaged_prompts_dir()
        if not self.root.is_dir():
            raise ConfigError(f"prompts folder not found: {self.root}")
        self._texts: dict[tuple[str, str], Text] = {}
        self._strings: dict[tuple[str, str], dict[str, str]] = {}
        for locale_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            locale = _canonical(locale_dir.name)
            for f in sorted(locale_dir.glob("*.toml")):
                self._load(f, locale)
        self.locales: tuple[str, ...] = tuple(sorted({loc for _, loc in self._texts}))
        self.default_locale = _canonical(default_locale)
        if self.default_locale not in self.locales:
            raise ConfigError(f"default locale {default_locale!r} has no prompts in {self.root}")
        # primary language -> first locale of it, so "zh" and "zh-TW" still reach "zh-CN"
        self._primary: dict[str, str] = {}
        for loc in self.locales:
            self._primary.setdefault(loc.split("-")[0], loc)

    def _load(self, path: Path, locale: str) -> None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read prompt {path}: {exc}") from None
        version = str(data.get("version", ""))
        if not version:
            raise ConfigError(f"prompt {path} has no 'version'")
        name = path.stem
        if "text" in data:
            text = str(data["text"]).strip()
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            self._texts[(name, locale)] = Text(name, locale, version, text, digest)
        if "strings" in data:
            self._strings[(name, locale)] = {k: str(v) for k, v in data["strings"].items()}
            # the whole table is also addressable as a Text so it can be versioned and hashed
            body = "\n".join(f"{k}={v}" for k, v in sorted(self._strings[(name, locale)].items()))
            digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
            self._texts.setdefault((name, locale), Text(name, locale, version, body, digest))
        if "text" not in data and "strings" not in data:
            raise ConfigError(f"prompt {path} has neither 'text' nor [strings]")

    def resolve(self, locale: str | None) -> str:
        """Map any tag to a locale we hold, falling back to the default."""
        if not locale:
            return self.default_locale
        tag = _canonical(locale)
        if tag in self.locales:
            return tag
        return self._primary.get(tag.split("-")[0], self.default_locale)

    def negotiate(self, accept_language: str | None) -> str:
        """Pick the best locale for an ``Accept-Language`` header (RFC 9110 q-values)."""
        if not accept_language:
            return self.default_locale
        return _negotiate(accept_language, self.locales, self.default_locale)

    def text(self, name: str, locale: str) -> Text:
        loc = self.resolve(locale)
        found = self._texts.get((name, loc)) or self._texts.get((name, self.default_locale))
        if found is None:
            raise ConfigError(f"no prompt {name!r} for {loc!r} or {self.default_locale!r}")
        return found

    def strings(self, name: str, locale: str) -> dict[str, str]:
        loc = self.resolve(locale)
        base = self._strings.get((name, self.default_locale), {})
        return {**base, **self._strings.get((name, loc), {})}

    def has(self, name: str) -> bool:
        return (name, self.default_locale) in self._texts


@lru_cache(maxsize=1024)
def _negotiate(header: str, locales: tuple[str, ...], default: str) -> str:
    primary: dict[str, str] = {}
    for loc in locales:
        primary.setdefault(loc.split("-")[0].lower(), loc)
    exact = {loc.lower(): loc for loc in locales}
    ranked: list[tuple[float, int, str]] = []
    for i, item in enumerate(header.split(",")):
        lang, _, params = item.strip().partition(";")
        lang = lang.strip().lower().replace("_", "-")
        if not lang or len(lang) > 35:
            continue
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, i, lang))
    for _, _, lang in sorted(ranked):
        if lang == "*":
            return default
        if lang in exact:
            return exact[lang]
        if lang.split("-")[0] in primary:
            return primary[lang.split("-")[0]]
    return default
