"""A minimal asyncio SMTP responder with canned replies, for benchmarks only (127.0.0.1).

    python bench/smtp_sink.py PORT

It must not be what a benchmark measures: it takes the socket's data in chunks (an asyncio
Protocol, no stream readers) and looks for the end of DATA with one search per chunk, never
line by line, and it answers pipelined commands in one write. ``XCPU`` (a private
command) answers ``250 <user> <system> <count>``: this process's CPU seconds so far and
the messages accepted, so a benchmark can report the sink's share of a core for exactly
the interval it measured.
"""

from __future__ import annotations

import asyncio
import resource
import sys

EHLO = b"250-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n"
END = b"\r\n.\r\n"
accepted = 0


def cpu() -> bytes:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return f"250 {usage.ru_utime:.6f} {usage.ru_stime:.6f} {accepted}\r\n".encode()


class Session(asyncio.Protocol):
    """One SMTP session; ``data_received`` gets whatever the socket had (up to 256 KiB)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""
        self.in_data = False
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, chunk: bytes) -> None:
        global accepted
        buffer = self.buffer + chunk if self.buffer else chunk
        replies: list[bytes] = []
        while buffer:
            if self.in_data:
                end = buffer.find(END)
                if end < 0:  # the terminator may straddle chunks: keep what could start it
                    buffer = buffer[-4:]
                    break
                buffer = buffer[end + len(END):]
                self.in_data = False
                accepted += 1
                replies.append(b"250 2.0.0 queued\r\n")
                continue
            eol = buffer.find(b"\r\n")
            if eol < 0:
                break
            line, buffer = buffer[:eol], buffer[eol + 2:]
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                replies.append(EHLO)
            elif verb == b"DATA":
                self.in_data = True
                buffer = b"\r\n" + buffer  # so that an empty message still ends at END
                replies.append(b"354 go ahead\r\n")
            elif verb == b"XCPU":
                replies.append(cpu())
            elif verb == b"QUIT":
                self.transport.write(b"".join(replies) + b"221 bye\r\n")
                self.transport.close()
                return
            else:
                replies.append(b"250 OK\r\n")
        self.buffer = buffer
        if replies:
            self.transport.write(b"".join(replies))


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Session, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await asyncio.sleep(3600)  # bounded: the benchmark kills it long before


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
