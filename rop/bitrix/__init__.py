"""Talking to Bitrix24: the REST client, the sync, and the portal emulator."""
