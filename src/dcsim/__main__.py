"""`python -m dcsim ...` runs the command line, as `dcsim ...` does."""

from .cli import main

if __name__ == "__main__":
    main()
