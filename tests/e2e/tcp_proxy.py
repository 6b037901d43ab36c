#!/usr/bin/python3
"""A tiny loopback TCP proxy for the etcd end-to-end tests.

    tcp_proxy.py --target HOST:PORT [--listen PORT] --port-file FILE
    tcp_proxy.py --blackhole [--listen PORT] --port-file FILE

It listens on 127.0.0.1 (PORT, or one the kernel picks when PORT is 0 or absent), writes
the port it listens on to FILE (atomically: FILE appears complete or not at all) and then
forwards every connection to HOST:PORT, both ways, with half-closes passed on.

One thread, one select loop: `kill -STOP` freezes every connection at once (data sent to
the proxy sits in kernel buffers, nothing comes back), which is what a network partition
of one client looks like to that client; `kill -CONT` lets it go on. New connections are
still completed by the kernel while frozen (up to the listen backlog) but never answered.

--blackhole listens and never accepts: a connect succeeds (the kernel completes it) and
the request is never answered, like a host that went dark behind a firewall that drops.

Ends on SIGTERM/SIGINT (or SIGKILL). Standard library only.
"""

import argparse
import os
import selectors
import signal
import socket
import sys


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", help="HOST:PORT to forward to")
    ap.add_argument("--blackhole", action="store_true", help="listen, never accept")
    ap.add_argument("--listen", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    if not args.blackhole and not args.target:
        ap.error("--target or --blackhole is required")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.listen))
    lsock.listen(128)
    write_port_file(args.port_file, lsock.getsockname()[1])

    if args.blackhole:
        while True:
            signal.pause()

    host, _, port = args.target.rpartition(":")
    target = (host or "127.0.0.1", int(port))

    sel = selectors.DefaultSelector()
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    # peer[sock] = the other end; half-closed directions are tracked per socket
    peer = {}
    read_done = set()

    def close_pair(s):
        for x in (s, peer.get(s)):
            if x is None:
                continue
            try:
                sel.unregister(x)
            except (KeyError, ValueError):
                pass
            peer.pop(x, None)
            read_done.discard(x)
            x.close()

    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is lsock:
                try:
                    c, _ = lsock.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                try:
                    u = socket.create_connection(target, timeout=2)
                except OSError:
                    c.close()  # the target refuses: so does the proxy (reset)
                    continue
                for x in (c, u):
                    x.setblocking(True)
                    x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peer[c], peer[u] = u, c
                sel.register(c, selectors.EVENT_READ, None)
                sel.register(u, selectors.EVENT_READ, None)
                continue
            other = peer.get(s)
            if other is None:
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = None
            if data:
                try:
                    other.sendall(data)
                except OSError:
                    close_pair(s)
                continue
            if data is None:
                close_pair(s)
                continue
            # EOF from s: pass the half-close on, stop reading s
            read_done.add(s)
            sel.unregister(s)
            try:
                other.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if other in read_done:
                close_pair(s)


if __name__ == "__main__":
    main()
