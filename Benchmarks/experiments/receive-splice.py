#!/usr/bin/env python3
"""How fast can a resync target take 1 MiB payloads off a loopback socket into a file?

An experiment for the next step of docs/PERFORMANCE.md (the target's receive thread is the
bottleneck): a sender sends frames of a 40-byte header and a 1 MiB payload spliced from the
page cache (`sendfile`, as Replica's SyncSource does); the receiver takes each payload

  copy    recv into a buffer, then pwrite (what Replica does today: two copies)
  stream  splice socket -> pipe -> file, draining the pipe as it fills (one copy; but the data
          reaches the file before anyone looked at the frame)
  held    splice socket -> a chain of 1 MiB pipes until the whole payload is held (no copy),
          then pipes -> file (one copy; the engine could decide in between)

Usage: receive-splice.py MODE MIB [prefilled]   (files on /dev/shm; traffic on 127.0.0.1 only)
  prefilled: the target file's pages exist before the run (a resync after an outage); without
  it the target is a new sparse file (a full sync onto a blank disk), whose pages tmpfs must
  allocate and clear as they are first written.
"""
import fcntl, os, select, socket, sys, threading, time

MIB = 1 << 20
HEADER = 40
F_SETPIPE_SZ = 1031


def splice_without_waiting(conn, pipe, count):
    """Bytes moved from the socket into the pipe, 0 when either would block."""
    try:
        return os.splice(conn.fileno(), pipe, count, flags=os.SPLICE_F_NONBLOCK)
    except BlockingIOError:
        return 0


def main():
    mode, total = sys.argv[1], int(sys.argv[2]) * MIB
    source, target = "/dev/shm/receive-splice-src", "/dev/shm/receive-splice-dst"
    with open(source, "wb") as f:
        f.write(os.urandom(MIB) * (total // MIB))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def send():
        s = socket.create_connection(listener.getsockname())
        fd = os.open(source, os.O_RDONLY)
        offset = 0
        while offset < total:
            s.sendall(b"h" * HEADER)
            end = offset + MIB
            while offset < end:
                offset += os.sendfile(s.fileno(), fd, offset, end - offset)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        s.close()

    sender = threading.Thread(target=send)
    sender.start()
    conn, _ = listener.accept()
    out = os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.ftruncate(out, total)
    if len(sys.argv) > 3 and sys.argv[3] == "prefilled":
        for offset in range(0, total, MIB):
            os.pwrite(out, bytes(MIB), offset)
    pipes = []
    for _ in range(4):
        r, w = os.pipe()
        fcntl.fcntl(w, F_SETPIPE_SZ, MIB)
        pipes.append((r, w))
    buffer = bytearray(MIB)
    view = memoryview(buffer)
    calls = 0
    pipes_per_payload = []
    start = time.monotonic()
    written = 0
    while written < total:
        header = b""
        while len(header) < HEADER:
            header += conn.recv(HEADER - len(header))
        if mode == "copy":
            got = 0
            while got < MIB:
                got += conn.recv_into(view[got:MIB])
            os.pwrite(out, view, written)
            written += MIB
            calls += 2
        elif mode == "stream":
            left = MIB
            while left:
                n = os.splice(conn.fileno(), pipes[0][1], left)
                left -= n
                while n:
                    m = os.splice(pipes[0][0], out, n, offset_dst=written)
                    n -= m
                    written += m
                    calls += 1
                calls += 1
        else:
            held = [0] * len(pipes)
            index, left = 0, MIB
            while left:
                n = splice_without_waiting(conn, pipes[index][1], left)
                calls += 1
                if n == 0:
                    # Either the socket has nothing yet or this pipe is full: wait for data, and
                    # if the pipe still takes nothing, go on with the next one.
                    select.select([conn], [], [], 1)
                    n = splice_without_waiting(conn, pipes[index][1], left)
                    calls += 1
                    if n == 0:
                        index += 1
                        continue
                held[index] += n
                left -= n
            pipes_per_payload.append(index + 1)
            for i, count in enumerate(held):
                while count:
                    m = os.splice(pipes[i][0], out, count, offset_dst=written)
                    count -= m
                    written += m
                    calls += 1
    elapsed = time.monotonic() - start
    conn.send(b"x")
    sender.join()
    same = open(source, "rb").read() == os.pread(out, total, 0)
    extra = ""
    if pipes_per_payload:
        extra = ", pipes per payload: max %d" % max(pipes_per_payload)
    print("%s: %.0f MB/s, %.1f calls per MiB%s, data equal: %s" % (mode, total / elapsed / 1e6, calls / (total / MIB), extra, same))
    os.unlink(source)
    os.unlink(target)


main()
