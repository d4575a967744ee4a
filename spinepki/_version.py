"""The release number, in a module of its own.

The exported server configurations stamp it into their header comment; importing it from
here instead of the package facade keeps :mod:`spinepki.serverconfig` from importing the
facade, which imports serverconfig (docs/architecture.md).
"""

__version__ = "0.1.0"
