#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal, as a person at a terminal would see it.

    pty_run.py OUT [--columns N] -- COMMAND [ARGS...]

The command gets a new pty as its stdin, stdout and stderr (N columns wide, default 120);
every byte it writes there is appended to OUT as it arrives (flushed at once, so a test can
watch OUT while the command runs). Exits with the command's exit status (128+N if killed
by signal N).
"""

import argparse
import fcntl
import os
import pty
import struct
import sys
import termios


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--columns", type=int, default=120)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, args.columns, 0, 0))
        os.execvp(command[0], command)
    with open(args.out, "ab", buffering=0) as out:
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the command and its children closed the pty
                break
            if not data:
                break
            out.write(data)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status) % 256 if os.WIFEXITED(status)
             else 128 + os.WTERMSIG(status))


if __name__ == "__main__":
    main()
