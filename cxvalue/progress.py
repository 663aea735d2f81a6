"""What a long run says while it works: which step or notebook is running and for how long.

A progress callback is ``progress(step, seconds)``: called with ``seconds=None`` when ``step``
starts and with its duration when it ends. The end of a step of the run's own process also says
that process's peak memory so far (the step where it jumps is the one to look at). :class:`Reporter` prints them: on a terminal, one
line redrawn in place with a bar of the steps done and the time of the running ones; anywhere
else (a cron log, a CI log, a pipe), one plain line per start and end, with no escape codes.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, TextIO

__all__ = ["Progress", "quiet", "timed", "Reporter", "RUN_STEPS"]

Progress = Callable[[str, "float | None"], None]

#: The steps of ``cxvalue run`` before the notebooks, for the bar's length.
RUN_STEPS = 14


def quiet(step: str, seconds: float | None) -> None:
    """A progress callback that says nothing."""
    return None


def timed(progress: Progress, step: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn()`` as ``step``, telling ``progress`` of its start and end."""
    progress(step, None)
    t0 = time.perf_counter()
    out = fn()
    progress(step, time.perf_counter() - t0)
    return out


def _peak_gb() -> float:
    """This process's peak resident memory so far, GB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


class Reporter:
    """Print progress to ``stream`` (default stderr): a bar when it is a terminal, plain lines otherwise.

    ``total``: steps expected (the bar's length; more steps simply fill it). A background
    thread redraws the bar each second so the running time moves while a step works.
    """

    def __init__(self, stream: TextIO | None = None, total: int = RUN_STEPS, tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total = total
        self.done = 0
        self.running: dict[str, float] = {}
        self.t0 = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if self.tty:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def __call__(self, step: str, seconds: float | None) -> None:
        with self._lock:
            now = time.perf_counter() - self.t0
            if seconds is None:
                self.running[step] = time.perf_counter()
                if not self.tty:
                    self._line(f"[{_clock(now)}] {step} ...")
            else:
                self.running.pop(step, None)
                self.done += 1
                memory = "" if step.startswith("notebook ") else f" (peak memory so far {_peak_gb():.1f} GB)"
                if self.tty:
                    self._clear()
                    self._line(f"[{_clock(now)}] {step}: {seconds:.1f} s{memory}")
                else:
                    self._line(f"[{_clock(now)}] {step}: done in {seconds:.1f} s{memory}")
            if self.tty:
                self._draw()

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _clear(self) -> None:
        self.stream.write("\r\x1b[2K")

    def _draw(self) -> None:
        width = 24
        total = max(self.total, self.done + len(self.running))
        filled = int(width * self.done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        now = time.perf_counter()
        doing = ", ".join(f"{s} {now - t:.0f} s" for s, t in self.running.items())
        text = f"[{bar}] {self.done}/{total}  {_clock(now - self.t0)}  {doing}"
        self._clear()
        self.stream.write(text[:200])
        self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self.running:
                    self._draw()

    def elapsed(self) -> float:
        """Seconds since the reporter was made."""
        return time.perf_counter() - self.t0

    def close(self) -> None:
        """Stop redrawing and leave the terminal on a fresh line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            if self.tty:
                self._clear()
                self.stream.flush()
