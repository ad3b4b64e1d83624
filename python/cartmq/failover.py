"""Which broker an attempt goes to: the rules the C client library follows
too (contract §7), as plain state with no sockets so the sync and asyncio
clients share them.

- Each call starts at the next broker, round-robin, among those not marked
  down.
- An attempt that gets no reply within the timeout marks its broker down
  for a backoff that starts at max(timeout, 1 s) and doubles to 30 s (or
  stays at the timeout if that is longer); the next attempt goes to
  another broker: the next one up after it, round-robin, and the calls
  after it go on from there.
- When no broker is up, a call's first attempt goes to the one whose
  backoff ends first, and a retry to the other one (not the broker that
  just failed, unless it is the only one) whose backoff ends first. Down
  is never waited for: it only orders the choice.
- Any reply from a broker clears its mark and resets its backoff.

These are lib/src/broker_pick.c's rules, with the same names of events:
first = cmq_pick_next, next = cmq_pick_retry, on_timeout =
cmq_pick_failed, on_reply = cmq_pick_answered.
"""

import time
from typing import Callable, List, Optional, Sequence, Union

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
        self.max_backoff = max(self.first_backoff, MAX_BACKOFF_S)
        self.clock = clock
        self.cursor = 0
        self.down_until = [0.0] * count
        self.backoff = [self.first_backoff] * count

    def is_down(self, index: int) -> bool:
        return self.down_until[index] > self.clock()

    def first(self) -> int:
        """The broker for a call's first attempt; moves the cursor on."""
        index = self._scan(self.cursor, skip=None)
        self.cursor = (index + 1) % self.count
        return index

    def next(self, failed: int) -> int:
        """The broker for the attempt after one on failed got nothing: the
        next one up after it other than itself, or, none up, the other one
        whose backoff ends first (with one broker, that broker). Moves the
        cursor on past it, so the next call does not pile onto the broker
        that now takes the retries."""
        if self.count == 1:
            return 0
        index = self._scan((failed + 1) % self.count, skip=failed)
        self.cursor = (index + 1) % self.count
        return index

    def _scan(self, start: int, skip: Optional[int]) -> int:
        """The first broker up from start on, skipping skip; none up, the
        one (not skip) whose backoff ends first."""
        now = self.clock()
        candidates = [(start + step) % self.count for step in range(self.count)]
        candidates = [index for index in candidates if index != skip]
        for index in candidates:
            if self.down_until[index] <= now:
                return index
        return min(candidates, key=lambda index: self.down_until[index])

    def on_timeout(self, index: int) -> None:
        """An attempt on index got no reply in time: mark it down."""
        self.down_until[index] = self.clock() + self.backoff[index]
        self.backoff[index] = min(self.backoff[index] * 2, self.max_backoff)

    def on_reply(self, index: int) -> None:
        """index answered: up again, backoff reset."""
        self.down_until[index] = 0.0
        self.backoff[index] = self.first_backoff
