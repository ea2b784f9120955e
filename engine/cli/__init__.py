"""The ``hie`` command line."""
