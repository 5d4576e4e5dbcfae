"""Tools for developing livetopic, run from a checkout (``python -m devtools.<tool>``): never installed, never
imported by ``worker`` or ``trainer``."""
