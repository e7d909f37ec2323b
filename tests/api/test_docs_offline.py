"""The docs pages work on a machine without internet: everything they load comes from
our own server, without credentials, and they show our OpenAPI document."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import httpx
import pytest

OPENAPI_URL = "/openapi.json"
# Where each page names the document it shows: Swagger UI in its inline script, ReDoc
# in an attribute of its element.
SPEC_URL = {
    "/docs": re.compile(r"""\burl:\s*['"]([^'"]+)['"]"""),
    "/redoc": re.compile(r"""<redoc\s+spec-url=['"]([^'"]+)['"]"""),
}


@dataclass(frozen=True)
class Link:
    tag: str
    rel: str
    url: str

    @property
    def expected_type(self) -> str:
        """The content type this kind of link must load, or "" for a kind we don't know."""
        if self.tag == "script":
            return "javascript"
        if self.tag == "link" and self.rel == "stylesheet":
            return "text/css"
        if self.tag == "link" and "icon" in self.rel.split():
            return "image/"
        return ""

    @property
    def min_size(self) -> int:
        # The real bundles are hundreds of KB; a stub or an error page is not.
        return 100 if self.expected_type == "image/" else 10_000


class Links(HTMLParser):
    """Every src= and href= of a page, with the tag and rel= it stands in."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[Link] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            url = values.get(name)
            if url is not None:
                self.found.append(Link(tag, (values.get("rel") or "").lower(), url))


def links_of(page: str) -> list[Link]:
    parser = Links()
    parser.feed(page)
    parser.close()
    return parser.found


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
async def test_docs_page_loads_everything_from_our_server(
    anonymous: httpx.AsyncClient, page_path: str
) -> None:
    page = await anonymous.get(page_path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")

    links = links_of(page.text)
    assert any(link.tag == "script" for link in links), f"{page_path} loads no script"
    for link in links:
        url = page.url.join(link.url)
        assert (url.scheme, url.host, url.port) == (
            anonymous.base_url.scheme,
            anonymous.base_url.host,
            anonymous.base_url.port,
        ), f"{page_path} loads {link.url} from another host"
        assert link.expected_type, f"{page_path} links {link} of a kind this test doesn't know"

        asset = await anonymous.get(url)
        assert asset.status_code == 200, link
        assert link.expected_type in asset.headers["content-type"], link
        assert len(asset.content) >= link.min_size, link

    spec_url = SPEC_URL[page_path].search(page.text)
    assert spec_url is not None, f"{page_path} names no OpenAPI document"
    assert spec_url.group(1) == OPENAPI_URL


async def test_the_pages_show_our_openapi_document_and_stay_out_of_it(
    anonymous: httpx.AsyncClient,
) -> None:
    document = await anonymous.get(OPENAPI_URL)
    assert document.status_code == 200
    assert document.json()["info"]["title"] == "paysaga"
    docs_paths = [path for path in document.json()["paths"] if path.startswith(("/docs", "/redoc"))]
    assert docs_paths == []

    # The Authorize button's OAuth2 redirect page, which /docs names in its script.
    docs = await anonymous.get("/docs")
    assert "'/docs/oauth2-redirect'" in docs.text
    redirect = await anonymous.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert links_of(redirect.text) == []
