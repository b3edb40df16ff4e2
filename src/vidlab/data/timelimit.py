"""A time limit on reading one sample: ``with sample_time_limit(seconds, path): ...`` (``data.decode_timeout``).

A decoder that never returns (a file on a stalled network mount, a damaged stream that sends FFmpeg into a loop)
would hang a run with ``num_workers: 0`` forever; with workers, ``data.timeout`` stops the whole run after a batch
is overdue but cannot say which file was at fault. The limit works in two steps:

1. After ``seconds``, a ``SIGALRM`` raises :class:`DecodeTimeout` (a :class:`~vidlab.data.decode.VideoDecodeError`
   naming the file) in the thread that reads. Python runs signal handlers between bytecodes, so this ends any read
   that returns to the interpreter now and then: PyAV hands every packet and frame back to Python, and a blocking
   system call is interrupted. The sample is then treated like any undecodable video: ``data.on_error=raise``
   stops with the error, ``skip`` reads a substitute and reports the file.
2. If the read is still stuck ``GRACE`` seconds later (inside native code that neither returns nor is interrupted
   by a signal), a watchdog thread writes one line naming the file to stderr and ends the process with exit code
   1: in the main process the run stops (and ``--resume`` goes on from the last checkpoint); in a data-loader
   worker the main process reports the worker's death as a ``DataLoaderError``.

The limit applies in the main thread of a process (the data-loader workers' and, with ``num_workers: 0``, the
training process's), where signal handlers run; elsewhere, or while another ``SIGALRM`` handler or interval timer is
installed (a test runner's timeout, say), it is not armed and reading is unbounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

from vidlab.data.decode import VideoDecodeError

__all__ = ["DecodeTimeout", "sample_time_limit"]

GRACE = 10.0  # seconds between the alarm and the hard exit of a process whose read did not return


class DecodeTimeout(VideoDecodeError):
    """Reading one sample took longer than ``data.decode_timeout`` seconds."""

    def __init__(self, path: str, seconds: float) -> None:
        super().__init__(
            path, f"reading it took longer than {seconds:g} s (data.decode_timeout); a stalled file system or a "
            "damaged stream that keeps the decoder busy"
        )  # fmt: skip


class _Watchdog:
    """One daemon thread per process that ends the process when an armed deadline passes."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._message = ""
        threading.Thread(target=self._run, name="vidlab-decode-watchdog", daemon=True).start()

    def arm(self, deadline: float, message: str) -> None:
        with self._cond:
            self._deadline, self._message = deadline, message
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._deadline = None
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                sys.stderr.write(self._message + "\n")
                sys.stderr.flush()
                os._exit(1)


_WATCHDOG: _Watchdog | None = None


def _watchdog() -> _Watchdog:
    """This process's watchdog (threads do not survive a fork: a data-loader worker starts its own)."""
    global _WATCHDOG
    if _WATCHDOG is None or _WATCHDOG.pid != os.getpid():
        _WATCHDOG = _Watchdog()
    return _WATCHDOG


def _can_arm() -> bool:
    return (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN)
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    )


@contextlib.contextmanager
def sample_time_limit(seconds: float | None, path: str) -> Iterator[None]:
    """Bounds the time of the enclosed read of ``path`` to ``seconds`` (None or 0: unbounded); see the module doc.

    Raises:
        DecodeTimeout: The read took longer than ``seconds``.
    """
    if not seconds or not _can_arm():
        yield
        return

    armed = [True]  # the timer fires once; after the read, a late alarm must not raise

    def on_alarm(signum: int, frame: object) -> None:
        if armed[0]:
            raise DecodeTimeout(path, seconds)

    dog = _watchdog()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    message = (
        f"vidlab: error: {path}: reading it did not return within {seconds:g} s (data.decode_timeout) nor "
        f"{GRACE:g} s after it was interrupted; stuck in native code, the process (pid {os.getpid()}) stops"
    )
    try:
        dog.arm(time.monotonic() + seconds + GRACE, message)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:  # reached even when the alarm raised inside the block above: the one alarm is spent by then
        dog.disarm()
        signal.signal(signal.SIGALRM, previous)
