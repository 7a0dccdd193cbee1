"""A minimal asyncio SMTP responder with canned replies, for benchmarks only (127.0.0.1).

    python bench/smtp_sink.py PORT
"""

from __future__ import annotations

import asyncio
import sys


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    in_data = False
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    writer.write(b"250 2.0.0 queued\r\n")
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 52428800\r\n")
            elif verb == b"DATA":
                in_data = True
                writer.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(session, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await asyncio.sleep(3600)  # bounded: the benchmark kills it long before


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
