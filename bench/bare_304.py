"""The bare Starlette reference for bench/http_304.py: one async route that serves the
given bytes with the given ETag and answers a matching If-None-Match with 304, run by
uvicorn with the same HTTP implementation (h11) and logging as ``seriesfeed serve``.

    python bench/bare_304.py PORT PATH BODY_FILE ETAG
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def app_for(path: str, body: bytes, etag: str, media_type: str) -> Starlette:
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300", "Vary": "Accept-Encoding"}

    async def endpoint(request: Request) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, headers=headers, media_type=media_type)

    return Starlette(routes=[Route(path, endpoint)])


def main() -> None:
    port, path, body_file, etag = sys.argv[1:5]
    app = app_for(path, Path(body_file).read_bytes(), etag, "application/atom+xml")
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False,
                lifespan="off", http="h11")


if __name__ == "__main__":
    main()
