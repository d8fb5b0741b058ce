"""Python `websockets` peer: join a room, broadcast each message to the room's others.

No persistence. Run: python server.py [port]   (or PORT=...; default 4002). 127.0.0.1 only.

Wire shape (JSON text frames), chosen to be as small as the Socket.IO one:
  client -> server  {"op":"join","room":"room-1"}            answered {"op":"joined","room":"room-1"}
  client -> server  {"op":"msg","room":"room-1","body":"..."}
  server -> others  the same msg frame, unchanged
"""

import asyncio
import json
import logging
import os
import signal
import sys

from websockets.asyncio.server import broadcast, serve

rooms: dict[str, set] = {}


async def handler(ws):
    joined: set[str] = set()
    try:
        async for raw in ws:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            op = msg.get("op")
            room = msg.get("room")
            if not isinstance(room, str):
                continue
            if op == "msg":
                members = rooms.get(room)
                if members and room in joined:
                    broadcast([m for m in members if m is not ws], raw)
            elif op == "join":
                rooms.setdefault(room, set()).add(ws)
                joined.add(room)
                await ws.send(json.dumps({"op": "joined", "room": room}))
    finally:
        for room in joined:
            members = rooms.get(room)
            if members is not None:
                members.discard(ws)
                if not members:
                    del rooms[room]


async def main():
    # Writes to clients that dropped (the reconnect storm, the slow consumers) make asyncio
    # and websockets log a line each, millions in a run: keep the benchmark's log readable.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "4002"))
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # No compression, no server pings during a run: the same footing as the others.
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None,
                     max_queue=None, backlog=4096):
        print(f"python-websockets peer listening on 127.0.0.1:{port}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
