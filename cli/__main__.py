"""`python -m marshrut ...` is the `marshrut` command."""

from .cli import main

main()
