#!/usr/bin/env python3
"""inventory_worker.py - a second service beside the cart, in Python.

A tiny in-memory stock count per SKU, served over the same brokers as the
cart. Requests and replies are msgpack maps, as the cart's are:

    {"op": "set",  "sku": "sku-1", "count": 10}  -> {"status": 200, "sku", "count"}
    {"op": "take", "sku": "sku-1", "count": 3}   -> {"status": 200, "sku", "count"}
                                                    (409 if not enough in stock)
    {"op": "get",  "sku": "sku-1"}               -> {"status": 200, "sku", "count"}
    {"op": "list"}                               -> {"status": 200, "stock": {sku: count}}

A body that is not one msgpack map is echoed back unchanged (a ping), so
`cartmq bench --service inventory` can load it.

    PYTHONPATH=python examples/inventory_worker.py --connect tcp://127.0.0.1:5555
"""

import argparse
import logging
from typing import Any, Dict, List

import msgpack

import cartmq

stock: Dict[str, int] = {}


def answer(request: Dict[str, Any]) -> Dict[str, Any]:
    op, sku, count = request.get("op"), request.get("sku"), request.get("count")
    if op == "list":
        return {"status": 200, "stock": dict(stock)}
    if not isinstance(sku, str) or not sku:
        return {"status": 400, "error": "sku must be a non-empty string"}
    if op == "get":
        return {"status": 200, "sku": sku, "count": stock.get(sku, 0)}
    if type(count) is not int or count < 0:
        return {"status": 400, "error": "count must be an integer >= 0"}
    if op == "set":
        stock[sku] = count
    elif op == "take":
        if stock.get(sku, 0) < count:
            return {"status": 409, "error": "only %d in stock" % stock.get(sku, 0)}
        stock[sku] -= count
    else:
        return {"status": 400, "error": "unknown op"}
    return {"status": 200, "sku": sku, "count": stock[sku]}


async def handle(frames: List[bytes]) -> List[bytes]:
    try:
        request = msgpack.unpackb(frames[0], raw=False) if len(frames) == 1 else None
    except Exception:  # noqa: BLE001 - not msgpack: a ping
        request = None
    if not isinstance(request, dict):
        return frames
    return [msgpack.packb(answer(request), use_bin_type=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connect", action="append", help="broker endpoint (repeatable)")
    parser.add_argument("--service", default="inventory")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--heartbeat-ms", type=int, default=2500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="inventory: %(message)s")
    worker = cartmq.Worker(args.connect or "tcp://127.0.0.1:5555", args.service, handle,
                           concurrency=args.concurrency, heartbeat_ms=args.heartbeat_ms)
    worker.run()


if __name__ == "__main__":
    main()
