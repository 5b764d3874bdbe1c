"""While a study runs, Ray's own output goes to `ray.log` in the study's folder, not to the
user's terminal.

The terminal is for tunelab's lines: the progress of the study, its summary, its errors in
one line each. Ray prints its internal state there too: warnings about its own driver loop
("The callbacks.on_step_end operation took 0.557 s ..."), a trial's whole traceback when it
fails (tunelab already reports the trial as errored, with the error), and what its worker
processes print, forwarded to the driver. Those lines matter when something goes wrong, so
they are kept, with their time, in the study's folder:

- Ray's Python loggers (`ray`, `ray.tune`, `ray.train`, ...: all pass their records up to
  `ray`, whose handler Ray points at standard error) and Optuna's (its own handler, likewise);
- what trial processes print (Ray forwards it when `log_to_driver` is on, as here);
- Python warnings raised in the driver, and records of any library that has no handler of
  its own (Python would print them on standard error as a last resort).

Until the study has a folder (Ray starts before it is created: the storage check needs Ray),
records wait in memory. A study that never gets a folder (Ray could not start) prints them
at the end after all: they say why. Afterwards the loggers are back as they were; worker
output stays with the study's log while this Ray runs (see `WorkerOutput`).
"""

from __future__ import annotations

import importlib
import logging
import logging.handlers
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RAY_LOG = "ray.log"
# Loggers that print to the terminal through handlers of their own, not the root logger's
# (each named as its library's module).
LIBRARY_LOGGERS = ("ray", "optuna")
# What trial processes print, forwarded by Ray: a logger of its own, so its lines reach the file
# whatever level Ray's loggers are set to.
TRIAL_OUTPUT = logging.getLogger("tunelab.trial_output")
WORKER_OUTPUT_HANDLER = "tunelab_ray_log"  # our name in Ray's dispatcher of forwarded lines
RAY_WORKER_PRINTER = "ray_print_logs"  # Ray's own handler there: prints to the terminal
# Ray's own format, with the logger's name: a line of the log says which part of Ray wrote it.
LOG_FORMAT = "%(asctime)s\t%(levelname)s %(name)s %(filename)s:%(lineno)s -- %(message)s"


class RayLog:
    """Where Ray's records go while a study runs: memory first, then the study's log file."""

    def __init__(self) -> None:
        self.path: Path | None = None
        # Without a target it holds every record (whatever its capacity) until `write_to`.
        self._handler: logging.Handler = logging.handlers.MemoryHandler(capacity=1000, flushLevel=logging.CRITICAL + 1)
        self._saved_handlers: dict[str, list[logging.Handler]] = {}
        self._warnings_were_captured = False

    def start(self) -> None:
        for name in LIBRARY_LOGGERS:
            # Each library gives its logger a terminal handler when it is first imported: import
            # it now, so that handler is one we set aside rather than one added beside ours.
            importlib.import_module(name)
            library = logging.getLogger(name)
            self._saved_handlers[name] = list(library.handlers)
            for handler in self._saved_handlers[name]:
                library.removeHandler(handler)
        for logger in self._loggers():
            logger.addHandler(self._handler)
        # Set only if we are the first to: a program that routes warnings itself keeps that.
        self._warnings_were_captured = _warnings_captured()
        logging.captureWarnings(True)
        _WORKER_OUTPUT.take(self._handler)

    def write_to(self, path: Path) -> None:
        """From now on, records go to `path` (appended: a resumed study adds to its log),
        starting with those kept so far. Call it once Ray runs: Ray registers its printer of
        worker lines when it starts, and this takes its place."""
        kept = self._handler
        self._handler = _file_handler(path)
        for logger in self._loggers():
            logger.removeHandler(kept)
            logger.addHandler(self._handler)
        _WORKER_OUTPUT.take(_file_handler(path))
        if isinstance(kept, logging.handlers.MemoryHandler):
            kept.setTarget(self._handler)
        kept.close()  # a memory handler's close hands what it holds to its target
        self.path = path

    def stop(self) -> None:
        """Ray's and the libraries' loggers as they were. Records that never found a file go
        to the terminal now: they say why the study could not start."""
        for logger in self._loggers():
            logger.removeHandler(self._handler)
        for name, handlers in self._saved_handlers.items():
            for handler in handlers:
                logging.getLogger(name).addHandler(handler)
        if not self._warnings_were_captured:
            logging.captureWarnings(False)
        if self.path is None:
            _WORKER_OUTPUT.give_back()
            if isinstance(self._handler, logging.handlers.MemoryHandler):
                _print_records(self._handler.buffer)
        self._handler.close()

    @staticmethod
    def _loggers() -> list[logging.Logger]:
        return [*(logging.getLogger(name) for name in LIBRARY_LOGGERS), logging.getLogger()]


class WorkerOutput:
    """Where lines that Ray's worker processes print go: Ray's printer to the terminal, or
    (from a study on) a log handler.

    Unlike Ray's loggers, this does not switch back when the study ends. Workers print on
    their way out too: Ray stops them once the study is over, and one stopped mid-teardown
    prints a "SystemExit" traceback. Those lines arrive late, below the study's summary; they
    go to the last study's log as long as this Ray runs, so the terminal ends with tunelab's
    own output.
    """

    def __init__(self) -> None:
        self._handler: logging.Handler | None = None
        self._ray_printer: Any = None  # Ray's handler, kept to give it back

    def take(self, handler: logging.Handler) -> None:
        dispatcher = _worker_output_dispatcher()
        if dispatcher is None:
            return
        printers = [printer for name, printer in dispatcher.handlers if name == RAY_WORKER_PRINTER]
        if printers:  # present whenever Ray was (re)started since we last looked
            self._ray_printer = printers[0]
            dispatcher.remove_handler(RAY_WORKER_PRINTER)
        if all(name != WORKER_OUTPUT_HANDLER for name, _ in dispatcher.handlers):
            dispatcher.add_handler(WORKER_OUTPUT_HANDLER, log_worker_lines)
        self._use(handler)

    def give_back(self) -> None:
        dispatcher = _worker_output_dispatcher()
        if dispatcher is None:
            return
        dispatcher.remove_handler(WORKER_OUTPUT_HANDLER)
        if self._ray_printer is not None:
            dispatcher.add_handler(RAY_WORKER_PRINTER, self._ray_printer)
            self._ray_printer = None
        self._use(None)

    def _use(self, handler: logging.Handler | None) -> None:
        if self._handler is not None:
            TRIAL_OUTPUT.removeHandler(self._handler)
            if not isinstance(self._handler, logging.handlers.MemoryHandler):
                self._handler.close()  # an earlier study's file; a study's memory handler is its own
        self._handler = handler
        if handler is not None:
            TRIAL_OUTPUT.addHandler(handler)


_WORKER_OUTPUT = WorkerOutput()
TRIAL_OUTPUT.setLevel(logging.INFO)
TRIAL_OUTPUT.propagate = False


@contextmanager
def ray_output_kept() -> Iterator[RayLog]:
    """Ray's output away from the terminal for the block: in memory until the block calls
    `write_to` with the study's log file."""
    log = RayLog()
    log.start()
    try:
        yield log
    finally:
        log.stop()


def log_worker_lines(data: dict[str, Any]) -> None:
    """One batch of lines a Ray process printed, labelled as Ray labels them on the terminal."""
    lines = data.get("lines", [])
    if data.get("pid") == "autoscaler":
        # Its whole status report every few seconds; Ray's printer keeps only its events.
        from ray._private.worker import filter_autoscaler_events

        lines = list(filter_autoscaler_events(lines))
    who = data.get("actor_name") or data.get("task_name") or "worker"
    for line in lines:
        TRIAL_OUTPUT.info("(%s pid=%s) %s", who, data.get("pid"), line)


def _file_handler(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


def _print_records(records: list[logging.LogRecord]) -> None:
    terminal = logging.StreamHandler()
    terminal.setFormatter(logging.Formatter(LOG_FORMAT))
    for record in records:
        terminal.handle(record)


def _worker_output_dispatcher() -> Any:
    """Ray's dispatcher of forwarded worker lines; None where this Ray has none."""
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher
    except ImportError:
        return None
    return global_worker_stdstream_dispatcher if hasattr(global_worker_stdstream_dispatcher, "handlers") else None


def _warnings_captured() -> bool:
    import warnings

    return getattr(warnings.showwarning, "__module__", "") == "logging"
