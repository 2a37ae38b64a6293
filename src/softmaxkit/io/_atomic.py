"""Atomic file writes: a temporary file in the target's directory, then
``os.replace``.  A crash or an exception never leaves a partial file behind."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat

__all__ = ["atomic_path"]


_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _create_temporary(directory, name, mode):
    """Create a fresh file ``.name.XXXXXXXX.tmp`` in ``directory``; return its path.

    ``os.open`` with ``mode`` lets the kernel apply the umask (and any default
    ACL), as for any new file: the process umask is never read or changed,
    which ``os.umask`` can only do by setting it, unsafe with other threads."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, _OPEN_FLAGS, mode))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", directory)


def _check_target(path):
    """Refuse, naming ``path``, a destination that can never become a file."""
    if not path:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory (empty path)", path)
    if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)):
        raise IsADirectoryError(errno.EISDIR, "Is a directory (the path ends with a "
                                f"{path[-1]!r}, a file name cannot)", path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", path)


def _path_error(exc, path):
    """``exc`` (from creating the temporary file) re-raised about ``path``."""
    shown = os.path.dirname(path) or os.curdir
    reason = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError):
        reason = f"{reason} (directory {shown!r} does not exist)"
    elif isinstance(exc, NotADirectoryError):
        reason = f"{reason} ({shown!r} is not a directory)"
    elif isinstance(exc, PermissionError):
        reason = f"{reason} (directory {shown!r} is not writable)"
    return type(exc)(exc.errno, reason, path)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination.  Its directory must exist and be writable.

    Yields
    ------
    tmp : str
        A fresh, empty file in the same directory.  Write the content there.
        If the ``with`` block raises, the temporary file is removed and
        ``path`` is left untouched.

    Raises
    ------
    OSError
        When ``path`` is empty or a directory, or its directory does not
        exist or is not writable (raised before the block runs), or the final
        rename fails; the error's ``filename`` is ``path``, never the
        temporary file.

    Notes
    -----
    A symbolic link is followed: its target is replaced and the link kept.
    Replacing an existing file keeps its permission bits; a new file gets
    ``0o666`` less the umask, as ``open`` gives.

    Examples
    --------
    >>> import os, tempfile
    >>> from softmaxkit.io import atomic_path
    >>> d = tempfile.mkdtemp()
    >>> target = os.path.join(d, "out.txt")
    >>> with atomic_path(target) as tmp:
    ...     _ = open(tmp, "w").write("done")
    >>> open(target).read(), os.listdir(d)
    ('done', ['out.txt'])
    >>> try:
    ...     with atomic_path(target) as tmp:
    ...         _ = open(tmp, "w").write("half")
    ...         raise RuntimeError("crash")
    ... except RuntimeError:
    ...     pass
    >>> open(target).read(), os.listdir(d)   # untouched, no temporary file left
    ('done', ['out.txt'])
    """
    path = os.fspath(path)
    _check_target(path)
    real = os.path.realpath(path)  # through a symlink: replace its target, keep the link
    directory, name = os.path.split(real)
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode) & 0o777  # an existing file keeps its mode
    except OSError:
        mode = None  # a new file: 0o666 less the umask
    try:
        # the owner may write the temporary file even when the target is read-only
        tmp = _create_temporary(directory, name, 0o666 if mode is None else mode | 0o600)
    except OSError as exc:
        # name the user's path, not the hidden temporary file
        raise _path_error(exc, path) from None
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if mode is not None:
            # exactly, whatever the umask removed at creation; after the fsync, whose
            # open for writing a read-only mode (0o444) would refuse to a non-root owner
            os.chmod(tmp, mode)
        try:
            os.replace(tmp, real)
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
