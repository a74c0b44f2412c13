"""`python -m tunequeue` runs the command-line interface."""

from tunequeue.cli import main

if __name__ == "__main__":
    main()
