"""The toolkit's version (one place: the package, the CLI and provenance read it)."""

__version__ = "0.1.0"
