"""What both clients do with httpx: build a `Call`'s request, and read what a failure means."""

import httpx

from taskstream.client.calls import Config, Reply, Request

# Failures before the request left: sending it again cannot repeat anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def build(
    http: httpx.Client | httpx.AsyncClient,
    config: Config,
    request: Request,
    timeout: httpx.Timeout | float,
) -> httpx.Request:
    """The `httpx` request of a `Request`, sent (and sent again) as it is."""
    return http.build_request(
        request.method,
        config.url(request),
        params=request.params,
        json=request.body,
        headers=config.headers_for(request),
        timeout=timeout,
    )


def stream_timeout(connect: float, read: float) -> httpx.Timeout:
    """A stream's timeouts: `read` is how long it may stay silent."""
    return httpx.Timeout(connect, read=read)


def reply(response: httpx.Response, content: bytes) -> Reply:
    """What came back, as the calls and followers read it."""
    return Reply(response.status_code, response.headers, content)


def may_have_arrived(error: httpx.TransportError) -> bool:
    """Whether the server may have received the request that failed with `error`."""
    return not isinstance(error, _NOT_SENT)
