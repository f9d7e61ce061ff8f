"""A Hugging Face Hub-protocol server on 127.0.0.1, for tests that publish and load back.

It speaks the part of the Hub HTTP API that ``huggingface_hub`` 2.x (``HfApi``, ``hf_hub_download``,
``HfFileSystem``) and ``datasets`` (``load_dataset(repo_id)``) use, for model, dataset and space repos:

========================================================  ==============================================
route                                                     used by
========================================================  ==============================================
``GET  /api/whoami-v2``                                   ``whoami``
``POST /api/repos/create`` / ``/api/repos/delete``        ``create_repo`` (409 when it exists) / delete
``POST /api/validate-yaml``                               card metadata check before a commit
``POST /api/{type}s/{repo}/preupload/{rev}``              upload mode per file (``lfs`` or ``regular``)
``POST /{prefix}{repo}.git/info/lfs/objects/batch``       LFS batch (basic transfer), then ``PUT`` + verify
``POST /api/{type}s/{repo}/commit/{rev}``                 the NDJSON commit (header, file, lfsFile, deletes)
``GET  /api/{type}s/{repo}[/revision/{rev}]``             ``repo_info`` / ``dataset_info`` (siblings, sha)
``GET  /api/{type}s/{repo}/tree/{rev}[/{path}]``          ``list_repo_tree`` / ``list_repo_files``
``POST /api/{type}s/{repo}/paths-info/{rev}``             ``get_paths_info`` (``HfFileSystem``)
``GET  /api/{type}s/{repo}/refs``, ``.../commits/{rev}``  ``list_repo_refs``, ``list_repo_commits``
``HEAD|GET /{prefix}{repo}/resolve/{rev}/{path}``         ``hf_hub_download`` and ranged reads
========================================================  ==============================================

``{type}`` is ``model``, ``dataset`` or ``space``; ``{prefix}`` is ``""``, ``datasets/`` or ``spaces/``.
Repos live in a folder (one content-addressed blob store, commits in memory); each repo has one branch,
``main``, and every commit is kept, so a revision can be ``main`` or any commit id.

Auth works like the Hub's: every write needs ``Authorization: Bearer <token>``; a wrong token is
answered ``401`` on any route; a private repo is ``404`` to anyone without the token.
:meth:`HubServer.fail` makes the next matching request(s) fail with a chosen status, for tests of error
handling. Xet is not spoken: clients must run with ``HF_HUB_DISABLE_XET=1`` (the ``hub_env`` fixture in
``conftest.py`` sets it, together with ``HF_ENDPOINT`` and the token).

Usage::

    with HubServer(tmp_path) as hub:
        HfApi(endpoint=hub.endpoint, token=hub.token).create_repo("org/name", repo_type="dataset")
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_TYPES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".gz", ".zip")
LFS_MIN_SIZE = 10 * 1024 * 1024
_REPO = r"(?P<repo>[^/]+/[^/]+)"


@dataclass
class Entry:
    """A file in a commit: its git blob id, size and, for LFS files, the sha256 of the content."""

    blob: str  # sha256 of the content: the key in the blob store
    size: int
    git_oid: str
    lfs: bool


@dataclass
class Commit:
    oid: str
    title: str
    files: dict[str, Entry]
    created: float = field(default_factory=time.time)


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: list[Commit] = field(default_factory=list)

    def head(self) -> Commit:
        return self.commits[-1]

    def resolve(self, revision: str) -> Commit | None:
        revision = urllib.parse.unquote(revision)
        if revision in ("main", "refs/heads/main", "HEAD"):
            return self.head()
        return next((commit for commit in self.commits if commit.oid.startswith(revision)), None)


class HubError(Exception):
    """Ends a request with an HTTP error status and a Hub-style JSON error body."""

    def __init__(self, status: int, message: str, error_code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.extra = extra


class HubServer:
    """The server (see the module docstring); ``.endpoint``, ``.token``, ``.user``, ``.requests``."""

    def __init__(self, root: str | Path, token: str = "hf_local_test_token", user: str = "tester") -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.user = user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str, int]] = []
        self._failures: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> HubServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test controls ---------------------------------------------------------------------------------

    def fail(self, status: int = 500, path_contains: str = "", method: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests whose path contains ``path_contains`` (and method) with ``status``."""
        with self._lock:
            self._failures.append({"status": status, "path": path_contains, "method": method, "times": times})

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def repo_files(self, repo_id: str, repo_type: str = "dataset") -> dict[str, bytes]:
        """The files at ``main`` of a repo, read straight from the store (for assertions)."""
        repo = self.repos[(repo_type, repo_id)]
        return {path: self._blob(entry.blob).read_bytes() for path, entry in repo.head().files.items()}

    # --- internals used by the handler -----------------------------------------------------------------

    def _take_failure(self, method: str, path: str) -> int | None:
        with self._lock:
            for failure in self._failures:
                if failure["path"] in path and failure["method"] in (None, method):
                    failure["times"] -= 1
                    if failure["times"] <= 0:
                        self._failures.remove(failure)
                    return failure["status"]
        return None

    def _blob(self, sha256: str) -> Path:
        return self.blobs / sha256

    def _store(self, content: bytes) -> str:
        sha256 = hashlib.sha256(content).hexdigest()
        path = self._blob(sha256)
        if not path.exists():  # write then rename: a concurrent reader never sees half a blob
            partial = path.with_name(f"{sha256}.{threading.get_ident()}.partial")
            partial.write_bytes(content)
            partial.replace(path)
        return sha256

    def _repo(self, repo_type: str, repo_id: str, authorized: bool) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not authorized):
            raise HubError(404, f"Repository Not Found for url: {repo_type} {repo_id}", "RepoNotFound")
        return repo

    def _url(self, repo: Repo) -> str:
        return f"{self.endpoint}/{REPO_TYPES[repo.repo_type]}{repo.repo_id}"


def _git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _handler_class(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_HubHandler):
        server_hub = hub

    return Handler


class _HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_hub: HubServer

    # Quiet: the test output is no place for an access log; ``hub.requests`` keeps it instead.
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # --- plumbing --------------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        hub = self.server_hub
        url = urllib.parse.urlsplit(self.path)
        self.query = urllib.parse.parse_qs(url.query)
        body = self._read_body()
        status = 200
        try:
            injected = hub._take_failure(method, url.path)
            if injected is not None:
                raise HubError(injected, f"injected failure {injected} for {method} {url.path}")
            self.authorized = self._check_auth()
            for route_method, pattern, handler in _ROUTES:
                match = pattern.fullmatch(url.path)
                if match and route_method == ("GET" if method == "HEAD" else method):
                    handler(self, body=body, **match.groupdict())
                    break
            else:
                raise HubError(404, f"no route for {method} {url.path}")
        except Exception as exc:  # a bug here must reach the client as a 500, not a dropped connection
            if not isinstance(exc, HubError):
                exc = HubError(500, f"{type(exc).__name__}: {exc}")
            status = exc.status
            payload: dict[str, Any] = {"error": str(exc), **exc.extra}
            headers = {"X-Error-Message": str(exc)}
            if exc.error_code:
                headers["X-Error-Code"] = exc.error_code
            self._send_json(payload, status=status, headers=headers)
        finally:
            hub.requests.append((method, self.path, status))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _check_auth(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header:
            return False
        if header != f"Bearer {self.server_hub.token}":
            raise HubError(401, "Invalid credentials in Authorization header", "InvalidCredentials")
        return True

    def _require_auth(self) -> None:
        if not self.authorized:
            raise HubError(401, "You must be authenticated to do this", "Unauthorized")

    def _send(self, status: int, content: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    def _send_json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        content = json.dumps(payload).encode()
        self._send(status, content, {"Content-Type": "application/json", **(headers or {})})

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body or b"{}")
        except json.JSONDecodeError as exc:
            raise HubError(400, f"body is not JSON: {exc.msg}") from None

    # --- routes ----------------------------------------------------------------------------------------

    def whoami(self, body: bytes) -> None:
        self._require_auth()
        hub = self.server_hub
        self._send_json({"type": "user", "name": hub.user, "orgs": [], "auth": {"accessToken": {"role": "write"}}})

    def create_repo(self, body: bytes) -> None:
        self._require_auth()
        payload = self._json(body)
        repo_type = payload.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"invalid repo type {repo_type!r}")
        repo_id = f"{payload.get('organization') or self.server_hub.user}/{payload['name']}"
        private = payload.get("private") or payload.get("visibility") == "private"
        hub = self.server_hub
        with hub._lock:
            if (repo_type, repo_id) in hub.repos:  # the Hub names the existing repo; create_repo reads it
                url = hub._url(hub.repos[(repo_type, repo_id)])
                raise HubError(409, "You already created this repo", "RepoExists", url=url)
            repo = Repo(repo_type, repo_id, bool(private))
            files = {}
            if repo_type == "space":  # a new Space comes with a card, like on the Hub
                content = f"---\nsdk: {payload.get('sdk', 'gradio')}\n---\n".encode()
                files["README.md"] = Entry(hub._store(content), len(content), _git_blob_oid(content), lfs=False)
            repo.commits.append(Commit(hashlib.sha1(f"{repo_type}/{repo_id}/init".encode()).hexdigest(), "init", files))
            hub.repos[(repo_type, repo_id)] = repo
        self._send_json({"url": hub._url(repo), "name": repo_id})

    def delete_repo(self, body: bytes) -> None:
        self._require_auth()
        payload = self._json(body)
        repo_id = f"{payload.get('organization') or self.server_hub.user}/{payload['name']}"
        with self.server_hub._lock:
            if self.server_hub.repos.pop((payload.get("type") or "model", repo_id), None) is None:
                raise HubError(404, f"Repository Not Found: {repo_id}", "RepoNotFound")
        self._send_json({})

    def validate_yaml(self, body: bytes) -> None:
        content = self._json(body).get("content", "")
        if content.startswith("---") and content.count("---") < 2:
            self._send_json({"errors": [{"message": "unterminated YAML front matter"}]}, status=400)
            return
        self._send_json({"errors": [], "warnings": []})

    def repo_info(self, body: bytes, repo_type: str, repo: str, revision: str = "main") -> None:
        stored = self.server_hub._repo(repo_type, repo, self.authorized)
        commit = stored.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        siblings = [{"rfilename": path, "size": entry.size} for path, entry in sorted(commit.files.items())]
        self._send_json(
            {
                "_id": stored.repo_id,
                "id": stored.repo_id,
                "author": stored.repo_id.split("/")[0],
                "sha": commit.oid,
                "private": stored.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(commit.created)),
                "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(stored.commits[0].created)),
                "siblings": siblings,
            }
        )

    def refs(self, body: bytes, repo_type: str, repo: str) -> None:
        stored = self.server_hub._repo(repo_type, repo, self.authorized)
        branch = {"name": "main", "ref": "refs/heads/main", "targetCommit": stored.head().oid}
        self._send_json({"branches": [branch], "tags": [], "converts": []})

    def commits(self, body: bytes, repo_type: str, repo: str, revision: str) -> None:
        stored = self.server_hub._repo(repo_type, repo, self.authorized)
        history = [
            {
                "id": commit.oid,
                "title": commit.title,
                "message": commit.title,
                "authors": [{"user": self.server_hub.user}],
                "date": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(commit.created)),
            }
            for commit in reversed(stored.commits)
        ]
        self._send_json(history)

    def tree(self, body: bytes, repo_type: str, repo: str, revision: str, path: str | None) -> None:
        commit = self._commit(repo_type, repo, revision)
        prefix = urllib.parse.unquote(path or "").strip("/")
        recursive = self.query.get("recursive", ["false"])[0].lower() == "true"
        if prefix and prefix not in commit.files and not any(p.startswith(prefix + "/") for p in commit.files):
            raise HubError(404, f"{prefix} does not exist on {revision}", "EntryNotFound")
        entries: dict[str, dict[str, Any]] = {}
        for file_path, entry in sorted(commit.files.items()):
            if prefix and not file_path.startswith(prefix + "/"):
                continue
            relative = file_path[len(prefix) + 1 :] if prefix else file_path
            parts = relative.split("/")
            folders = range(1, len(parts)) if recursive else range(1, min(len(parts), 2))
            for depth in folders:
                folder = "/".join(filter(None, [prefix, *parts[:depth]]))
                entries.setdefault(folder, {"type": "directory", "oid": "0" * 40, "size": 0, "path": folder})
            if recursive or len(parts) == 1:
                entries[file_path] = _file_info(file_path, entry)
        self._send_json(list(entries.values()))

    def paths_info(self, body: bytes, repo_type: str, repo: str, revision: str) -> None:
        commit = self._commit(repo_type, repo, revision)
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = self._json(body).get("paths", [])
        else:
            paths = urllib.parse.parse_qs(body.decode()).get("paths", [])
        found = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                found.append(_file_info(path, commit.files[path]))
            elif any(p.startswith(path + "/") for p in commit.files):
                found.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": path})
        self._send_json(found)

    def preupload(self, body: bytes, repo_type: str, repo: str, revision: str) -> None:
        self._require_auth()
        self.server_hub._repo(repo_type, repo, self.authorized)
        files = []
        for item in self._json(body).get("files", []):
            lfs = item["path"].endswith(LFS_SUFFIXES) or item["size"] >= LFS_MIN_SIZE
            files.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False})
        self._send_json({"files": files, "commitOid": None})

    def lfs_batch(self, body: bytes, prefix: str, repo: str) -> None:
        self._require_auth()
        repo_type = {"": "model", "datasets/": "dataset", "spaces/": "space"}[prefix or ""]
        self.server_hub._repo(repo_type, repo, self.authorized)
        objects = []
        for item in self._json(body).get("objects", []):
            done = self.server_hub._blob(item["oid"]).exists()
            actions = {
                "upload": {"href": f"{self.server_hub.endpoint}/lfs-upload/{item['oid']}/{item['size']}"},
                "verify": {"href": f"{self.server_hub.endpoint}/lfs-verify"},
            }
            objects.append({"oid": item["oid"], "size": item["size"], **({} if done else {"actions": actions})})
        self._send_json(
            {"transfer": "basic", "objects": objects}, headers={"Content-Type": "application/vnd.git-lfs+json"}
        )

    def lfs_upload(self, body: bytes, oid: str, size: str) -> None:
        if hashlib.sha256(body).hexdigest() != oid or len(body) != int(size):
            raise HubError(400, f"uploaded content does not match oid {oid} and size {size}")
        self.server_hub._store(body)
        self._send(200, b"", {})

    def lfs_verify(self, body: bytes) -> None:
        payload = self._json(body)
        if not self.server_hub._blob(payload.get("oid", "")).exists():
            raise HubError(404, f"object {payload.get('oid')} was never uploaded")
        self._send_json({})

    def commit(self, body: bytes, repo_type: str, repo: str, revision: str) -> None:
        self._require_auth()
        hub = self.server_hub
        with hub._lock:
            stored = hub._repo(repo_type, repo, self.authorized)
            if stored.resolve(revision) is not stored.head():
                raise HubError(400, "commits go to the head of main only", "InvalidRevision")
            files = dict(stored.head().files)
            title = ""
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    title = value.get("summary", "")
                    parent = value.get("parentCommit")
                    if parent and parent != stored.head().oid:
                        raise HubError(412, "parent commit is not the head of main")
                elif key == "file":
                    content = (
                        base64.b64decode(value["content"])
                        if value.get("encoding") == "base64"
                        else value["content"].encode()
                    )
                    files[value["path"]] = Entry(hub._store(content), len(content), _git_blob_oid(content), lfs=False)
                elif key == "lfsFile":
                    if not hub._blob(value["oid"]).exists():
                        raise HubError(400, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                    pointer = _lfs_pointer(value["oid"], value["size"])
                    files[value["path"]] = Entry(value["oid"], value["size"], _git_blob_oid(pointer), lfs=True)
                elif key in ("deletedFile", "deletedFolder"):
                    path = value["path"].rstrip("/")
                    removed = [p for p in files if p == path or p.startswith(path + "/")]
                    if not removed:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    for p in removed:
                        del files[p]
                else:
                    raise HubError(400, f"unsupported commit operation {key!r}")
            digest = hashlib.sha1(f"{stored.head().oid}{title}{sorted(files.items())}{time.time()}".encode())
            commit = Commit(digest.hexdigest(), title, files)
            stored.commits.append(commit)
        url = f"{hub._url(stored)}/commit/{commit.oid}"
        self._send_json({"success": True, "commitOid": commit.oid, "commitUrl": url, "pullRequestUrl": None})

    def resolve(self, body: bytes, prefix: str, repo: str, revision: str, path: str) -> None:
        repo_type = {"": "model", "datasets/": "dataset", "spaces/": "space"}[prefix or ""]
        commit = self._commit(repo_type, repo, revision)
        path = urllib.parse.unquote(path)
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        content = self.server_hub._blob(entry.blob).read_bytes()
        etag = entry.blob if entry.lfs else entry.git_oid
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if ranged and self.command == "GET":
            start = int(ranged[1]) if ranged[1] else len(content) - int(ranged[2])
            end = min(int(ranged[2]), len(content) - 1) if ranged[1] and ranged[2] else len(content) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            self._send(HTTPStatus.PARTIAL_CONTENT, content[start : end + 1], headers)
            return
        self._send(200, content, headers)

    def _commit(self, repo_type: str, repo: str, revision: str) -> Commit:
        commit = self.server_hub._repo(repo_type, repo, self.authorized).resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit


def _file_info(path: str, entry: Entry) -> dict[str, Any]:
    info: dict[str, Any] = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": path}
    if entry.lfs:
        info["lfs"] = {"oid": entry.blob, "size": entry.size, "pointerSize": len(_lfs_pointer(entry.blob, entry.size))}
    return info


_TYPE = r"(?P<repo_type>model|dataset|space)s"
_PREFIX = r"(?P<prefix>datasets/|spaces/)?"
_ROUTES = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in [
        ("GET", r"/api/whoami-v2", _HubHandler.whoami),
        ("POST", r"/api/repos/create", _HubHandler.create_repo),
        ("POST", r"/api/repos/delete", _HubHandler.delete_repo),
        ("POST", r"/api/validate-yaml", _HubHandler.validate_yaml),
        ("GET", rf"/api/{_TYPE}/{_REPO}", _HubHandler.repo_info),
        ("GET", rf"/api/{_TYPE}/{_REPO}/revision/(?P<revision>[^/]+)", _HubHandler.repo_info),
        ("GET", rf"/api/{_TYPE}/{_REPO}/refs", _HubHandler.refs),
        ("GET", rf"/api/{_TYPE}/{_REPO}/commits/(?P<revision>[^/]+)", _HubHandler.commits),
        ("GET", rf"/api/{_TYPE}/{_REPO}/tree/(?P<revision>[^/]+)(?:/(?P<path>.*))?", _HubHandler.tree),
        ("POST", rf"/api/{_TYPE}/{_REPO}/paths-info/(?P<revision>[^/]+)", _HubHandler.paths_info),
        ("POST", rf"/api/{_TYPE}/{_REPO}/preupload/(?P<revision>[^/]+)", _HubHandler.preupload),
        ("POST", rf"/api/{_TYPE}/{_REPO}/commit/(?P<revision>[^/]+)", _HubHandler.commit),
        ("POST", rf"/{_PREFIX}{_REPO}\.git/info/lfs/objects/batch", _HubHandler.lfs_batch),
        ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})/(?P<size>\d+)", _HubHandler.lfs_upload),
        ("POST", r"/lfs-verify", _HubHandler.lfs_verify),
        ("GET", rf"/{_PREFIX}{_REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)", _HubHandler.resolve),
    ]
]
