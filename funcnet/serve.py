"""Serve an exported model over HTTP with JSON: ``funcnet serve model.fnx --port 8000``.

A small server on the standard library's ``http.server``
(``ThreadingHTTPServer``), for a model written by ``fn.export`` -- typically
by ``funcnet export``, which exports the function of *one* example (raw
input to class probabilities) with the class names and the preprocessing in
its metadata.  Endpoints:

- ``GET /health`` -- ``{"status": "ok"}``;
- ``GET /info`` -- the model's name, signature, input shape and dtype (of
  one example), output shape, class names, task kind, limits;
- ``POST /predict`` with ``{"inputs": [example, ...]}`` (or one example) --
  ``{"outputs": [...]}`` and, for a classifier, ``"predictions"`` (the best
  class of each example: index, label, probability).  Models trained on text
  also accept ``{"texts": ["...", ...]}`` (tokenized with the run's
  tokenizer).

Batches are run by ``fn.jit(fn.vmap(model))``, padded to a power of two so
that only a few batch sizes are ever compiled.  Requests are checked: a body
over the size limit gets 413, a batch over ``max_batch`` examples 413,
malformed JSON or an input of the wrong shape or type a 400 whose JSON
``error`` names the problem, an unknown path 404, a wrong method 405.  An
unexpected failure answers 500 with a JSON error; the server keeps running.
Model calls are serialised with a lock (funcnet's tracing state is shared by
the threads of a process).

>>> import json, threading, urllib.request
>>> import numpy as np, funcnet as fn, funcnet.numpy as fnp
>>> import funcnet.export
>>> from funcnet import serve
>>> w = np.eye(3, dtype=np.float32)
>>> model = fn.export(lambda x: fnp.tanh(x @ w), np.zeros(3, np.float32))
>>> server = serve.make_server(model, port=0, quiet=True)
>>> thread = threading.Thread(target=server.serve_forever, daemon=True)
>>> thread.start()
>>> url = f"http://127.0.0.1:{server.server_address[1]}/predict"
>>> body = json.dumps({"inputs": [[0.0, 1.0, 2.0]]}).encode()
>>> reply = json.load(urllib.request.urlopen(urllib.request.Request(url, body)))
>>> np.round(reply["outputs"], 3).tolist()
[[0.0, 0.762, 0.964]]
>>> server.shutdown(); server.server_close()
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

import funcnet as fn

__all__ = ["PredictionService", "RequestError", "make_server", "serve",
           "DEFAULT_MAX_REQUEST_BYTES", "DEFAULT_MAX_BATCH"]

DEFAULT_MAX_REQUEST_BYTES = 1 << 20
DEFAULT_MAX_BATCH = 256


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a message for the JSON reply.

    >>> from funcnet.serve import RequestError
    >>> e = RequestError(413, "too large")
    >>> e.status, e.message
    (413, 'too large')
    """

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = int(status)
        self.message = message


def _load(model):
    import funcnet.export as export

    if isinstance(model, (str, os.PathLike)):
        if not os.path.isfile(model):
            raise FileNotFoundError(f"no such file: {os.fspath(model)}")
        return export.load(model)
    return model


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


class PredictionService:
    """The server's logic without HTTP: :meth:`info` and :meth:`predict` take and return
    JSON-able values; :meth:`predict` raises :class:`RequestError` for bad input.

    ``model`` is an ``fn.export`` result (or the path of one) with exactly one
    array input: the shape of *one* example.  Requests carry one example or a
    list of them.

    >>> import numpy as np, funcnet as fn
    >>> import funcnet.export
    >>> from funcnet.serve import PredictionService, RequestError
    >>> service = PredictionService(fn.export(lambda x: 2 * x, np.zeros(2, np.float32)))
    >>> service.predict({"inputs": [[1, 2], [3, 4]]})["outputs"]
    [[2.0, 4.0], [6.0, 8.0]]
    >>> try:
    ...     service.predict({"inputs": [[1, 2, 3]]})
    ... except RequestError as e:
    ...     print(e.status, e.message)
    400 inputs: each example must have shape (2,) (float32); got an array of shape (1, 3)
    """

    def __init__(self, model, *, max_batch: int = DEFAULT_MAX_BATCH):
        self.model = _load(model)
        if len(self.model.input_shapes) != 1:
            raise ValueError(f"funcnet serve needs a model with one array input; this one "
                             f"takes {self.model.signature}")
        self.input_shape = tuple(self.model.input_shapes[0])
        self.input_dtype = np.dtype(self.model.input_dtypes[0])
        self.max_batch = int(max_batch)
        meta = self.model.metadata or {}
        self.task = meta.get("task") if isinstance(meta.get("task"), dict) else None
        classes = meta.get("classes") or (self.task or {}).get("classes")
        self.classes = list(classes) if classes else None
        self._batched = fn.jit(fn.vmap(self.model))
        self._lock = threading.Lock()
        self._tokenizer = None
        if self.task is not None and self.task.get("kind") == "text" \
                and "tokenizer" in self.task:
            from funcnet.data import Tokenizer

            self._tokenizer = Tokenizer.from_dict(self.task["tokenizer"])

    def info(self) -> dict:
        outs = self.model.output_shapes
        info = {"name": self.model.name, "signature": self.model.signature,
                "input_shape": list(self.input_shape), "input_dtype": self.input_dtype.name,
                "output_shapes": [list(s) for s in outs],
                "output_dtypes": [np.dtype(d).name for d in self.model.output_dtypes],
                "funcnet_version": self.model.funcnet_version, "max_batch": self.max_batch,
                "classes": self.classes, "accepts_texts": self._tokenizer is not None}
        if self.task is not None:
            info["task"] = {k: v for k, v in self.task.items() if k != "tokenizer"}
        return info

    # -- request checking -----------------------------------------------------

    def _examples(self, payload) -> np.ndarray:
        if not isinstance(payload, dict):
            raise RequestError(400, "the body must be a JSON object such as "
                                    '{"inputs": [example, ...]}')
        if "texts" in payload and "inputs" not in payload:
            return self._texts(payload["texts"])
        if "inputs" not in payload:
            raise RequestError(400, "the JSON object has no 'inputs' (a list of examples"
                                    + (", or 'texts'" if self._tokenizer else "") + ")")
        raw = payload["inputs"]
        if isinstance(raw, (str, bytes)) or raw is None or isinstance(raw, dict):
            raise RequestError(400, f"inputs must be a number or a (nested) list of numbers, "
                                    f"got {type(raw).__name__}")
        try:
            arr = np.asarray(raw)
        except (ValueError, TypeError) as e:
            raise RequestError(400, f"inputs: ragged or mixed nested lists ({e})") from None
        if arr.dtype == object:
            raise RequestError(400, "inputs: ragged nested lists (every example must have "
                                    f"shape {_shape_text(self.input_shape)})")
        if arr.dtype.kind not in "biuf":
            raise RequestError(400, f"inputs must hold numbers, got {arr.dtype.kind!r} values "
                                    "(strings?)")
        if arr.size == 0 and arr.shape[:1] == (0,):
            raise RequestError(400, "inputs is empty")
        if tuple(arr.shape) == self.input_shape:
            arr = arr[None]
        elif tuple(arr.shape[1:]) != self.input_shape:
            raise RequestError(400, f"inputs: each example must have shape "
                                    f"{_shape_text(self.input_shape)} "
                                    f"({self.input_dtype.name}); got an array of shape "
                                    f"{_shape_text(arr.shape)}")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise RequestError(400, "inputs contain NaN or infinite values")
        if self.input_dtype.kind in "iu":
            if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
                raise RequestError(400, f"inputs must be integers ({self.input_dtype.name})")
            info = np.iinfo(self.input_dtype)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise RequestError(400, f"inputs out of range for {self.input_dtype.name}")
            if self._tokenizer is not None and arr.size and \
                    (arr.min() < 0 or arr.max() >= self._tokenizer.vocab_size):
                raise RequestError(400, f"inputs: token ids must be in 0 ... "
                                        f"{self._tokenizer.vocab_size - 1}")
        elif self.input_dtype.kind == "b" and arr.dtype.kind != "b":
            raise RequestError(400, "inputs must be booleans")
        return arr.astype(self.input_dtype)

    def _texts(self, texts) -> np.ndarray:
        if self._tokenizer is None:
            raise RequestError(400, "this model takes 'inputs', not 'texts'")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise RequestError(400, "texts must be a string or a list of strings")
        if not texts:
            raise RequestError(400, "texts is empty")
        maxlen = self.input_shape[0]
        return self._tokenizer.encode_batch(texts, maxlen=maxlen).astype(self.input_dtype)

    # -- prediction -------------------------------------------------------------

    def _run(self, batch: np.ndarray):
        n = batch.shape[0]
        size = 1 << max(0, math.ceil(math.log2(n)))
        if size > n:
            pad = np.zeros((size - n,) + batch.shape[1:], batch.dtype)
            batch = np.concatenate([batch, pad])
        with self._lock:
            out = self._batched(batch)
        return fn.tree.map(lambda o: np.asarray(fn.to_numpy(o))[:n], out)

    def predict(self, payload) -> dict:
        examples = self._examples(payload)
        n = examples.shape[0]
        if n > self.max_batch:
            raise RequestError(413, f"{n} examples in one request; the limit is "
                                    f"{self.max_batch} (split the request)")
        out = self._run(examples)
        reply = {"outputs": fn.tree.map(lambda o: o.tolist(), out)}
        if self.classes and isinstance(out, np.ndarray) and out.ndim == 2 \
                and out.shape[1] == len(self.classes):
            best = np.argmax(out, axis=1)
            reply["predictions"] = [
                {"index": int(i), "label": self.classes[int(i)], "probability": float(row[i])}
                for i, row in zip(best, out)]
        return reply


class _Handler(BaseHTTPRequestHandler):
    server_version = "funcnet-serve"
    timeout = 30  # seconds a client may take to send its request

    # -- plumbing ---------------------------------------------------------------

    def _send(self, status: int, obj) -> None:
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message, "status": status})

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if not self.server.quiet:
            super().log_message(format, *args)

    def _guarded(self, handler) -> None:
        try:
            handler()
        except RequestError as e:
            self._error(e.status, e.message)
        except Exception as e:  # never let a request take the server down
            traceback.print_exc(file=sys.stderr)
            try:
                self._error(500, f"internal error: {type(e).__name__}: {e}")
            except OSError:
                pass

    # -- routes -----------------------------------------------------------------

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._guarded(self._get)

    def do_POST(self):  # noqa: N802
        self._guarded(self._post)

    def _get(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send(200, {"status": "ok"})
        elif path == "/info":
            self._send(200, self.server.service.info())
        elif path == "/predict":
            raise RequestError(405, "use POST /predict with a JSON body")
        else:
            raise RequestError(404, f"no such endpoint {path!r}; try GET /health, GET /info, "
                                    "POST /predict")

    def _post(self):
        path = self.path.split("?", 1)[0]
        if path in ("/health", "/info"):
            raise RequestError(405, f"use GET {path}")
        if path != "/predict":
            raise RequestError(404, f"no such endpoint {path!r}; try POST /predict")
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(411, "a Content-Length header is required")
        try:
            length = int(length)
        except ValueError:
            raise RequestError(400, f"bad Content-Length {length!r}") from None
        if length < 0:
            raise RequestError(400, f"bad Content-Length {length}")
        limit = self.server.max_request_bytes
        if length > limit:
            self.close_connection = True
            raise RequestError(413, f"the request body has {length} bytes; the limit is "
                                    f"{limit}")
        body = self.rfile.read(length)
        try:
            payload = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise RequestError(400, "the body is not UTF-8 text") from None
        except json.JSONDecodeError as e:
            raise RequestError(400, f"the body is not valid JSON: {e.msg} at line {e.lineno} "
                                    f"column {e.colno}") from None
        self._send(200, self.server.service.predict(payload))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    service: PredictionService
    max_request_bytes: int
    quiet: bool


def make_server(model, host: str = "127.0.0.1", port: int = 8000, *,
                max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
                max_batch: int = DEFAULT_MAX_BATCH, quiet: bool = False) -> ThreadingHTTPServer:
    """A ready ``ThreadingHTTPServer`` for ``model`` (an ``fn.export`` result or a path);
    call ``serve_forever()`` (``port=0`` picks a free port: ``server.server_address[1]``).

    ``quiet=True`` silences the request log (stderr).

    >>> import numpy as np, funcnet as fn
    >>> import funcnet.export
    >>> from funcnet.serve import make_server
    >>> server = make_server(fn.export(lambda x: x + 1, np.zeros(2, np.float32)), port=0)
    >>> server.server_address[0], server.server_address[1] > 0
    ('127.0.0.1', True)
    >>> server.server_close()
    """
    service = model if isinstance(model, PredictionService) else \
        PredictionService(model, max_batch=max_batch)
    server = _Server((host, int(port)), _Handler)
    server.service = service
    server.max_request_bytes = int(max_request_bytes)
    server.quiet = quiet
    return server


def serve(model, host: str = "127.0.0.1", port: int = 8000, *,
          max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
          max_batch: int = DEFAULT_MAX_BATCH, quiet: bool = False, log=print) -> None:
    """Serve ``model`` until interrupted (Ctrl-C): what ``funcnet serve`` runs.

    The model is compiled (a warm-up prediction) before the server announces
    ``serving ... on http://HOST:PORT``.

    >>> from funcnet.serve import serve
    >>> serve("no-such-model.fnx")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no such file: no-such-model.fnx
    """
    service = PredictionService(model, max_batch=max_batch)
    service._run(np.zeros((1,) + service.input_shape, service.input_dtype))  # compile once
    server = make_server(service, host, port, max_request_bytes=max_request_bytes,
                         quiet=quiet)
    bound_host, bound_port = server.server_address[:2]
    if log is not None:
        log(f"serving {service.model.name} ({service.model.signature}) on "
            f"http://{bound_host}:{bound_port}  (GET /health, GET /info, POST /predict; "
            "Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
