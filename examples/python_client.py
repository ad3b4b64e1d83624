#!/usr/bin/env python3
"""python_client.py - fill a cart, read it back, and see who serves.

    PYTHONPATH=python examples/python_client.py [ENDPOINT[,ENDPOINT...]] [USER]
"""

import json
import sys

import cartmq

endpoints = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
user = sys.argv[2] if len(sys.argv) > 2 else "alice"

with cartmq.Client(endpoints, timeout_ms=2500, retries=2) as client:
    client.add_item(user, "sku-1", "Coffee beans", 2, 1250)
    client.add_item(user, "sku-2", "Mug", 1, 800)
    client.update_quantity(user, "sku-1", 3)
    try:
        client.remove_item(user, "sku-9")
    except cartmq.CartError as error:
        print("remove sku-9:", error.status, error.error)
    print(json.dumps(client.get_cart(user)))
    print(json.dumps(client.services()))
