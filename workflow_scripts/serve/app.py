"""Routes of serve mode (Starlette). Pages are static HTML + a little JS (``static/``); the
JSON API beneath them only writes inputs and ``overrides.tsv`` and starts/stops Snakemake.

=====================================  =====================================================
``GET /`` ``/upload`` ``/run``         the pages (``/`` is the upload page)
``/training`` ``/review/``             (``/review/`` is ``{output_dir}/review/index.html``,
                                       served with a script that saves each decision)
``PUT /api/upload?name=N``             the raw body is the file (streamed to disk)
``GET /api/inputs``                    files in the inputs folder
``POST /api/run`` ``{"until": S}``     start Snakemake to run_until S (409 when refused)
``POST /api/stop``                     stop it (process group: SIGTERM, then SIGKILL)
``GET /api/status``                    state, progress, failures, last output lines
``POST /api/overrides``                ``{"decisions": {clip: {action, text}}}``
``GET /api/training``                  chunks planned/present, voice files
``GET /processed/{rec}/clips/{clip}``  a clip's WAV (the review page's players)
``GET /recut/{clip}``                  a clip cut again from a rejected one (its WAV)
``GET /download/{name}``               voice.onnx, voice.onnx.json
=====================================  =====================================================
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from workflow_scripts.serve import overrides as ov
from workflow_scripts.serve.progress import log_tail
from workflow_scripts.serve.runner import Runner, RunRefused
from workflow_scripts.serve.uploads import InputsFolder, UploadRejected
from workflow_scripts.serve.workspace import Workspace

STATIC = Path(__file__).resolve().parent / "static"
PAGES = {"/": "upload.html", "/upload": "upload.html", "/run": "run.html", "/training": "training.html"}
STATIC_FILES = {"common.js", "style.css", "review-live.js"}
DOWNLOADS = {"voice.onnx", "voice.onnx.json"}
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
NO_STORE = {"cache-control": "no-store"}
# Served copy of the review page only: each decision is saved at once, so the page's
# "unsaved decisions" prompt on leaving is not needed (the file on disk is not changed).
REVIEW_HEAD = ('<script>(() => { const add = window.addEventListener; window.addEventListener = function (t, ...a) '
               '{ if (t !== "beforeunload") return add.call(this, t, ...a); }; })();</script>')
REVIEW_TAIL = '<script src="/static/common.js"></script><script src="/static/review-live.js"></script>'


def create_app(ws: Workspace, max_upload_bytes: int, grace_s: float = 20.0) -> Starlette:
    runner = Runner(ws.run_argv, ws.unlock_argv(), str(ws.workdir), grace_s=grace_s)

    def inputs_folder() -> InputsFolder:
        cfg = ws.config()
        return InputsFolder(ws.inputs_dir(cfg), cfg["inputs"]["extensions"], max_upload_bytes)

    folder_cache: dict = {}

    def folder() -> InputsFolder:  # one per inputs path: keeps its hash cache and its lock
        f = inputs_folder()
        return folder_cache.setdefault(str(f.dir.resolve()), f)

    async def page(request):
        return FileResponse(STATIC / PAGES[request.url.path], headers=NO_STORE)

    async def static(request):
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return Response("not found", 404)
        return FileResponse(STATIC / name, headers=NO_STORE)

    async def review(request):
        if not request.url.path.endswith("/"):
            return RedirectResponse("/review/" + (f"?{request.url.query}" if request.url.query else ""))
        path = ws.output_dir() / "review" / "index.html"
        if not path.is_file():
            return FileResponse(STATIC / "review-missing.html", headers=NO_STORE)
        text = path.read_text(encoding="utf-8")
        text = text.replace("<head>", "<head>\n" + REVIEW_HEAD, 1).replace("</body>", REVIEW_TAIL + "\n</body>", 1)
        return HTMLResponse(text, headers=NO_STORE)

    async def clip(request):
        rec, name = request.path_params["rec"], request.path_params["clip"]
        if not (_SAFE.match(rec) and _SAFE.match(name) and ".." not in rec + name):
            return Response("not found", 404)
        root = (ws.output_dir() / "processed").resolve()
        path = (root / rec / "clips" / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return Response("not found", 404)
        return FileResponse(path)

    async def recut_clip(request):
        name = request.path_params["clip"]
        if not _SAFE.match(name) or ".." in name:
            return Response("not found", 404)
        root = (ws.output_dir() / "recut").resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return Response("not found", 404)
        return FileResponse(path)

    async def download(request):
        name = request.path_params["name"]
        path = ws.output_dir() / "voice" / name
        if name not in DOWNLOADS or not path.is_file():
            return Response("not found (train the voice first)", 404)
        return FileResponse(path, filename=name)

    async def upload(request):
        try:
            f = folder()
            length = request.headers.get("content-length")
            if length and length.isdigit() and int(length) > f.max_bytes:
                raise UploadRejected(f"{request.query_params.get('name')}: larger than the limit of "
                                     f"{f.max_bytes // 2**20} MB (--max-upload-mb)", 413)
            up = f.open_upload(request.query_params.get("name"))
            try:
                async for chunk in request.stream():
                    if chunk:
                        up.write(chunk)
            except BaseException:
                up.discard()
                raise
            result = await run_in_threadpool(f.commit, up)
        except UploadRejected as exc:
            return JSONResponse({"status": "rejected", "message": exc.message}, exc.status)
        return JSONResponse(result, 201 if result["status"] == "saved" else 200)

    async def inputs(request):
        f = folder()
        cfg = ws.config()
        return JSONResponse({"directory": str(f.dir), "files": f.files(), "extensions": list(f.extensions),
                             "max_upload_bytes": f.max_bytes, "sample_sheet": cfg["inputs"]["sample_sheet"]},
                            headers=NO_STORE)

    async def run(request):
        try:
            body = await request.json()
        except ValueError:
            body = {}
        until = (body or {}).get("until", "metadata")
        try:
            return JSONResponse(runner.start(until), 202)
        except RunRefused as exc:
            return JSONResponse({**runner.status(), "refused": True, "message": str(exc)}, 409)
        except ValueError as exc:
            return JSONResponse({"message": str(exc)}, 400)

    async def stop(request):
        return JSONResponse(await run_in_threadpool(runner.stop))

    async def status(request):
        return JSONResponse(runner.status(), headers=NO_STORE)

    async def save_overrides(request):
        out = ws.output_dir()
        try:
            body = await request.json()
            decisions = ov.validate((body or {}).get("decisions"), ov.known_clips(out / "transcripts.tsv"))
            text = await run_in_threadpool(ov.write_overrides, out / "overrides.tsv", decisions)
        except (ValueError, ov.InvalidDecisions) as exc:
            return JSONResponse({"message": str(exc)}, 400)
        return JSONResponse({"path": str(out / "overrides.tsv"), "decisions": len(decisions), "text": text})

    async def training(request):
        info = await run_in_threadpool(ws.training)
        info["log_lines"] = log_tail(info["log"], 12) if info["log"] else []
        return JSONResponse(info, headers=NO_STORE)

    routes = [Route(p, page) for p in PAGES] + [
        Route("/static/{name}", static),
        Route("/review", review),
        Route("/review/", review),
        Route("/processed/{rec}/clips/{clip}", clip),
        Route("/recut/{clip}", recut_clip),
        Route("/download/{name}", download),
        Route("/api/upload", upload, methods=["PUT", "POST"]),
        Route("/api/inputs", inputs),
        Route("/api/run", run, methods=["POST"]),
        Route("/api/stop", stop, methods=["POST"]),
        Route("/api/status", status),
        Route("/api/overrides", save_overrides, methods=["POST"]),
        Route("/api/training", training),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await run_in_threadpool(runner.stop)  # the server going away stops its run

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runner = runner
    return app
