"""``python -m kbatch``: see :mod:`kbatch.cli`."""

from kbatch.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
