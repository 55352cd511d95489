"""The offline gazetteer in a child process, for a server whose event loop must stay free.

Building the gazetteer's index is seconds of Python (2 s on a quiet machine, 10 s on a
loaded one), and each lookup some tenths of a millisecond more. In a worker thread of the
server they hold the interpreter's lock against the event loop: each time the loop waits on
I/O it may wait up to the switch interval (5 ms) to run again, so every phone's request
takes longer while the geocoder works, most of all during a big import, whose accounts it
places as they are written. In a child `python` (this module, which imports nothing but
geo/), the index is built and searched on another core: the server's thread only writes a
line and waits for the answer, without the lock.

One child per geocoder, started on the first call and again if it ended; it ends when the
server does (its input closes). Calls come from one worker thread at a time (the server's
geocoding round); a lock keeps them in turn anyway.
"""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from geo.gazetteer import OfflineGeocoder
from geo.gazetteer_index import DEFAULT_MIN_POPULATION
from geo.geocoding import GeocodeResult, GeocodingUnavailable

ROOT = str(Path(__file__).resolve().parents[1])  # where the `geo` package is


class OfflineGeocoderProcess:
    """An OfflineGeocoder answering from a child process: the same answers, none of its
    work in this process."""

    def __init__(self, min_population: int = DEFAULT_MIN_POPULATION) -> None:
        OfflineGeocoder(min_population)  # refuses a dataset that does not exist, here
        self.min_population = min_population
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)

    def geocode_address(
        self,
        *,
        street: str | None = None,
        city: str | None = None,
        region: str | None = None,
        postal_code: str | None = None,
        country: str | None = None,
    ) -> GeocodeResult | None:
        """OfflineGeocoder.geocode_address() in the child (which it starts if need be).
        Raises GeocodingUnavailable if the child ends without answering twice in a row, and
        RuntimeError if the gazetteer raised on this address."""
        address = [street, city, region, postal_code, country]
        with self._lock:
            for _ in range(2):
                answer = self._ask(address)
                if answer is not None:
                    found = json.loads(answer)
                    if isinstance(found, str):  # the gazetteer failed on this address
                        raise RuntimeError(f"the offline gazetteer failed: {found}")
                    return None if found is None else GeocodeResult(*found)
                self.close()
        raise GeocodingUnavailable("the offline gazetteer's process ended without answering")

    def close(self) -> None:
        """Stop the child, if one runs (the next call starts another). Also done when this
        process exits."""
        child, self._child = self._child, None
        if child is not None:
            child.kill()
            child.wait()
            for pipe in _pipes(child):
                pipe.close()

    def _ask(self, address: list[str | None]) -> bytes | None:
        try:
            child = self._started()
            pipe_in, pipe_out = _pipes(child)
            pipe_in.write(json.dumps(address).encode() + b"\n")
            pipe_in.flush()
            return pipe_out.readline() or None
        except OSError:
            return None

    def _started(self) -> subprocess.Popen[bytes]:
        if self._child is None or self._child.poll() is not None:
            self._child = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import sys; sys.path.insert(0, sys.argv[1]);"
                    " from geo.gazetteer_process import _child; _child()",
                    ROOT,
                    str(self.min_population),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        return self._child


def _pipes(child: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    assert child.stdin is not None and child.stdout is not None
    return child.stdin, child.stdout


def _child() -> None:
    """The child's side: an address a line on stdin (a JSON list), an answer a line on
    stdout (null, [lat, lng, precision, source], or what went wrong); until stdin closes."""
    geocoder = OfflineGeocoder(int(sys.argv[2]))
    geocoder.warm_up()
    names = ("street", "city", "region", "postal_code", "country")
    for line in sys.stdin.buffer:
        fields: dict[str, Any] = dict(zip(names, json.loads(line), strict=True))
        answer: Any
        try:
            found = geocoder.geocode_address(**fields)
        except Exception as exc:  # a bug: this address backs off alone, as in the server
            answer = f"{type(exc).__name__}: {exc}"
        else:
            answer = found and [found.lat, found.lng, found.precision, found.source]
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
