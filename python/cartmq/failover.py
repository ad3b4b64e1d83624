"""Which broker an attempt goes to: the rules the C client library follows
too (contract §7), as plain state with no sockets so the sync and asyncio
clients share them.

- Each call starts at the next broker, round-robin, among those not marked
  down.
- An attempt that gets no reply within the timeout marks its broker down
  for a backoff that starts at max(timeout, 1 s) and doubles to 30 s; the
  next attempt goes to another broker that is not down.
- When every broker is down, the attempt goes to the one whose backoff ends
  first (it is not waited for: down only orders the choice).
- Any reply from a broker clears its mark and resets its backoff.
"""

import time
from typing import Callable, List, Sequence, Union

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
MAX_BACKOFF_S = 30.0


def parse_endpoints(endpoints: Union[str, Sequence[str], None]) -> List[str]:
    """A list of endpoints from a list or one comma-separated string
    (None: the default endpoint). ValueError if none is left."""
    if endpoints is None:
        return [DEFAULT_ENDPOINT]
    if isinstance(endpoints, (bytes, bytearray)):
        endpoints = endpoints.decode()
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    result = []
    for item in items:
        if isinstance(item, (bytes, bytearray)):
            item = item.decode()
        if not isinstance(item, str):
            raise TypeError("an endpoint is a string: %r" % (item,))
        result.extend(part.strip() for part in item.split(",") if part.strip())
    if not result:
        raise ValueError("no broker endpoint given")
    return result


class Failover:
    """Down marks and the round-robin cursor over n brokers."""

    def __init__(self, count: int, timeout_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.count = count
        self.first_backoff = max(timeout_s, 1.0)
        self.clock = clock
        self.cursor = 0
        self.down_until = [0.0] * count
        self.backoff = [self.first_backoff] * count

    def is_down(self, index: int) -> bool:
        return self.down_until[index] > self.clock()

    def first(self) -> int:
        """The broker for a call's first attempt; moves the cursor on."""
        index = self._next_up(self.cursor)
        self.cursor = (index + 1) % self.count
        return index

    def next(self, previous: int) -> int:
        """The broker for the attempt after one on previous got nothing:
        another broker that is up (round-robin from previous), or, all
        down, the one whose backoff ends first."""
        return self._next_up((previous + 1) % self.count)

    def _next_up(self, start: int) -> int:
        now = self.clock()
        for step in range(self.count):
            index = (start + step) % self.count
            if self.down_until[index] <= now:
                return index
        return min(range(self.count), key=lambda index: self.down_until[index])

    def on_timeout(self, index: int) -> None:
        """An attempt on index got no reply in time: mark it down."""
        self.down_until[index] = self.clock() + self.backoff[index]
        self.backoff[index] = min(self.backoff[index] * 2, MAX_BACKOFF_S)

    def on_reply(self, index: int) -> None:
        """index answered: up again, backoff reset."""
        self.down_until[index] = 0.0
        self.backoff[index] = self.first_backoff
