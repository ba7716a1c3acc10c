"""The training loop's progress on the terminal: a bar whose rate and time left count
training alone, and lines of their own for everything else the loop says.

Rate and time left come from the seconds spent inside training calls (`trained`):
evaluations, images and checkpoints between them do not slow the rate down, and the
first call, which traces and compiles the step, is left out of it (its seconds would
make the first estimates of time left many times too long). Until a second call has
finished the bar shows no rate.

On a terminal the bar is one line, redrawn in place and as wide as the terminal (80
columns where it reports none); `say` clears it and writes its message on a line of its
own, so that other output (an evaluation's) never lands on the bar's line. Written to a
file or a pipe there is no bar: a plain line every `every_seconds` of training and at
the end, with no carriage returns.
"""

import shutil
import sys
import time
from typing import Callable, Optional, TextIO

# Plain lines (output to a file): at most one per this many seconds of wall time.
EVERY_SECONDS = 30.0
# Width when the terminal reports none (0 columns) or cannot be asked.
FALLBACK_COLUMNS = 80
# The narrowest bar drawn; with less room the line is the status alone.
MIN_BAR = 5
# Columns kept for the status beside the bar, so that the bar keeps its width while the
# status grows (a rate, the time left): "step 150/300 (50%), 25.0 steps/s, 0:06 left,
# g_loss 1.000" is 58.
STATUS_COLUMNS = 60


def duration(seconds: float) -> str:
    """Seconds as h:mm:ss or m:ss ("0:07", "1:02:03")."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """Progress of `total` steps from `start`, written to `stream`.

    Args:
      total, start: the last step and the step training starts (resumes) from.
      stream: where it writes (default: stdout).
      enabled: False writes nothing (workers other than the chief).
      terminal: whether `stream` is a terminal (default: `stream.isatty()`).
      columns: the terminal's width (default: asked of the terminal; 0 or unknown is
        FALLBACK_COLUMNS).
      clock: seconds, monotonic (tests pass their own).
      every_seconds: the interval of plain lines when not on a terminal.
      name: what trains, the lines' first word ("training"; a stage's name).
      loss_name: how the loss is shown ("g_loss": the generator's).
    """

    def __init__(self, total: int, start: int, stream: Optional[TextIO] = None,
                 enabled: bool = True, terminal: Optional[bool] = None,
                 columns: Optional[int] = None, clock: Callable[[], float] = time.perf_counter,
                 every_seconds: float = EVERY_SECONDS, name: str = "training",
                 loss_name: str = "g_loss"):
        self.total, self.step = total, start
        self.name, self.loss_name = name, loss_name
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self._columns = columns
        self.clock = clock
        self.every_seconds = every_seconds
        # Seconds inside training calls, and where the rate's count starts (the end
        # of the first call).
        self.training_seconds = 0.0
        self._rate_from: Optional[tuple[int, float]] = None
        self._shown = False  # a bar is on the terminal's current line
        self._last_line = -float("inf")
        self.loss: Optional[float] = None

    # -- measuring ---------------------------------------------------------------------

    def trained(self, step: int, seconds: float) -> None:
        """Counts a training call that reached `step` in `seconds` (of `clock`)."""
        self.training_seconds += seconds
        if self._rate_from is None:
            self._rate_from = (step, self.training_seconds)
        self.step = step

    def rate(self) -> Optional[float]:
        """Steps per second of training after the first call, or None (one call yet)."""
        if self._rate_from is None:
            return None
        steps, seconds = self.step - self._rate_from[0], self.training_seconds - self._rate_from[1]
        return steps / seconds if steps > 0 and seconds > 0 else None

    # -- showing -----------------------------------------------------------------------

    def status(self) -> str:
        """"step 150/300 (50%), 25.0 steps/s, 0:06 left, g_loss 4.933"."""
        percent = 100 * self.step // max(self.total, 1)
        parts = [f"step {self.step}/{self.total} ({percent}%)"]
        rate = self.rate()
        if rate:
            parts += [f"{rate:.1f} steps/s", f"{duration((self.total - self.step) / rate)} left"]
        if self.loss is not None:
            parts.append(f"{self.loss_name} {self.loss:.3f}")
        return ", ".join(parts)

    def columns(self) -> int:
        if self._columns is not None:
            return self._columns or FALLBACK_COLUMNS
        return shutil.get_terminal_size((FALLBACK_COLUMNS, 24)).columns or FALLBACK_COLUMNS

    def bar_line(self) -> str:
        """The terminal's line: "training [#####-----] " and `status()`, cut to the width
        (one column spare: a full line would wrap on some terminals). The bar takes what
        STATUS_COLUMNS leave; a status longer than that, or a narrow terminal, gets no
        bar."""
        width = self.columns() - 1
        status = self.status()
        room = width - STATUS_COLUMNS - len(f"{self.name} [] ")
        if room >= MIN_BAR and len(status) <= STATUS_COLUMNS:
            filled = room * self.step // max(self.total, 1)
            line = f"{self.name} [{'#' * filled}{'-' * (room - filled)}] {status}"
        else:
            line = f"{self.name} {status}"
        return line[:width]

    def advance(self, step: int, loss: Optional[float] = None) -> None:
        """Shows `step` (and the generator's `loss`, when given): the bar redrawn, or
        a plain line when one is due (`every_seconds`) or training is done."""
        self.step = step
        if loss is not None:
            self.loss = loss
        if not self.enabled:
            return
        if self.terminal:
            self._write("\r" + self.bar_line().ljust(self.columns() - 1) + "\r")
            self._shown = True
            return
        now = self.clock()
        if now - self._last_line >= self.every_seconds or step >= self.total:
            self._last_line = now
            self._write(f"{self.name}: {self.status()}\n")

    def say(self, message: str) -> None:
        """`message` on a line of its own (the bar, on a terminal, cleared first and
        drawn again at the next `advance`)."""
        if not self.enabled:
            return
        self._clear()
        self._write(message + "\n")

    def close(self) -> None:
        """Ends the bar's line, leaving the last status on it."""
        if self.enabled and self._shown:
            self._write("\r" + self.bar_line() + "\n")
            self._shown = False

    def _clear(self) -> None:
        if self._shown:
            self._write("\r" + " " * (self.columns() - 1) + "\r")
            self._shown = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

