"""The analytical store: one DuckDB file holding one or more portals' CRM."""

from rop.store.db import Store, StoreError, open_store

__all__ = ["Store", "StoreError", "open_store"]
