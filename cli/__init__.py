"""The spinepki command line (import name ``spinepki_cli``): a thin layer over the library."""
