#!/usr/bin/env python3
"""A syslog daemon that has stopped reading: binds a unix datagram socket and never reads.

Usage: stuck-reader.py SOCKET_PATH [READY_FILE]

After binding, it fills the socket's receive queue with its own datagrams (from as many
sender sockets as it takes), so that any further send to SOCKET_PATH would block (or fail
with EAGAIN when non-blocking). Then it writes its pid to READY_FILE (if given), prints
"stuck" and sleeps until killed. glibc's syslog(3) hangs forever against such a socket.
"""
import os
import signal
import socket
import sys


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 64
    path = sys.argv[1]
    ready = sys.argv[2] if len(sys.argv) == 3 else None
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.bind(path)

    # Each sender is also limited by its own send buffer, so keep opening senders until a
    # fresh one cannot queue a single datagram: then the reader's queue itself is full.
    senders = []
    while True:
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.setblocking(False)
        sender.connect(path)
        sent = 0
        try:
            while True:
                sender.send(b"<14>stuck-reader: filler")
                sent += 1
        except BlockingIOError:
            pass
        senders.append(sender)
        if sent == 0:
            break
        if len(senders) > 100000:
            print("stuck-reader: could not fill the queue", file=sys.stderr)
            return 1

    if ready:
        with open(ready + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(ready + ".tmp", ready)
    print("stuck", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()  # never read


if __name__ == "__main__":
    sys.exit(main())
