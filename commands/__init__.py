"""The command groups ``cli.py`` registers (models, service) and what every command shares (opening the
router from the global options, one JSON document on stdout). Imports what it runs: the Python API,
``training`` and the ``serve`` shells."""
