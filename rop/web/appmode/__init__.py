"""Bitrix24 application mode: install, open inside the portal, events (docs/WEB.md)."""
