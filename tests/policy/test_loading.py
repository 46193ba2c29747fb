from __future__ import annotations

from pathlib import Path

import pytest

from aiguard import ConfigError, load_policy
from aiguard.policy.prompts import Catalogue


def test_defaults() -> None:
    p = load_policy(environ={})
    assert [r.path for r in p.routes] == ["/v1/chat/completions", "/chat"]
    assert p.disclosure.mode == "first" and p.prefix == "/aiguard"


def test_toml_then_env_then_overrides(tmp_path: Path) -> None:
    f = tmp_path / "aiguard.toml"
    f.write_text('provider = "Acme"\n[disclosure]\nmode = "every"\ninterval_minutes = 5\n')
    p = load_policy(f, environ={"AIGUARD_DISCLOSURE__INTERVAL_MINUTES": "7"})
    assert (p.provider, p.disclosure.mode, p.disclosure.interval_minutes) == ("Acme", "every", 7)
    p = load_policy(f, environ={}, disclosure={"mode": "off"})
    assert p.disclosure.mode == "off" and p.disclosure.interval_minutes == 5


def test_policy_file_from_env(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text('locale = "de"\n')
    assert load_policy(environ={"AIGUARD_POLICY": str(f)}).locale == "de"


@pytest.mark.parametrize(
    ("toml", "env", "key"),
    [
        ('[disclosure]\nmode = "sometimes"\n', {}, "disclosure.mode"),
        ("[disclosure]\ninterval_minutes = 0\n", {}, "disclosure.interval_minutes"),
        ('[disclosure]\nmodez = "every"\n', {}, "disclosure.modez"),
        ('prefix = "aiguard/"\n', {}, "prefix"),
        ('[[routes]]\npath = "chat"\n', {}, "routes.0.path"),
        ("", {"AIGUARD_MAX_BODY_BYTES": "tiny"}, "max_body_bytes"),
        ("", {"AIGUARD_NOPE": "1"}, "nope"),
    ],
)
def test_bad_keys_are_named(tmp_path: Path, toml: str, env: dict[str, str], key: str) -> None:
    f = tmp_path / "p.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError, match=f"invalid policy key '{key}'") as info:
        load_policy(f, environ=env)
    assert isinstance(info.value, ValueError) and info.value.code == "config_error"


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_policy(tmp_path / "missing.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_policy(bad, environ={})


def test_catalogue_has_every_user_text_in_every_locale() -> None:
    cat = Catalogue()
    assert set(cat.locales) >= {"en", "zh-CN", "nl", "de", "fr", "es"}
    root = cat.root
    names = {p.stem for p in (root / "en").glob("*.toml")} - {"harm_judge"}
    for locale in ("zh-CN", "nl", "de", "fr", "es"):
        have = {p.stem for p in (root / locale).glob("*.toml")}
        assert names <= have, f"{locale} lacks {names - have}"
    t = cat.text("disclosure", "de")
    assert t.locale == "de" and t.version == "1" and len(t.sha256) == 64


def test_catalogue_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="prompts folder not found"):
        Catalogue(tmp_path / "nope")
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "x.toml").write_text('text = "no version"')
    with pytest.raises(ConfigError, match="no 'version'"):
        Catalogue(tmp_path)


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("de-CH, fr;q=0.5", "de"),
        ("en;q=0.1, nl;q=0.9", "nl"),
        ("ZH-cn", "zh-CN"),
        ("zh-Hant-TW", "zh-CN"),
        ("es-419", "es"),
        ("xx-YY, yy", "en"),
        ("de;q=0", "en"),
        ("de;q=abc, fr", "fr"),
        (",,;;", "en"),
    ],
)
def test_negotiation(header: str, locale: str) -> None:
    assert Catalogue().negotiate(header) == locale
