#!/usr/bin/env python3
"""A ProxyCommand standing in for `tailscale nc %h %p` over a cellular link (test infrastructure).

ssh runs it as its ProxyCommand: it connects to --to HOST:PORT (a node's sshd) and relays
ssh's stdin to the socket and the socket to ssh's stdout, as `tailscale nc` does, with a link's
awkward properties, each optional:

  --latency-ms N   every batch waits N ms before it is passed on (each direction, in order)
  --rate B         at most B bytes a second each way
  --burst-ms N     what arrives within N ms is passed on in one write: a loaded node or a
                   cellular link delivers several of ssh's packets in one read, so sshd sees
                   them together (a session's close and the next session's open, say)
  --cut-after B    after B bytes from ssh, the link is cut (both ways, at once), once: the
                   cut is remembered in --cut-file, and later connections are not cut
  --log FILE       one line per connection (ProxyCommand run), and its environment's
                   variable names and values in FILE.env.N, for tests to read

See README.md beside this file.
"""

import argparse
import os
import select
import socket
import sys
import threading
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--to", required=True)
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--burst-ms", type=float, default=0)
    p.add_argument("--cut-after", type=int, default=0)
    p.add_argument("--cut-file")
    p.add_argument("--log")
    a = p.parse_args()

    if a.log:
        with open(a.log, "a") as log:
            log.write("connect %d\n" % os.getpid())
        with open("%s.env.%d" % (a.log, os.getpid()), "w") as env:
            for k, v in sorted(os.environ.items()):
                env.write("%s=%s\n" % (k, v))

    host, port = a.to.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cut = [a.cut_after if a.cut_after and not os.path.exists(a.cut_file or "") else 0]

    def batches(read, fd):
        """Chunks from `read`, each gathered over the burst window."""
        while True:
            data = read()
            if not data:
                return
            if a.burst_ms:
                deadline = time.monotonic() + a.burst_ms / 1000
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0 or not select.select([fd], [], [], left)[0]:
                        break
                    more = read()
                    if not more:
                        yield data
                        return
                    data += more
            yield data

    def pace(data):
        if a.latency_ms:
            time.sleep(a.latency_ms / 1000)
        if a.rate:
            time.sleep(len(data) / a.rate)

    def upstream():
        sent = 0
        for data in batches(lambda: os.read(0, 65536), 0):
            pace(data)
            if cut[0] and sent + len(data) >= cut[0]:
                sock.sendall(data[: cut[0] - sent])
                if a.cut_file:
                    open(a.cut_file, "w").close()
                os._exit(0)
            sock.sendall(data)
            sent += len(data)
        sock.shutdown(socket.SHUT_WR)

    def downstream():
        for data in batches(lambda: sock.recv(65536), sock.fileno()):
            pace(data)
            while data:
                data = data[os.write(1, data) :]
        os._exit(0)

    threading.Thread(target=upstream, daemon=True).start()
    downstream()


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, ConnectionError):
        os._exit(0)
