"""``.venv/bin/python -m workflow_scripts.serve [--config CONFIG] [--host 127.0.0.1]
[--port 8765] [--token TOKEN]``: the local web app (upload, run, review, training)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from workflow_scripts.serve.auth import LOOPBACK
from workflow_scripts.snakemake_cmd import REPO


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m workflow_scripts.serve", description=__doc__.split(":", 1)[-1].strip())
    ap.add_argument("--config", action="append", default=[], metavar="CONFIG",
                    help="config file(s) on top of the working directory's config.yaml (as snakemake --configfile)")
    ap.add_argument("--workdir", default=str(REPO),
                    help="Snakemake's working directory; config paths are relative to it (default: the repository)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs --token)")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--token", default=os.environ.get("PVW_SERVE_TOKEN"),
                    help="required for any host but 127.0.0.1/localhost/::1 (or set PVW_SERVE_TOKEN)")
    ap.add_argument("--max-upload-mb", type=float, default=4096, help="largest file accepted (default 4096 MB)")
    ap.add_argument("--cores", default=None, help="snakemake --cores (default: the profile's, all)")
    ap.add_argument("--stop-grace-s", type=float, default=20.0, help="SIGTERM to SIGKILL on Stop (default 20 s)")
    args = ap.parse_args(argv)
    if args.host not in LOOPBACK and not args.token:
        ap.error(f"--host {args.host} is reachable beyond this machine's loopback: give --token TOKEN "
                 "(every request must then carry it)")
    return args


def main(argv=None) -> None:
    import uvicorn

    from workflow_scripts.serve.app import create_app
    from workflow_scripts.serve.auth import Guard
    from workflow_scripts.serve.workspace import Workspace

    args = parse_args(argv)
    workdir = Path(args.workdir).resolve()
    configs = [Path(c).resolve() for c in args.config]
    for c in configs:
        if not c.is_file():
            sys.exit(f"--config {c}: no such file")
    ws = Workspace(workdir, configs, cores=args.cores)
    cfg = ws.config()  # fails here, naming the key, on an invalid config
    app = create_app(ws, int(args.max_upload_mb * 2**20), grace_s=args.stop_grace_s)
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}/"
    print(f"piper-voice-workflow serve: {url}{'?token=…' if args.token else ''}\n"
          f"  working directory {workdir}\n  inputs {ws.inputs_dir(cfg)}\n  outputs {ws.output_dir(cfg)}",
          file=sys.stderr, flush=True)
    # no access log: page loads carry ?token= in their URL
    uvicorn.run(Guard(app, args.token, args.host, args.port), host=args.host, port=args.port,
                access_log=False, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
