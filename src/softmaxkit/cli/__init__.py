"""The ``softmaxkit`` command line: ``demo``, ``fit``, ``predict``,
``evaluate``, ``inspect`` (``softmaxkit --help``; also ``python -m softmaxkit``).

Every expected error (bad data, a missing or unwritable file, a bad option,
a corrupt model file) is printed as one ``error: ...`` line on stderr with a
non-zero exit code and no partial output file; set ``SOFTMAXKIT_DEBUG=1`` to
get the traceback instead.
"""

from __future__ import annotations

import os
import sys

from ._parser import CLIError, UsageError, build_parser

__all__ = ["main"]


def _one_line(exc):
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename!r}"
    return text or type(exc).__name__


def main(argv=None):
    """Run the ``softmaxkit`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    code : int
        0 on success; 1 for a failed command, 2 for a bad command line, 130
        when interrupted (Ctrl-C), 143 when terminated (SIGTERM).

    Examples
    --------
    >>> from softmaxkit.cli import main
    >>> main(["--version"])
    softmaxkit 0.1.0
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    from ._commands import COMMANDS

    if os.environ.get("SOFTMAXKIT_DEBUG"):
        return COMMANDS[args.command](args)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `softmaxkit predict ... | head`: stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except UsageError as exc:  # options that argparse checks one by one, checked together
        sys.stdout.flush()
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (CLIError, ValueError, TypeError, OSError, ImportError) as exc:
        sys.stdout.flush()
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, with how to see the traceback
        sys.stdout.flush()
        print(f"error: internal error ({type(exc).__name__}: {_one_line(exc)}); please report "
              "it, with the traceback that SOFTMAXKIT_DEBUG=1 shows.", file=sys.stderr)
        return 1
