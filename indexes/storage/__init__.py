"""Where the catalog lives: its rows (SQLite, or PostgreSQL when replicas share them), the Chroma
collections, the in-process card matrix, the usage memory of recorded requests, and copies of all of it.
May import the base modules of ``indexes``."""
