"""Canonical article URLs: one story, one URL, one id.

Why: the same article arrives as ``...?utm_source=rss``, via a news-search redirect link, with a
fragment, or with an upper-case host. The article id is a hash of the canonical URL, so these
must all collapse to one string, while real differences (a path, an ``id=`` parameter) are kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gclsrc",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wickedid",
        "ocid",
        "cmpid",
        "ito",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "sr_share",
        "smid",
        "smtyp",
        "xtor",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
        "s_cid",
        "guccounter",
        "guce_referrer",
        "guce_referrer_sig",
        "ref_src",
        "ref_url",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hmb_", "at_", "__twitter")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_CANONICAL = re.compile(rb"<link\b[^>]*\brel\s*=\s*[\"']?canonical[\"']?[^>]*>", re.IGNORECASE)
_HREF = re.compile(rb"\bhref\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.IGNORECASE)

# Links a news search engine (or a social site) puts in its feeds in place of the article.
# host -> [(path prefix, query parameters that carry the target)]
_REDIRECT_RULES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "news.google.com": (("/url", ("url",)),),
    "www.bing.com": (("/news/apiclick.aspx", ("url",)), ("/ck/a", ("u",))),
    "bing.com": (("/news/apiclick.aspx", ("url",)), ("/ck/a", ("u",))),
    "cn.bing.com": (("/news/apiclick.aspx", ("url",)), ("/ck/a", ("u",))),
    "duckduckgo.com": (("/l/", ("uddg",)),),
    "l.facebook.com": (("/l.php", ("u",)),),
    "lm.facebook.com": (("/l.php", ("u",)),),
    "out.reddit.com": (("/", ("url",)),),
    "t.umblr.com": (("/redirect", ("z",)),),
}
_GOOGLE_SEARCH = re.compile(r"^(?:www\.)?google\.(?:[a-z]{2,3}|co\.[a-z]{2}|com\.[a-z]{2})$")
_GOOGLE_NEWS_ARTICLE = re.compile(r"^/(?:__i/rss/rd/)?(?:rss/)?(?:articles|read)/([A-Za-z0-9_-]+)")
_YAHOO_HOSTS = frozenset({"r.search.yahoo.com", "r.news.yahoo.com"})


@dataclass(frozen=True)
class NewsLink:
    """A feed link with its news-search wrapper taken off where that can be done offline.

    ``wrapper``: which wrapper the link had (``google_news``, ``google``, ``bing``, ``yahoo``,
    ``redirect``) or None for a plain link. ``resolved`` is False for a wrapper whose target is
    not in the link (a Google News opaque id): ``url`` is then the link as given, and only a
    fetch (following its HTTP redirect) can tell the article's address.
    """

    url: str
    wrapper: str | None = None
    resolved: bool = True


def _is_http_url(value: str) -> bool:
    if not value.startswith(("http://", "https://")) or len(value) > 4096:
        return False
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    host = parts.hostname or ""
    return bool(host) and ("." in host or ":" in host) and not host.startswith(".")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _length_delimited(data: bytes) -> list[bytes]:
    """The length-delimited values of a protobuf-style message, in order, nested ones included;
    stops quietly at the first byte that does not fit the wire format."""
    found: list[bytes] = []
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            wire = key & 7
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                size, pos = _varint(data, pos)
                if pos + size > len(data):
                    break
                value = data[pos : pos + size]
                found.append(value)
                if value[:1] and not value.startswith(b"http"):
                    found.extend(_length_delimited(value))
                pos += size
            else:
                break
    except ValueError:
        pass
    return found


_URL_BYTES = re.compile(rb"https?://[\x21-\x7e]+")


def decode_google_news_id(article: str) -> str | None:
    """The publisher URL inside a Google News article id (``news.google.com/rss/articles/<id>``),
    or None when the id is opaque (the newer ``AU_yqL...`` payloads) or not decodable.

    The id is base64url of a small protobuf-style message; the older format keeps the article
    URL in clear as a length-delimited field (often followed by an AMP URL: the first one wins).
    """
    try:
        raw = base64.urlsafe_b64decode(article + "=" * (-len(article) % 4))
    except (ValueError, binascii.Error):
        return None
    candidates = [v for v in _length_delimited(raw) if v.startswith((b"http://", b"https://"))]
    if not candidates:  # a damaged message: look for a URL in the bytes themselves
        candidates = _URL_BYTES.findall(raw)
    for value in candidates:
        try:
            url = value.decode("utf-8")
        except UnicodeDecodeError:
            continue
        host = (urlsplit(url).hostname or "").lower() if _is_http_url(url) else ""
        if host and host != "news.google.com":
            return url
    return None


def _bing_ck_target(value: str) -> str | None:
    # Bing's /ck/a click links carry the target as "a1" + base64url(URL) in ``u``.
    if not value.startswith("a1"):
        return value
    payload = value[2:]
    try:
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def _unwrap_once(url: str) -> NewsLink | None:
    """One wrapper taken off, or None when ``url`` is not a known wrapper (or not a URL at all)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:  # "http://[::1/x" and the like: nothing to unwrap; the fetch says why
        return None
    path = parts.path
    if host == "news.google.com" and (match := _GOOGLE_NEWS_ARTICLE.match(path)):
        target = decode_google_news_id(match.group(1))
        if target is None:
            return NewsLink(url, "google_news", resolved=False)
        return NewsLink(target, "google_news")
    if host in _YAHOO_HOSTS:
        # r.search.yahoo.com/_ylt=...;_ylu=.../RV=2/RE=.../RO=10/RU=<escaped target>/RK=2/RS=...
        for segment in path.split("/"):
            if segment.startswith("RU="):
                target = unquote(segment[3:])
                if _is_http_url(target):
                    return NewsLink(target, "yahoo")
        return NewsLink(url, "yahoo", resolved=False) if "/RU=" in path else None
    if _GOOGLE_SEARCH.match(host):
        rules: tuple[tuple[str, tuple[str, ...]], ...] = (("/url", ("url", "q")),)
        wrapper = "google"
    else:
        rules = _REDIRECT_RULES.get(host, ())
        wrapper = "bing" if host.endswith("bing.com") else "redirect"
        if host == "news.google.com":
            wrapper = "google_news"
    for prefix, names in rules:
        if not (path == prefix or path.startswith(prefix.rstrip("/") + "/") or prefix == "/"):
            continue
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        for name in names:
            value = query.get(name, "")
            if wrapper == "bing" and name == "u":
                value = _bing_ck_target(value) or ""
            if _is_http_url(value):
                return NewsLink(value, wrapper)
        return NewsLink(url, wrapper, resolved=False)
    return None


def unwrap_news_link(url: str) -> NewsLink:
    """Take news-search wrappers off ``url`` offline: Google News article ids that hold the URL,
    Google ``/url?url=``, Bing ``apiclick.aspx?url=`` and ``/ck/a?u=``, Yahoo ``RU=``, DuckDuckGo,
    Facebook, reddit and Tumblr redirects. Nothing is fetched; only http(s) targets are taken.

    A wrapper whose target is not in the link (a Google News opaque id) comes back unchanged
    with ``resolved=False``: the page fetch follows its HTTP redirect, if there is one.
    """
    link = NewsLink(url)
    for _ in range(3):  # nested wrappers happen (a redirect to a redirect)
        step = _unwrap_once(link.url)
        if step is None:
            break
        link = NewsLink(step.url, link.wrapper or step.wrapper, step.resolved)
        if not step.resolved:
            break
    return link


def resolve_redirect_link(url: str) -> str:
    """``url`` with its news-search wrappers taken off where the target is in the link itself.

    Links that only resolve by fetching (opaque Google News article ids) are returned as they
    are; the page fetch follows their HTTP redirects and ``rel=canonical`` names the real page.
    """
    return unwrap_news_link(url).url


def is_unresolved_news_link(url: str) -> bool:
    """True for a news-search link whose article address is not known (an opaque Google News id,
    a wrapper without a usable target): such an article should be flagged, not trusted as the
    publisher's URL."""
    return not unwrap_news_link(url).resolved


def is_tracking_param(name: str) -> bool:
    lower = name.lower()
    return lower in TRACKING_PARAMS or lower.startswith(TRACKING_PREFIXES)


def canonicalize_url(url: str, base: str | None = None) -> str:
    """A normalised absolute URL: unwrapped, lower-case scheme/host, no default port, no fragment,
    no tracking parameters, ``%``-escapes normalised; everything else kept in its order.

    Raises ``ValueError`` for what ``urlsplit`` refuses (a bad port, an unclosed IPv6 bracket);
    ``safe_canonicalize_url`` gives such a string back as it is instead."""
    url = (url or "").strip()
    if base:
        url = urljoin(base, url)
    return _canonical(url)


def safe_canonicalize_url(url: str) -> str:
    """``canonicalize_url``, or ``url`` stripped when it cannot be split: a broken link from a feed
    is then its own canonical form, stable, so it still gives one article id at every poll."""
    try:
        return canonicalize_url(url)
    except ValueError:
        return (url or "").strip()


def _may_wrap(host: str) -> bool:
    """True for a host ``_unwrap_once`` may take a wrapper off; any other link is its own target."""
    return (
        host in _REDIRECT_RULES
        or host in _YAHOO_HOSTS
        or host == "news.google.com"
        or _GOOGLE_SEARCH.match(host) is not None
    )


_MULTI_SLASH = re.compile(r"/{2,}")
_PLAIN_PAIR = re.compile(r"[A-Za-z0-9_.~-]+=[A-Za-z0-9_.~-]*\Z")


@lru_cache(maxsize=16_384)
def _canonical(url: str) -> str:
    # Cached: a run meets the same link as feed link, page URL and rel=canonical. The split URL
    # is reused unless a wrapper came off, and every step that cannot change this URL (escapes
    # without "%", IDNA of an ASCII host, an empty query) is skipped: this runs for every link.
    parts = urlsplit(url)
    if _may_wrap(parts.hostname or ""):
        unwrapped = resolve_redirect_link(url)
        if unwrapped != url:
            url, parts = unwrapped, urlsplit(unwrapped)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return url
    if not host.isascii():  # the IDNA codec leaves an ASCII host as it is (or fails on it)
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    netloc = host
    port = parts.port
    if port and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{port}"
    path = parts.path or "/"
    if "//" in path:
        path = _MULTI_SLASH.sub("/", path)
    if "%" in path:
        path = _normalise_escapes(path)
    query = ""
    if parts.query:
        pairs = parts.query.split("&")
        if all(map(_PLAIN_PAIR.match, pairs)):
            # Only unreserved characters and one "=" per pair: decoding and re-encoding would give
            # back the same text, so the pairs are kept as they are (most feed links are like this).
            query = "&".join(p for p in pairs if not is_tracking_param(p.partition("=")[0]))
        else:
            kept = parse_qsl(parts.query, keep_blank_values=True)
            query = urlencode([(k, v) for k, v in kept if not is_tracking_param(k)], doseq=True)
    return urlunsplit((scheme, netloc, path, query, ""))


def _normalise_escapes(path: str) -> str:
    # Decode escapes of unreserved characters only ("%7E" -> "~"), upper-case the rest.
    def fix(match: re.Match[str]) -> str:
        char = unquote(match.group(0))
        if re.match(r"[A-Za-z0-9\-._~]", char):
            return char
        return match.group(0).upper()

    return re.sub(r"%[0-9A-Fa-f]{2}", fix, path)


def find_rel_canonical(html: bytes, page_url: str) -> str | None:
    """The page's ``<link rel=canonical href=...>``, absolute; None when absent or not http(s).

    A regex over the first 256 KiB of the head is enough and far cheaper than a DOM parse.
    """
    head = html[: 256 * 1024]
    end = head.lower().find(b"</head>")
    if end >= 0:
        head = head[:end]
    match = _CANONICAL.search(head)
    if not match:
        return None
    href = _HREF.search(match.group(0))
    if not href:
        return None
    raw = next(g for g in href.groups() if g is not None).decode("utf-8", "replace").strip()
    from html import unescape

    try:
        value = urljoin(page_url, unescape(raw))
        if urlsplit(value).scheme not in ("http", "https"):
            return None
    except ValueError:  # a page's rel=canonical is the page's claim, not worth an error
        return None
    return value


def article_id(canonical_url: str) -> str:
    """The document id of an article: a hash of its canonical URL (32 hex chars)."""
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:32]
