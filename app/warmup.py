"""The page a visitor gets while the app is still starting (standard library only).

Importing PyTorch, CompressAI and Gradio and loading the models takes several seconds on a
2-core CPU. :class:`WarmupPage` answers on the app's address from the first moment with a short
page that says the explorer is warming up and reloads itself; the app stops it just before Gradio
takes the port over. Every path gets the page, with status 503 and ``Retry-After`` so that
scripts and health checks wait for the real app.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: ``Retry-After`` of the page, and its reload period without JavaScript (with it, it asks every
#: 0.25 s whether the explorer answers).
RELOAD_SECONDS = 1

PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GABIC explorer — warming up</title>
<noscript><meta http-equiv="refresh" content="{RELOAD_SECONDS}"></noscript>
<style>body {{font-family: system-ui, sans-serif; margin: 4em auto; max-width: 36em; color: #333}}</style>
</head><body>
<h1>GABIC explorer</h1>
<p><strong>Warming up…</strong> the models are loading and the sample photo is being compressed.
This page reloads itself and turns into the explorer in a few seconds.</p>
<script>
  // ask every quarter second whether the explorer answers, and show it as soon as it does
  const poll = () => fetch(location.href, {{cache: "no-store"}})
    .then(response => response.ok ? location.reload() : setTimeout(poll, 250))
    .catch(() => setTimeout(poll, 250));
  setTimeout(poll, 250);
</script>
</body></html>
""".encode()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.send_response(503)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.send_header("Retry-After", str(RELOAD_SECONDS))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(PAGE)

    def do_HEAD(self) -> None:  # noqa: N802
        self.send_response(503)
        self.send_header("Retry-After", str(RELOAD_SECONDS))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return None


class WarmupPage:
    """Serve :data:`PAGE` on ``host:port`` from a background thread until :meth:`stop`.

    If the port cannot be bound (taken, or a host this machine does not have), nothing is
    served and :attr:`error` says why; Gradio then reports the problem when it starts.
    """

    def __init__(self, host: str, port: int) -> None:
        self.error: OSError | None = None
        self._server: ThreadingHTTPServer | None = None
        try:
            self._server = ThreadingHTTPServer((host, port), _Handler)
        except OSError as error:
            self.error = error
            return
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="warmup-page", daemon=True)
        self._thread.start()

    @property
    def serving(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        """Stop answering and free the port (idempotent)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None
