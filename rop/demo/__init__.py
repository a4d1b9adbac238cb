"""Deterministic demo portal generator: a believable Bitrix24 sales department.

``rop.demo.generator.generate`` writes a portal snapshot folder (CONTRACT.md §1).
The same arguments always give byte-identical files. docs/DEMO.md lists what
the portal contains and the traps it sets on purpose.
"""
