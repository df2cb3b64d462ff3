"""`python -m rcekd_tui` runs the CLI (the TUI launches runs this way, with its own interpreter)."""

from .cli import main

main()
