"""Implementation of :mod:`spinepki.validation` (private; import from ``spinepki.validation``)."""
