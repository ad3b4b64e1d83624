"""cartmq: Python client and worker for a cartmq (ZeroMQ Majordomo)
cluster.

    import cartmq
    with cartmq.Client("tcp://127.0.0.1:5555") as client:
        client.add_item("alice", "sku-1", "Coffee beans", 2, 1250)
        print(client.get_cart("alice"))

``cartmq.Client`` (sync) and ``cartmq.aio.Client`` (asyncio) call the cart
service, any MDP service and the broker's MMI over one or several brokers
with failover; ``cartmq.Worker`` serves an MDP service written in Python.
See docs/python.md.
"""

from . import aio, curve
from .client import Client
from .errors import CartError, Error, NoReply, ProtocolError
from .worker import Worker

__version__ = "0.1.0"
__all__ = ["Client", "Worker", "aio", "curve", "Error", "CartError", "NoReply", "ProtocolError"]
