"""Allow ``python -m phonecast``."""

from phonecast.cli import main

if __name__ == "__main__":
    main()
