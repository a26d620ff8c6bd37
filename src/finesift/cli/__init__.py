"""The ``finesift`` command line: each command is a thin call into :mod:`finesift.services`."""
