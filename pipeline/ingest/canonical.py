"""Canonical article URLs: one story, one URL, one id.

Why: the same article arrives as ``...?utm_source=rss``, via a news-search redirect link, with a
fragment, or with an upper-case host. The article id is a hash of the canonical URL, so these
must all collapse to one string, while real differences (a path, an ``id=`` parameter) are kept.
"""

from __future__ import annotations

import hashlib
import re
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

# Links a news search engine puts in its RSS in place of the article: host -> query parameter.
_REDIRECT_PARAMS: dict[str, tuple[str, ...]] = {
    "www.google.com": ("url", "q"),
    "google.com": ("url", "q"),
    "news.google.com": ("url",),
    "www.bing.com": ("url",),
    "bing.com": ("url",),
    "r.search.yahoo.com": ("RU",),
    "l.facebook.com": ("u",),
    "out.reddit.com": ("url",),
    "t.umblr.com": ("z",),
}
_REDIRECT_PATHS = ("/url", "/news/apiclick.aspx", "/l.php", "/redirect")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CANONICAL = re.compile(rb"<link\b[^>]*\brel\s*=\s*[\"']?canonical[\"']?[^>]*>", re.IGNORECASE)
_HREF = re.compile(rb"\bhref\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.IGNORECASE)


def resolve_redirect_link(url: str) -> str:
    """Unwrap a news-search click-tracking link (Google ``/url?url=``, Bing ``apiclick``) to its target.

    Links that only resolve by fetching (e.g. opaque Google News article ids) are returned as they
    are; the page fetch follows their HTTP redirects and ``rel=canonical`` names the real page.
    """
    for _ in range(3):  # nested wrappers happen (a redirect to a redirect)
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        names = _REDIRECT_PARAMS.get(host)
        if not names or not any(parts.path.startswith(p) for p in _REDIRECT_PATHS):
            return url
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        target = next((query[n] for n in names if query.get(n, "").startswith(("http://", "https://"))), None)
        if target is None:
            return url
        url = target
    return url


def is_tracking_param(name: str) -> bool:
    lower = name.lower()
    return lower in TRACKING_PARAMS or lower.startswith(TRACKING_PREFIXES)


def canonicalize_url(url: str, base: str | None = None) -> str:
    """A normalised absolute URL: unwrapped, lower-case scheme/host, no default port, no fragment,
    no tracking parameters, ``%``-escapes normalised; everything else kept in its order."""
    url = (url or "").strip()
    if base:
        url = urljoin(base, url)
    url = resolve_redirect_link(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return url
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    netloc = host
    if parts.port and parts.port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{parts.port}"
    path = re.sub(r"/{2,}", "/", parts.path or "/")
    path = _normalise_escapes(path)
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking_param(k)],
        doseq=True,
    )
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

    value = urljoin(page_url, unescape(raw))
    if urlsplit(value).scheme not in ("http", "https"):
        return None
    return value


def article_id(canonical_url: str) -> str:
    """The document id of an article: a hash of its canonical URL (32 hex chars)."""
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:32]
