"""``ContinuumProxy``: JupyterHub's configurable-http-proxy client without stale connections.

In the 200-user storm 11 of 200 spawns failed with "Repeated api_request to proxy path
/user/<name> failed": the server was up, but its route never reached the proxy, and JupyterHub
stopped the server.  The proxy never saw those requests.  JupyterHub 6 sends its proxy API
requests through the hub's shared aiohttp session, which keeps idle connections for 15 s;
configurable-http-proxy's API server is a plain Node.js ``http`` server, which closes idle
connections after 5 s (Node's ``keepAliveTimeout``; CHP's ``--keep-alive-timeout`` only
applies to the proxied side).  A connection idle between 5 and 15 s is reused after Node closed
it, and with the hub's event loop busy (API p95 10 s in the storm) the close is not noticed
before the reuse: the request fails with "Server disconnected" or "Can not write request body"
(the classic keep-alive race; 71 failed attempts in that run).  Each retry may meet another
stale connection, and JupyterHub's retries share a 30 s deadline that also counts the wait for
one of its 10 concurrent request slots and the loop's own delays.

This subclass changes only how the requests travel:

* a new loopback connection per request (``force_close``): no connection is ever reused, so
  none can be stale; a connect on loopback costs well under a millisecond;
* each attempt bounded by ``api_request_timeout`` (aiohttp's default is 5 minutes, and
  JupyterHub's backoff cannot end an attempt that hangs);
* the attempts of one request bounded by ``api_retry_timeout`` (120 s; JupyterHub: 30 s).

What is retried and what is raised stays JupyterHub's: connection errors and 5xx answers are
retried with exponential backoff, other errors raised.  A proxy API on a Unix socket or behind
the hub's internal TLS is left to JupyterHub's own client.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.utils import exponential_backoff, url_path_join
from traitlets import Float


class ContinuumProxy(ConfigurableHTTPProxy):
    """configurable-http-proxy, its API reached without keep-alive (see the module)."""

    api_request_timeout = Float(
        60.0,
        config=True,
        help="""Seconds one request to the proxy's API may take before it is retried.  The
        proxy answers in milliseconds; what takes longer is the hub's own event loop, which
        lagged 20 s behind in a 200-user storm on two shared cores (an attempt timed out
        there is repeated, harmlessly: adding a route again replaces it).""",
    )

    api_retry_timeout = Float(
        120.0,
        config=True,
        help="""Seconds the attempts of one proxy API request may take together, waits for
        a free request slot (``concurrency``) included, before the route update fails
        (JupyterHub: 30).  A failed route update stops the user's new server.""",
    )

    def _own_client(self) -> bool:
        """Whether this class's client reaches the API (plain HTTP or HTTPS without the
        hub's internal TLS); otherwise JupyterHub's."""
        internal_ssl = bool(getattr(self.app, "internal_ssl", False))
        return urlsplit(self.api_url).scheme in ("http", "https") and not internal_ssl

    async def api_request(
        self, path: str, method: str = "GET", body: Any = None
    ) -> aiohttp.ClientResponse:
        """Make an authenticated request of the proxy's API; its answer, read.

        Raises
        ------
        aiohttp.ClientResponseError
            For an answer below 500 that is not a success (JupyterHub's behaviour).
        TimeoutError
            When no attempt succeeded within ``api_retry_timeout``.
        """
        if not self._own_client():
            return await super().api_request(path, method=method, body=body)
        url = url_path_join(self.api_url, "api/routes", path)
        data = json.dumps(body) if isinstance(body, dict) else body
        self.log.debug("Proxy: Fetching %s %s", method, url)

        async def attempt() -> aiohttp.ClientResponse | None:
            try:
                async with self.semaphore:
                    return await self._request(url, method, data)
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                message = str(exc) or type(exc).__name__
                self.log.warning("Proxy API %s %s failed (%s), retrying", method, path, message)
                return None
            except aiohttp.ClientResponseError as exc:
                if exc.status >= 500:
                    self.log.warning("Proxy API %s %s: %d, retrying", method, path, exc.status)
                    return None
                self.log.error("Proxy API %s %s failed: %s", method, path, exc)
                raise

        return await exponential_backoff(
            attempt,
            f'Repeated api_request to proxy path "{path}" failed.',
            timeout=self.api_retry_timeout,
        )

    async def _request(self, url: str, method: str, data: Any) -> aiohttp.ClientResponse:
        """One attempt, on a connection of its own; the answer's body is read before the
        connection closes (``resp.json()`` then reads it from memory)."""
        timeout = aiohttp.ClientTimeout(total=self.api_request_timeout)
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            response = await session.request(
                method,
                url,
                headers={"Authorization": f"token {self.auth_token}"},
                data=data,
            )
            async with response:
                await response.read()
            response.raise_for_status()
            return response
