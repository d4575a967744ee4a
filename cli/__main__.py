"""``python -m spinepki_cli``."""

from spinepki_cli.main import main

if __name__ == "__main__":  # pragma: no cover
    main()
