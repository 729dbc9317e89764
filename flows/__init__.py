"""rune-lake's Prefect flows (``refresh``, ``backfill``) and the ``rune-lake`` CLI."""
