"""Screen names -> factories: ``policy.screening.screens`` lists names, built here.

Built-in screens are registered as lazy factories: their modules (and heavy dependencies) are only
imported when a policy names them, so a missing or broken screen package fails at build time with
a ``ConfigError`` naming the screen instead of at import time of aiguard.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from aiguard.errors import ConfigError
from aiguard.policy.models import Policy
from aiguard.screens.base import Screen

ScreenFactory = Callable[[Policy], Screen]
"""Builds one screen instance from the policy (validate config here, load assets in ``load()``)."""

_factories: dict[str, ScreenFactory] = {}


def register(name: str, factory: ScreenFactory, *, replace: bool = False) -> None:
    """Make ``name`` usable in ``policy.screening.screens``."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"screen name must be alphanumeric with '-' or '_': {name!r}")
    if name in _factories and not replace:
        raise ConfigError(f"screen {name!r} is already registered")
    _factories[name] = factory


def unregister(name: str) -> None:
    _factories.pop(name, None)


def available() -> list[str]:
    return sorted(_factories)


def create(name: str, policy: Policy) -> Screen:
    """Build the screen registered as ``name``; every failure is a ConfigError naming it."""
    factory = _factories.get(name)
    if factory is None:
        raise ConfigError(
            f"screening.screens: unknown screen {name!r} (registered: {', '.join(available())})"
        )
    try:
        screen = factory(policy)
    except Exception as exc:  # bad settings, a factory bug or a missing optional dependency
        raise ConfigError(f"screening.screens: cannot build screen {name!r}: {exc}") from exc
    if not isinstance(screen, Screen):
        raise ConfigError(f"screening.screens: {name!r} did not build a Screen: {screen!r}")
    if screen.name != name:
        # results are keyed by instance name; keep it equal to the policy key
        try:
            screen.name = name
        except AttributeError as exc:
            raise ConfigError(f"screen {name!r} reports name {screen.name!r}") from exc
    return screen


def lazy(module: str, cls: str) -> ScreenFactory:
    """A factory importing ``module.cls`` on first use; ``cls.from_policy(policy)`` if defined."""

    def factory(policy: Policy) -> Screen:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"screen module {module} is not available: {exc}") from exc
        klass = getattr(mod, cls, None)
        if klass is None:
            raise ConfigError(f"{module} has no {cls}")
        from_policy = getattr(klass, "from_policy", None)
        built = from_policy(policy) if callable(from_policy) else klass()
        if not isinstance(built, Screen):
            raise ConfigError(f"{module}.{cls} is not a Screen")
        return built

    return factory


def _infringement(policy: Policy) -> Screen:
    from aiguard.screens.infringement import InfringementScreen

    return InfringementScreen.from_policy(policy)


register("pii", lazy("aiguard.screens.pii", "PIIScreen"))
register("harm", lazy("aiguard.screens.harm", "HarmScreen"))
register("infringement", _infringement)
