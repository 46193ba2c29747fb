"""Integrations with frameworks that are not ASGI apps.

``aiguard.integrations.langchain``: :func:`guard_runnable` wraps a LangChain runnable.
"""
