"""One safe reader and one safe writer for every file mpg touches.

Reading (``read_input``): the path is expanded (``~``, ``~user``) with errors as bad input; the file is
opened non-blocking (a FIFO without a writer cannot hang the open), must be a regular file (FIFOs,
character devices such as ``/dev/zero``, ``/dev/urandom`` or a terminal ``/dev/stdin`` are refused),
and is read with a size cap. Every file read is recorded by device and inode, so that

Writing (``write_output``) can refuse to overwrite any of the command's own inputs. Writes go:

* through special files and symlinks (``-o /dev/null``, ``-o /dev/stdout``, a FIFO): the target is
  opened and written, never replaced;
* for regular files, to a temporary file in the same folder then renamed over the target (atomic),
  keeping an existing file's permission bits, and giving a new file ``0666 & ~umask`` (like ``open``);
* exclusively when asked (``calibrate --save`` without ``--force``): the finished temporary file is
  hard-linked to the final name, which fails if the name exists, so of N concurrent writers exactly
  one succeeds and the others refuse;
* and never leave a temporary file behind on failure (disk full, file too large).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Optional

from .errors import InputError, PresetError

# (st_dev, st_ino) -> the path as given, for every file read by this invocation
_READ: dict[tuple[int, int], str] = {}
# (st_dev, st_ino) -> the flag that wrote it, for every file written by this invocation
_WRITTEN: dict[tuple[int, int], str] = {}
VERBOSE = False

NAME_MAX = 255


def reset() -> None:
    """Forget the files of a previous invocation (the CLI calls this once per run; tests run many in-process)."""
    global VERBOSE
    _READ.clear()
    _WRITTEN.clear()
    VERBOSE = False


def set_verbose(value: bool) -> None:
    global VERBOSE
    VERBOSE = bool(value)


def _os_message(exc: OSError) -> str:
    return exc.strerror or str(exc)


def user_path(text: str, flag: str) -> Path:
    """``text`` as a Path with ``~`` expanded; an unknown user, an empty name or an over-long name is bad input."""
    from .sanitize import clean

    raw = str(text)
    if not raw.strip():
        raise InputError(f"{flag}: empty file name", hint="give the path of a file")
    if "\x00" in raw:
        raise InputError(f"{flag}: a file name cannot contain a NUL byte")
    try:
        path = Path(raw).expanduser()
    except RuntimeError:  # '~nosuchuser/x'
        user = raw[1:].split("/", 1)[0]
        raise InputError(f"{flag} {clean(raw)}: no user named {clean(user)!r} to expand '~{clean(user)}'",
                         hint="write the full path, or ./~name for a folder literally named so") from None
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise InputError(f"{flag}: a file name is longer than {NAME_MAX} bytes ({clean(part[:40])}…)",
                             hint="use a shorter name")
    return path


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_input(path_text: str | Path, what: str = "file", max_bytes: int = 1_000_000, *,
               error: type = PresetError) -> bytes:
    """The bytes of a regular file (at most ``max_bytes``), or ``error`` naming the file and the reason."""
    from .sanitize import clean

    path = user_path(str(path_text), what)
    shown = clean(str(path))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{shown}: file not found") from None
    except IsADirectoryError:
        raise error(f"{shown}: is a directory, expected a {what}", hint="pass the path of a file") from None
    except OSError as exc:
        raise error(f"{shown}: cannot read: {_os_message(exc)}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{shown}: is a directory, expected a {what}", hint="pass the path of a file")
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{shown}: is {_kind(st.st_mode)}, not a regular file: refused as a {what}",
                        hint="save the data to a file first and pass its path")
        if st.st_size > max_bytes:
            raise error(f"{shown}: file is too large ({st.st_size:,} bytes; at most {max_bytes:,} for a {what})")
        chunks = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise error(f"{shown}: file is too large (more than {max_bytes:,} bytes for a {what})")
        _READ[(st.st_dev, st.st_ino)] = str(path)
        return data
    except OSError as exc:
        raise error(f"{shown}: cannot read: {_os_message(exc)}") from None
    finally:
        os.close(fd)


def read_text(path_text: str | Path, what: str = "file", max_bytes: int = 1_000_000, *,
              error: type = PresetError) -> str:
    """A UTF-8 text file through ``read_input``."""
    from .sanitize import clean

    data = read_input(path_text, what, max_bytes, error=error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{clean(str(path_text))}: not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8") from None


def note_input(path: str | Path) -> None:
    """Record a file the command reads by other means (so ``-o`` cannot overwrite it)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return
    _READ[(st.st_dev, st.st_ino)] = str(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def same_file(a: str, b: str) -> bool:
    """Whether two output paths name the same file (same inode when it exists, else the same resolved path)."""
    try:
        sa, sb = os.stat(a), os.stat(b)
        return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)
    except OSError:
        try:
            return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))
        except (OSError, ValueError, RuntimeError):
            return False


def write_output(path_text: str, text: str, flag: str = "--output", *, exclusive: bool = False,
                 force_hint: str = "pass --force to overwrite it") -> None:
    """Write ``text`` (UTF-8) to ``path_text``: see the module docstring for the rules."""
    from .sanitize import clean

    path = user_path(path_text, flag)
    shown = clean(str(path_text))
    data = text.encode("utf-8")
    st = _existing(path, flag, shown, exclusive, force_hint)
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_through(path, data, flag, shown, st)
        return
    real = Path(os.path.realpath(path))  # a symlink's target is replaced, the link stays
    if not real.parent.is_dir():
        raise InputError(f"{flag} {shown}: folder {clean(str(path.parent))} does not exist")
    _write_atomically(real, data, stat.S_IMODE(st.st_mode) if st is not None else (0o666 & ~_umask()), flag, shown,
                      exclusive, force_hint)
    try:
        st2 = os.stat(real)
        _WRITTEN[(st2.st_dev, st2.st_ino)] = flag
    except OSError:
        pass
    if VERBOSE:
        import sys

        verb = "replaced" if st is not None else "created"
        sys.stderr.write(f"NOTE: {verb} {shown}" + (f" (was {st.st_size:,} bytes)" if st is not None else "") + "\n")


def _existing(path: Path, flag: str, shown: str, exclusive: bool, force_hint: str) -> Optional[os.stat_result]:
    """The target's stat (None when it does not exist), refusing the command's own inputs and outputs, a
    directory, and any existing file when ``exclusive``."""
    from .sanitize import clean

    try:
        st = os.stat(path)  # follows symlinks
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"{flag} {shown}: cannot write: {_os_message(exc)}") from None
    key = (st.st_dev, st.st_ino)
    if key in _READ:
        raise InputError(f"{flag} {shown}: is one of this command's own inputs ({clean(_READ[key])}); "
                         "refusing to overwrite it", hint="write the output to another file")
    if key in _WRITTEN:
        raise InputError(f"{flag} {shown}: the same file as {_WRITTEN[key]}; refusing to overwrite it",
                         hint="give the two outputs different names")
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{flag} {shown}: is a directory", hint="give a file name")
    if exclusive:
        raise InputError(f"{flag} {shown}: file exists", hint=force_hint)
    return st


def _write_atomically(real: Path, data: bytes, mode: int, flag: str, shown: str, exclusive: bool,
                      force_hint: str) -> None:
    """A temporary file in the target's folder, synced, then renamed over the target (or hard-linked to it when
    ``exclusive``, so that of several concurrent writers exactly one wins); no temporary file is left behind."""
    tmp: Optional[str] = None
    try:
        import tempfile  # here, not at import: only a write needs it (start-up time, issue 11)

        fd, tmp = tempfile.mkstemp(prefix=f".{real.name[:200]}.", suffix=".tmp", dir=real.parent)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            try:
                os.link(tmp, real)
            except FileExistsError:
                raise InputError(f"{flag} {shown}: file exists (created meanwhile by another process)",
                                 hint=force_hint) from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                _exclusive_create(real, data, mode, flag, shown, force_hint)  # no hard links here
        else:
            os.replace(tmp, real)
            tmp = None
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"{flag} {shown}: cannot write: {_os_message(exc)}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _exclusive_create(real: Path, data: bytes, mode: int, flag: str, shown: str, force_hint: str) -> None:
    try:
        fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InputError(f"{flag} {shown}: file exists", hint=force_hint) from None
    try:
        os.write(fd, data)
    except OSError:
        os.close(fd)
        os.unlink(real)
        raise
    os.close(fd)


def _write_through(path: Path, data: bytes, flag: str, shown: str, st: os.stat_result) -> None:
    """Write into a special file (device, FIFO) without replacing it; a FIFO without a reader is refused."""
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise InputError(f"{flag} {shown}: is a FIFO with no reader", hint="start the reader first") from None
        raise InputError(f"{flag} {shown}: cannot write: {_os_message(exc)}") from None
    try:
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise InputError(f"{flag} {shown}: cannot write: {_os_message(exc)}") from None
    finally:
        os.close(fd)
    if VERBOSE:
        import sys

        sys.stderr.write(f"NOTE: wrote through {shown} ({_kind(st.st_mode)}; not replaced)\n")


LOG_WHOLE_BYTES = 64 << 20  # a log up to 64 MiB is read whole
LOG_HEAD_BYTES = 4 << 20  # of a larger one: the first 4 MiB (the run's arguments) ...
LOG_TAIL_BYTES = 28 << 20  # ... and the last 28 MiB (the steady state)


def read_log(path_text: str) -> tuple[str, tuple[str, ...]]:
    """A training log's text, bounded: whole up to LOG_WHOLE_BYTES, else its head and tail (with a note).

    Memory and time stay bounded for a log of any size (a 1 GB log reads 32 MiB).
    """
    from .errors import LogFormatError
    from .sanitize import clean

    if path_text == "-":  # stdin is meant: read it, bounded (a terminal is refused: nothing would end the read)
        import sys

        stream = sys.stdin
        if stream is None or stream.isatty():
            raise LogFormatError("-: standard input is a terminal, not a log", hint="pipe a log in: ... | mpg calibrate -")
        data = stream.buffer.read(LOG_WHOLE_BYTES + 1)
        if len(data) > LOG_WHOLE_BYTES:
            raise LogFormatError(f"-: more than {LOG_WHOLE_BYTES:,} bytes on standard input",
                                 hint="pass the log as a file (large files are read as head and tail)")
        return data.decode("utf-8", errors="replace"), ()
    path = user_path(path_text, "training log")
    shown = clean(str(path))
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0
    if size <= LOG_WHOLE_BYTES:
        data = read_input(path, "training log", LOG_WHOLE_BYTES, error=LogFormatError)
        return data.decode("utf-8", errors="replace"), ()
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise LogFormatError(f"{shown}: cannot read: {_os_message(exc)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LogFormatError(f"{shown}: is {_kind(st.st_mode)}, not a regular file: refused as a training log")
        head = os.pread(fd, LOG_HEAD_BYTES, 0)
        tail = os.pread(fd, LOG_TAIL_BYTES, max(0, st.st_size - LOG_TAIL_BYTES))
        _READ[(st.st_dev, st.st_ino)] = str(path)
    except OSError as exc:
        raise LogFormatError(f"{shown}: cannot read: {_os_message(exc)}") from None
    finally:
        os.close(fd)
    head = head[: head.rfind(b"\n") + 1]  # whole lines only
    tail = tail[tail.find(b"\n") + 1:]
    text = (head + tail).decode("utf-8", errors="replace")
    note = (f"the log is {st.st_size / 2**20:,.0f} MiB: read its first {LOG_HEAD_BYTES >> 20} MiB and last "
            f"{LOG_TAIL_BYTES >> 20} MiB")
    return text, (note,)
