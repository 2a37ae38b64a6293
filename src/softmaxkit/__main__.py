"""``python -m softmaxkit``: the same as the ``softmaxkit`` command."""

from softmaxkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
