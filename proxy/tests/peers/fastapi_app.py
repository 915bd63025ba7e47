"""A FastAPI service behind the edge in the attack tests.

Starlette percent-decodes the request path before routing (`%70remium` is `premium`, `%2F` is a
slash), as many real services do: if the edge decided on another form of the path than this
service routes on, a request could reach the premium handler without the edge's check.
Each handler names itself and reports what it received.
"""

from fastapi import FastAPI, Request

app = FastAPI()


def seen(handler: str, request: Request) -> dict:
    return {
        "handler": handler,
        "path": request.url.path,
        "raw_path": request.scope["raw_path"].decode("latin-1"),
        "user": request.headers.get("x-user-id"),
        # uvicorn takes these from X-Forwarded-For / -Proto when the peer (the edge) is trusted
        "client": request.client.host if request.client else None,
        "scheme": request.url.scheme,
    }


@app.get("/api/v1/movies/premium")
@app.get("/api/v1/movies/premium/{rest:path}")
async def premium(request: Request, rest: str = ""):
    return seen("premium", request)


@app.get("/health")
async def health():
    return {"ok": True}


@app.get("/{rest:path}")
async def public(request: Request, rest: str):
    return seen("public", request)


@app.post("/{rest:path}")
async def upload(request: Request, rest: str):
    # reads the whole body as a service would: how many bytes arrived through the edge
    body = await request.body()
    return {**seen("upload", request), "body_bytes": len(body)}
