"""The ``cidir`` command line (``cidir --help``)."""
