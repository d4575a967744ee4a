"""``python -m spinepki_cli``."""

from .main import main

if __name__ == "__main__":  # pragma: no cover
    main()
