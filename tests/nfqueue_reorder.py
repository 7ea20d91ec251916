"""Reorders packets: a userspace NFQUEUE verdict program, run inside a network namespace.

This kernel has no ``netem``, but it has NFQUEUE: packets an iptables rule sends to queue
``QUEUE`` wait in the kernel until a program answers a verdict for each, and they leave in
the order of the verdicts. This program holds every ``EVERY``-th packet and lets it go right
after the next one (or after 5 ms when no next one comes), so those pairs leave swapped. It
speaks nfnetlink over a raw netlink socket (no libnetfilter_queue binding is installed).

    ip netns exec NS python nfqueue_reorder.py QUEUE EVERY

It prints ``ready`` once bound, and on SIGTERM ``reordered N of M`` (N swapped pairs, M
packets) before it exits. The iptables rule should carry ``--queue-bypass``, so packets flow
again if this program is gone.
"""

from __future__ import annotations

import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
QUEUE_CONFIG = (3 << 8) | 2  # NFNL_SUBSYS_QUEUE, NFQNL_MSG_CONFIG
QUEUE_VERDICT = (3 << 8) | 1  # NFQNL_MSG_VERDICT
QUEUE_PACKET = (3 << 8) | 0  # NFQNL_MSG_PACKET
REQUEST, ACK = 1, 4
CONFIG_COMMAND, CONFIG_PARAMS = 1, 2  # NFQA_CFG_CMD, NFQA_CFG_PARAMS
BIND, COPY_META = 1, 1  # NFQNL_CFG_CMD_BIND, NFQNL_COPY_META
PACKET_HEADER, VERDICT_HEADER = 1, 2  # NFQA_PACKET_HDR, NFQA_VERDICT_HDR
ACCEPT = 1  # NF_ACCEPT
HOLD_AT_MOST = 0.005


def _message(kind: int, flags: int, queue: int, attributes: bytes) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attributes
    return struct.pack("=IHHII", 16 + len(body), kind, flags, 0, 0) + body


def _attribute(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * (-length % 4)


def _packet_ids(datagram: bytes) -> list[int]:
    """The ids of the queued packets in one netlink datagram (several messages may share it)."""
    ids = []
    offset = 0
    while offset + 16 <= len(datagram):
        length, kind = struct.unpack_from("=IH", datagram, offset)
        if length < 16:
            break
        if kind == QUEUE_PACKET:
            at = offset + 20  # past the netlink and nfgen headers
            while at + 4 <= offset + length:
                size, attribute = struct.unpack_from("=HH", datagram, at)
                if size < 4:
                    break
                if attribute & 0x7FFF == PACKET_HEADER:
                    ids.append(struct.unpack_from(">I", datagram, at + 4)[0])
                at += (size + 3) & ~3
        offset += (length + 3) & ~3
    return ids


def main() -> int:
    queue, every = int(sys.argv[1]), int(sys.argv[2])
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    for attributes in (
        _attribute(CONFIG_COMMAND, struct.pack("=BBH", BIND, 0, 0)),
        _attribute(CONFIG_PARAMS, struct.pack(">IB", 0, COPY_META)),
    ):
        sock.send(_message(QUEUE_CONFIG, REQUEST | ACK, queue, attributes))
        error = struct.unpack_from("=i", sock.recv(4096), 16)[0]
        if error:
            print(f"nfqueue config failed: errno {-error}", file=sys.stderr)
            return 1

    def accept(packet: int) -> None:
        verdict = _attribute(VERDICT_HEADER, struct.pack(">II", ACCEPT, packet))
        sock.send(_message(QUEUE_VERDICT, REQUEST, queue, verdict))

    print("ready", flush=True)
    seen = reordered = 0
    held: tuple[int, float] | None = None
    sock.settimeout(HOLD_AT_MOST)
    while not stopping:
        try:
            datagram = sock.recv(1 << 16)
        except TimeoutError:
            datagram = b""
        except InterruptedError:
            continue
        for packet in _packet_ids(datagram):
            seen += 1
            if held is not None:
                accept(packet)  # the later packet leaves first
                accept(held[0])
                held = None
                reordered += 1
            elif seen % every == 0:
                held = (packet, time.monotonic())
            else:
                accept(packet)
        if held is not None and time.monotonic() - held[1] >= HOLD_AT_MOST:
            accept(held[0])
            held = None
    if held is not None:
        accept(held[0])
    print(f"reordered {reordered} of {seen}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
