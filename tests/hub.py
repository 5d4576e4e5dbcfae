"""A stand-in for the Hugging Face Hub: the HTTP endpoints ``huggingface_hub``'s ``snapshot_download`` uses (model
info at a revision, the recursive file tree, ``resolve`` with HEAD and GET), serving model repositories whose
files the test made. It listens on 127.0.0.1 only and answers as the Hub does where it matters to the client:
the commit in ``X-Repo-Commit``, the sha256 of large (LFS) files in ``X-Linked-Etag``, ``X-Error-Code`` on 404s,
401 for a private repository asked without its token. Every request is recorded, so a test can say which files
were downloaded."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".bin", ".safetensors", ".onnx", ".h5", ".msgpack", ".ot", ".jpeg", ".model")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def commit_id(files: Mapping[str, bytes], parent: str = "") -> str:
    digest = hashlib.sha1(parent.encode())
    for name in sorted(files):
        digest.update(f"{name}\0{git_blob_id(files[name])}\n".encode())
    return digest.hexdigest()


@dataclass
class HubRepo:
    """A model repository: commits (sha → files) and refs (branch or tag → sha)."""

    repo_id: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    token: str | None = None  # private: only this bearer token may read it

    def push(self, files: Mapping[str, bytes], ref: str = "main") -> str:
        """A new commit on ``ref`` holding ``files``; returns its sha."""
        sha = commit_id(files, self.refs.get(ref, ""))
        self.commits[sha] = dict(files)
        self.refs[ref] = sha
        return sha

    def resolve(self, revision: str) -> str | None:
        return revision if revision in self.commits else self.refs.get(revision)


class StandInHub:
    """``with StandInHub() as hub: hub.add(HubRepo(...))``; ``hub.url`` is the HF_ENDPOINT."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="stand-in-hub", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, repo: HubRepo) -> HubRepo:
        self.repos[repo.repo_id] = repo
        return repo

    def downloaded(self, repo_id: str) -> list[str]:
        """The files of ``repo_id`` fetched with GET (not HEAD), in order."""
        prefix = f"/{repo_id}/resolve/"
        return [
            path[len(prefix) :].split("/", 1)[1]
            for method, path in self.requests
            if method == "GET" and path.startswith(prefix)
        ]

    def __enter__(self) -> StandInHub:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _tree(files: Mapping[str, bytes], under: str) -> Iterator[dict[str, object]]:
    folders: set[str] = set()
    for name in sorted(files):
        if under and not name.startswith(under + "/"):
            continue
        parts = name.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in folders and (not under or folder.startswith(under + "/")):
                folders.add(folder)
                yield {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0, "path": folder}
        data = files[name]
        entry: dict[str, object] = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": name}
        if name.endswith(LFS_SUFFIXES):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        yield entry


def _handler(hub: StandInHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def do_GET(self) -> None:
            self._answer(head=False)

        def _answer(self, *, head: bool) -> None:
            path = urlsplit(self.path).path
            hub.requests.append(("HEAD" if head else "GET", unquote(path)))
            parts = [unquote(p) for p in path.strip("/").split("/")]
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                self._api(parts[2:], head)
            elif len(parts) >= 5 and parts[2] == "resolve":
                self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), head)
            else:
                self._error(404, "EntryNotFound", head)

        def _repo(self, repo_id: str, revision: str, head: bool) -> tuple[HubRepo, str] | None:
            repo = hub.repos.get(repo_id)
            if repo is None or (repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}"):
                self._error(404 if repo is None else 401, "RepoNotFound", head)
                return None
            sha = repo.resolve(revision)
            if sha is None:
                self._error(404, "RevisionNotFound", head)
                return None
            return repo, sha

        def _api(self, parts: list[str], head: bool) -> None:
            repo_id, rest = f"{parts[0]}/{parts[1]}", parts[2:]
            revision = rest[1] if len(rest) >= 2 and rest[0] in ("revision", "tree") else "main"
            found = self._repo(repo_id, revision, head)
            if found is None:
                return
            repo, sha = found
            files = repo.commits[sha]
            if rest[:1] == ["tree"]:
                self._json(list(_tree(files, "/".join(rest[2:]))), head)
            else:
                self._json(
                    {
                        "id": repo_id,
                        "modelId": repo_id,
                        "sha": sha,
                        "private": repo.token is not None,
                        "siblings": [{"rfilename": name} for name in sorted(files)],
                    },
                    head,
                )

        def _resolve(self, repo_id: str, revision: str, name: str, head: bool) -> None:
            found = self._repo(repo_id, revision, head)
            if found is None:
                return
            repo, sha = found
            data = repo.commits[sha].get(name)
            if data is None:
                self._error(404, "EntryNotFound", head)
                return
            self.send_response(200)
            self.send_header("X-Repo-Commit", sha)
            if name.endswith(LFS_SUFFIXES):
                self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("ETag", f'"{git_blob_id(data)}"')
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)

        def _json(self, value: object, head: bool) -> None:
            body = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _error(self, status: int, code: str, head: bool) -> None:
            body = json.dumps({"error": code}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler
