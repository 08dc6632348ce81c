"""Where the catalog lives: its SQLite database, the Chroma collections, the in-process card matrix, the
usage memory of recorded requests, and the replication of all of it over a shared Chroma server. May import
the base modules of ``indexes``."""
