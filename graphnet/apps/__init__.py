"""Builtin applications on the session layer (issue 12): echo server and
client and the cut-through echo pair (graphnet.apps.echo), throughput
source and sink (graphnet.apps.throughput). Each is started from the CLI
(``test echo server|client|pair uri ...``, ``test throughput
source|sink uri ...``) or the startup file (``[[app]]`` with ``type`` one
of KINDS), and runs as a C callback in the engine's loop.

``start_builtin`` is what they share: attach the app with the builtin's
callback, then listen or connect (a connect gets its source address from
the FIB, or none for a cut-through session); the builtin's C state is kept
on the app as ``app.builtin``.
"""

# type -> (module, function, extra options it takes); the startup file and the CLI use this
KINDS = {
    "echo-server": ("graphnet.apps.echo", "start_echo_server", ()),
    "echo-client": ("graphnet.apps.echo", "start_echo_client", ("count", "size", "window")),
    "echo-pair": ("graphnet.apps.echo", "start_echo_pair", ("count", "size", "window")),
    "throughput-sink": ("graphnet.apps.throughput", "start_sink", ()),
    "throughput-source": ("graphnet.apps.throughput", "start_source", ("bytes", "size")),
}


def start(engine, kind, uri, name=None, **options):
    """Start a builtin app by its KINDS type (the startup file's [[app]])."""
    import importlib
    module, fn, _ = KINDS[kind]
    return getattr(importlib.import_module(module), fn)(engine, uri, name, **options)


def start_builtin(engine, uri, name, make, action, options):
    """Attach app `name` whose callback is make(layer).callback(); listen on
    or connect to `uri` (action); returns the app. Runs in the engine's loop."""
    from graphnet.session.application import session_manager, parse_uri
    parse_uri(uri)                                   # a clear error before anything is made
    engine.build()

    def go():
        mgr = session_manager(engine)
        state = make(mgr.layer)
        app = mgr.attach(name, callback=state.callback(), **options)
        try:
            w = app.workers[0]
            if action == "listen":
                w.listen(uri)
            else:
                w.connect(uri, 0)                    # the source address as the kernel picks it
        except BaseException:
            app.detach()
            raise
        app.builtin = state
        return app
    return engine.call(go)
