"""The ``cidir`` command line (``cidir --help``).

Importing the package sets OpenMP's passive waiting before torch is loaded (see
:mod:`cidir.runtime`)."""

from cidir.runtime import prefer_passive_waiting

prefer_passive_waiting()
