"""Embedded mode: `earlyhelp serve` keeps one `earlyhelp worker` running as its child process.

A process, not a thread beside the API: in a thread, delivery (templates, PDFs, Prefect's client)
took turns with the requests for one interpreter lock, and the API process grew from 123 to 252 MiB.
Now the API process never imports Prefect (122 MiB after 5 000 transitions; bench/RESULTS.md); the
two processes still share the machine's cores. The worker stops with `serve`, and by itself if
`serve` dies; what it started (Prefect's temporary server) goes with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger("earlyhelp.embedded")


def worker_command() -> list[str]:
    return [sys.executable, "-m", "api.cli", "worker", "--parent-pid", str(os.getpid())]


class WorkerProcess:
    """Start the worker, restart it when it exits (back-off up to a minute), stop it on request."""

    def __init__(self, command: list[str] | None = None, restart_delay: float = 5.0) -> None:
        self.command = command or worker_command()
        self.restart_delay = restart_delay
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="earlyhelp-worker-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        delay = self.restart_delay
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                # Its own process group: what it starts (Prefect's temporary server) can be stopped
                # with it, when it had to be killed or died without stopping its children.
                self._process = subprocess.Popen(self.command, start_new_session=True)
                started = time.monotonic()
            log.info("earlyhelp worker запущен (pid %s): доставка сообщений и сроки", self._process.pid)
            code = self._process.wait()
            _kill_group(self._process.pid)
            if self._stopping.is_set():
                return
            # A worker that ran for a while gets the short delay again; one that keeps failing waits longer.
            delay = self.restart_delay if time.monotonic() - started > 60 else min(delay * 2, 60.0)
            log.error("earlyhelp worker завершился с кодом %s; перезапуск через %.0f с", code, delay)
            if self._stopping.wait(delay):
                return

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the worker to finish its batch (SIGTERM); kill it if it takes longer than `timeout`."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None:
            _kill_group(process.pid)
        self._thread.join(5)


def _kill_group(pid: int) -> None:
    """Kills what is left of a stopped worker's process group: a worker that exits normally stops
    Prefect's temporary server itself (atexit); one killed or crashed left it running, orphaned."""
    with contextlib.suppress(ProcessLookupError):  # nothing left
        os.killpg(pid, signal.SIGKILL)
