"""`python -m labstream` runs the CLI."""

from __future__ import annotations

from labstream.cli import main

if __name__ == "__main__":
    main()
