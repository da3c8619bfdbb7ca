"""Every place newswatch changes or reaches into a third-party library, in one module.

Each patch says why it exists, checks that the library still has the shape it expects (and
otherwise does nothing or fails loudly, never patches blindly), and is covered by a test that
compares the patched library with the stock one:

- ``install_feedparser_speedups`` / ``remove_feedparser_speedups``: two shortcuts through
  feedparser's generic machinery that give the same values (``parse.parse_feed`` installs them;
  the benchmark's baseline removes them);
- ``transport_with_backend``: an ``httpx.HTTPTransport`` whose connection pool uses our network
  backend (``connections.PinnedBackend``), which httpx has no parameter for.

The feed text and page text go through trafilatura and feedparser unmodified otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

_ATOMIC = (str, int, float, bool, type(None))
_SPEEDUPS: list[tuple[Any, str, Any]] = []  # (owner, attribute, stock value) of what was replaced
# FeedParserDict keys whose lookup is more than a dict lookup: aliases and computed keys
_COMPUTED_KEYS = ("category", "enclosures", "license", "updated", "updated_parsed")


def install_feedparser_speedups() -> None:
    """Two shortcuts through feedparser's generic machinery, each for the cases where it gives
    the same value (a test parses the corpus feeds with and without them and compares every
    field; another compares the dictionary lookups key by key):

    - feedparser deep-copies the parameters of every text element it closes (a small dict of
      strings, two or three times per entry) through ``copy.deepcopy``: about a tenth of its parse
      time. Its ``mixin`` module gets a ``copy`` whose ``deepcopy`` makes a plain copy of such a
      dict and hands anything else to the real ``copy.deepcopy``.
    - ``FeedParserDict`` looks every key up through its alias table and five special cases, some
      thirty times per entry. A key that is neither an alias nor special becomes a plain dict
      lookup; the others take feedparser's own path, so its behaviour is unchanged.

    Skipped if feedparser's layout is not the expected one. ``remove_feedparser_speedups``
    puts the stock code back (the benchmark's baseline is stock feedparser)."""
    if _SPEEDUPS:
        return
    import copy

    try:
        from feedparser import mixin
        from feedparser.util import FeedParserDict
    except ImportError:
        return
    keymap = getattr(FeedParserDict, "keymap", None)
    if getattr(mixin, "copy", None) is not copy or not isinstance(keymap, dict):
        return

    class _Copy:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            if type(value) is FeedParserDict and all(type(v) in _ATOMIC for v in value.values()):
                return FeedParserDict(value)
            return copy.deepcopy(value, memo)

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

    stock_getitem, stock_get = FeedParserDict.__getitem__, FeedParserDict.get
    stock_contains = FeedParserDict.__contains__
    slow = frozenset(keymap).union(_COMPUTED_KEYS)
    plain_getitem, plain_get, plain_contains = dict.__getitem__, dict.get, dict.__contains__

    def getitem(self: Any, key: Any) -> Any:
        return stock_getitem(self, key) if key in slow else plain_getitem(self, key)

    def get(self: Any, key: Any, default: Any = None) -> Any:
        return stock_get(self, key, default) if key in slow else plain_get(self, key, default)

    def contains(self: Any, key: Any) -> bool:
        return stock_contains(self, key) if key in slow else plain_contains(self, key)

    _SPEEDUPS.extend([
        (mixin, "copy", copy),
        (FeedParserDict, "__getitem__", stock_getitem),
        (FeedParserDict, "get", stock_get),
        (FeedParserDict, "__contains__", stock_contains),
    ])
    mixin.copy = _Copy()
    FeedParserDict.__getitem__ = getitem
    FeedParserDict.get = get
    FeedParserDict.__contains__ = contains


def remove_feedparser_speedups() -> None:
    """Stock feedparser again (``install_feedparser_speedups`` may install them once more)."""
    while _SPEEDUPS:
        owner, name, value = _SPEEDUPS.pop()
        setattr(owner, name, value)



def transport_with_backend(
    *, limits: Any, ssl_context: ssl.SSLContext | None, network_backend: Any
) -> Any:
    """An ``httpx.HTTPTransport`` (HTTP/1.1, no proxies from the environment) whose pool connects
    through ``network_backend``.

    httpx.HTTPTransport (0.28) builds an httpcore.ConnectionPool with the default network backend
    and has no parameter for another one: the same pool is built with ours and swapped in. An
    httpx that no longer keeps its pool there is refused, not patched."""
    import httpcore
    import httpx

    transport = httpx.HTTPTransport(trust_env=False, limits=limits)
    if not isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):
        raise RuntimeError("httpx.HTTPTransport no longer keeps its pool in _pool")
    transport._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=network_backend,
    )
    return transport
