"""graphnet.app: the application side of the session layer, for programs in
their own processes (issue 14). The engine side is graphnet.session.attach.

    from graphnet import app
    a = app.attach("web")                       # one per process; path: $GRAPHNET_APP_SOCKET or beside cli.sock
    with app.socket(app.AF_INET, app.SOCK_STREAM) as s:     # graphnet.app.socket: mirrors the socket module
        s.connect(("127.0.0.1", 5000))
        s.sendall(b"hello")

What a process holds (``Attachment``): its connection to the attach
socket, the app's segments mapped at whatever address mmap chose (fifos and
queues are named by offset), and its worker (``Worker``): the event queue
the engine fills (eventfd: ``Worker.fileno()``) and the queue it sends its
requests on (tx, close, reset, accepted-reply, rx-done, shutdown). Listen and connect
are requests on the attach socket; their results come as events.

Invariants:
  - one worker per process: ``os.fork()`` in an attached process makes the
    child a new worker of the same app (an at-fork hook: the child closes
    its copy of the parent's connection and attaches a worker of its own
    with the app's secret); the parent's sessions stay the parent's;
  - a segment named by an event that this process has not mapped is asked
    for on the attach socket (the engine gives it only if it is the app's,
    or holds a session of this worker);
  - offsets from events are checked by Fifo / MessageQueue (magic, bounds)
    before any byte is touched;
  - ``detach()`` (or the process's exit) ends only this process's worker;
    a killed process is noticed by the engine through the closed socket.
"""
from graphnet.app.core import (AF_INET, SOCK_STREAM, SOCK_DGRAM, ENV_SOCKET, Attachment, Worker, Session,  # noqa: F401
                               attach, current, detach, os_error)
from graphnet.app.socket import socket, create_connection, SHUT_RD, SHUT_WR, SHUT_RDWR  # noqa: F401
