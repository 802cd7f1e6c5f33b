"""The real network path of `gptscratch pretrained download` (hub.download_model past the cache), against a fake
Hugging Face Hub: a stdlib HTTP server on 127.0.0.1 in a background thread, reached through HF_ENDPOINT.

Why a fake server: this machine cannot reach huggingface.co, and a cache laid out by hand (test_pretrained_hub.py)
never exercises what huggingface_hub 2.4's hf_hub_download does on the wire. The server answers it as the Hub does:
HEAD/GET /{repo}/resolve/main/{file} with X-Repo-Commit and ETag; LFS files (*.safetensors, *.bin, ...) as a 302
to a "CDN" on another origin (http://localhost:PORT/cdn/...) with X-Linked-Etag / X-Linked-Size; Range requests
answered 206; a missing file as 404 + `X-Error-Code: EntryNotFound`; a gated or private repo as 401 + `GatedRepo`
/ `RepoNotFound`; an X-Request-Id on every answer (it lengthens error texts). It can drop a connection midway or
fail a GET once. It logs every request, so tests can check which files were fetched, with which headers.

Note: huggingface_hub 2.4 resumes a file only *within* one call (http_get retries a dropped stream with
`Range: bytes=K-`); its temporary file is process-unique and deleted on failure, so a rerun starts that file over
— what a rerun does keep is every file completed before the failure.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from test_pretrained_support import tiny_gpt2

from gptscratch.errors import NetworkError, UsageError
from gptscratch.pretrained import hub

REPO = "openai-community/gpt2"  # what the registry maps `gpt2` to
COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".safetensors", ".bin", ".h5", ".msgpack", ".onnx")
NOT_NEEDED = {"pytorch_model.bin": b"pickle" * 100, "tf_model.h5": b"hdf5" * 100,
              "flax_model.msgpack": b"flax" * 100, "onnx/decoder_model.onnx": b"onnx" * 100}


class FakeHub(ThreadingHTTPServer):
    """Serves `files` (name → bytes) as the main branch of REPO; `log` records every request."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.files, self.log = files, []
        self.drop_after: dict[str, int] = {}  # file → bytes sent before the connection drops (first GET)
        self.fail_once: dict[str, int] = {}  # file → HTTP status of its next GET
        self.deny: str | None = None  # X-Error-Code of a 401 for every file (GatedRepo, RepoNotFound)
        self.port = self.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def fetched(self, method: str = "GET") -> list[str]:
        """The file names requested with `method`, through /resolve/ or the CDN, in order."""
        return [r["file"] for r in self.log if r["method"] == method and r["file"]]


class HubHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_HEAD(self):
        self.answer(send_body=False)

    def do_GET(self):
        self.answer(send_body=True)

    def answer(self, send_body: bool) -> None:
        hub_server: FakeHub = self.server
        path = unquote(self.path.split("?")[0])
        resolve, cdn = f"/{REPO}/resolve/main/", "/cdn/"
        name = path[len(resolve):] if path.startswith(resolve) else path[len(cdn):] if path.startswith(cdn) else None
        hub_server.log.append({"method": self.command, "path": path, "file": name, "host": self.headers["Host"],
                               "range": self.headers.get("Range"), "auth": self.headers.get("Authorization")})
        if path == f"/api/models/{REPO}":  # listed for realism: hf_hub_download never needs it
            siblings = [{"rfilename": f} for f in hub_server.files]
            return self.reply(200, json.dumps({"id": REPO, "sha": COMMIT, "siblings": siblings}).encode(), send_body)
        if name is None:
            return self.reply(404, b"", send_body, {"X-Error-Code": "RepoNotFound"})
        if hub_server.deny:
            return self.reply(401, b"", send_body, {"X-Error-Code": hub_server.deny,
                                                    "X-Error-Message": "Access to this model is restricted."})
        if send_body and name in hub_server.fail_once:
            return self.reply(hub_server.fail_once.pop(name), b"", send_body)
        if name not in hub_server.files:
            return self.reply(404, b"", send_body, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT,
                                                    "X-Error-Message": "Entry not found"})
        data = hub_server.files[name]
        etag = f'"{hashlib.sha256(data).hexdigest()}"'
        if path.startswith(resolve) and name.endswith(LFS_SUFFIXES):  # LFS: metadata here, bytes on the CDN
            return self.reply(302, b"", send_body, {"Location": f"http://localhost:{hub_server.port}{cdn}{name}",
                                                    "X-Repo-Commit": COMMIT, "X-Linked-Etag": etag,
                                                    "X-Linked-Size": str(len(data))})
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        headers = {"X-Repo-Commit": COMMIT, "ETag": etag, "Accept-Ranges": "bytes"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        drop = hub_server.drop_after.pop(name, None) if send_body else None
        self.reply(206 if start else 200, data[start:], send_body, headers, drop)

    def reply(self, status: int, body: bytes, send_body: bool, headers: dict | None = None, drop: int | None = None):
        self.send_response(status)
        self.send_header("X-Request-Id", "Root=1-68f0c0de-5c1e2b7a3f6d4e8a9b0c1d2e")  # as the Hub: longer errors
        for key, value in {**(headers or {}), "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:  # `drop`: a connection lost after that many bytes (HTTP/1.0: the socket closes after this)
            self.wfile.write(body if drop is None else body[:drop])


@pytest.fixture(scope="module")
def repo_files(tmp_path_factory) -> dict[str, bytes]:
    """A tiny GPT-2 saved with save_pretrained, plus the files a real GPT-2 repo also holds that we never need."""
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tiny_gpt2(folder)
    files = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}
    assert {"config.json", "vocab.json", "merges.txt", "model.safetensors"} <= set(files)
    return {**files, **NOT_NEEDED}


@pytest.fixture
def fake_hub(repo_files, tmp_path, monkeypatch):
    """The fake Hub, with the environment a user would set: HF_ENDPOINT, own HF caches, offline mode off."""
    server = FakeHub(dict(repo_files))
    env = {"HF_ENDPOINT": server.endpoint, "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "NO_PROXY": "127.0.0.1,localhost",
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def in_process_hub(fake_hub, monkeypatch):
    """huggingface_hub read HF_ENDPOINT / HF_HUB_OFFLINE at import: point its constants at the fake Hub too."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", fake_hub.endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        fake_hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return fake_hub


def test_cli_downloads_only_needed_files_with_token_then_generates(fake_hub, repo_files, run_cli, tmp_path):
    env = {"HF_HUB_OFFLINE": None, "HF_TOKEN": "hf_faketoken123"}
    result = run_cli("pretrained", "download", "gpt2", "--json", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    path = json.loads(result.stdout)["path"]
    listed = json.loads(run_cli("pretrained", "list", "--json").stdout)
    assert {m["name"]: m["converted"] for m in listed}["gpt2"] is True

    fetched = set(fake_hub.fetched("GET"))
    assert {"config.json", "vocab.json", "merges.txt", "model.safetensors"} <= fetched
    assert not fetched & set(NOT_NEEDED) and not set(fake_hub.fetched("HEAD")) & set(NOT_NEEDED)
    assert fetched <= set(hub.CONFIG_FILES + sum(hub.TOKENIZER_FILES["hf-bpe"], ()) + hub.OPTIONAL_FILES
                          + (hub.SINGLE_FILE,))
    resolve_calls = [r for r in fake_hub.log if "/resolve/" in r["path"]]
    assert resolve_calls and all(r["auth"] == "Bearer hf_faketoken123" for r in resolve_calls)
    cdn_calls = [r for r in fake_hub.log if r["path"].startswith("/cdn/")]
    assert [r["file"] for r in cdn_calls] == ["model.safetensors"]
    assert cdn_calls[0]["auth"] is None  # the token never leaves the Hub's origin

    cached = list((tmp_path / "hf-cache").glob(f"models--*/snapshots/{COMMIT}/model.safetensors"))
    assert len(cached) == 1 and cached[0].read_bytes() == repo_files["model.safetensors"]
    assert (Path(path) / "model.safetensors").is_file()

    generated = run_cli("generate", "--checkpoint", "gpt2", "--prompt", "The quick", "--max-tokens", "5",
                        "--seed", "0", "--json", timeout=120)
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout)["completion_tokens"] == 5


def test_dropped_download_resumes_with_a_range_request(in_process_hub, repo_files, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)  # hand over bytes read before the drop
    weights = repo_files["model.safetensors"]
    in_process_hub.drop_after["model.safetensors"] = len(weights) // 2
    events = []
    snapshot = hub.download_model(REPO, progress=events.append)

    assert (snapshot / "model.safetensors").read_bytes() == weights
    ranges = [r["range"] for r in in_process_hub.log if r["method"] == "GET" and r["file"] == "model.safetensors"]
    assert len(ranges) == 2 and ranges[0] is None
    resumed_at = int(ranges[1].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= len(weights) // 2
    byte_events = [e for e in events if e.get("unit") == "bytes"]
    assert byte_events and byte_events[-1]["completed"] == byte_events[-1]["total"]
    downloaded = {"config.json", "vocab.json", "merges.txt", "generation_config.json", "model.safetensors"}
    assert byte_events[-1]["total"] == sum(len(repo_files[name]) for name in downloaded)
    assert all(a["completed"] <= b["completed"] for a, b in zip(byte_events, byte_events[1:]))


def test_failed_download_keeps_finished_files_and_a_rerun_fetches_the_rest(in_process_hub, repo_files):
    in_process_hub.fail_once["model.safetensors"] = 500  # not retried by huggingface_hub: the call fails
    with pytest.raises(NetworkError, match="run the same command again") as error:
        hub.download_model(REPO)
    assert "\n" not in str(error.value)
    in_process_hub.log.clear()
    snapshot = hub.download_model(REPO)
    assert in_process_hub.fetched("GET") == ["model.safetensors"]  # config and tokenizer came from the cache
    assert (snapshot / "model.safetensors").read_bytes() == repo_files["model.safetensors"]


def test_missing_weights_fail_with_one_line_not_a_traceback(fake_hub, run_cli):
    del fake_hub.files["model.safetensors"]
    result = run_cli("pretrained", "download", "gpt2", env={"HF_HUB_OFFLINE": None}, timeout=120)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {REPO} ") and "safetensors" in last and "Traceback" not in result.stderr


def test_missing_file_error_names_the_file(in_process_hub):
    del in_process_hub.files["model.safetensors"]
    with pytest.raises(NetworkError) as error:
        hub.download_model(REPO)
    assert "model.safetensors" in str(error.value).replace("safetensors repos", "")


@pytest.mark.parametrize("code, error_class, hint", [("GatedRepo", NetworkError, "gated.*set HF_TOKEN"),
                                                      ("RepoNotFound", UsageError, "private: set HF_TOKEN")])
def test_refused_access_names_hf_token(in_process_hub, code, error_class, hint):
    in_process_hub.deny = code
    with pytest.raises(error_class, match=hint) as error:
        hub.download_model(REPO)
    assert "\n" not in str(error.value)
