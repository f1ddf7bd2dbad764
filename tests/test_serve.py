"""``funcnet serve``: JSON predictions over HTTP on the loopback interface, good and bad
requests."""

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

import funcnet as fn
from funcnet import data, random, serve
from funcnet.training import tasks

IMAGE_SPEC = {"dataset": "digits", "kind": "image", "classes": [str(i) for i in range(10)],
              "input_shape": [8, 8, 1], "input_dtype": "float32"}


def _export(spec, model_name="mlp", **kw):
    model = tasks.create_model(model_name, spec, **kw)
    shape = [-1, *spec["input_shape"]]
    _, params, state = model.init_with_state(random.key(0), shape)
    predict = tasks.make_predict_fn(model, params, state, spec)
    example = np.zeros(spec["input_shape"], spec["input_dtype"])
    exported = fn.export(lambda x: predict(x[None])[0], example, name="test-model",
                         metadata={"task": spec, "classes": spec["classes"]})
    return exported, predict


@pytest.fixture(scope="module")
def image_server():
    exported, predict = _export(IMAGE_SPEC, hidden_sizes=(16,))
    server = serve.make_server(exported, "127.0.0.1", 0, max_request_bytes=20_000, max_batch=8,
                               quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", predict, server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _request(url, body=None, method=None, headers=None):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        payload = e.read()
        assert e.headers["Content-Type"] == "application/json"
        return e.code, json.loads(payload)


def test_health_and_info(image_server):
    url, _, _ = image_server
    assert _request(url + "/health") == (200, {"status": "ok"})
    status, info = _request(url + "/info")
    assert status == 200
    assert info["input_shape"] == [8, 8, 1] and info["input_dtype"] == "float32"
    assert info["output_shapes"] == [[10]] and info["classes"][3] == "3"
    assert info["task"]["kind"] == "image" and info["max_batch"] == 8


def test_predict_one_and_many(image_server):
    url, predict, _ = image_server
    x = data.load_digits()[0][:5] if _has_sklearn() else \
        np.random.default_rng(0).random((5, 8, 8, 1)).astype(np.float32)
    expected = np.asarray(predict(x))
    status, reply = _request(url + "/predict", {"inputs": x.tolist()})
    assert status == 200
    np.testing.assert_allclose(reply["outputs"], expected, rtol=1e-5, atol=1e-6)
    assert [p["index"] for p in reply["predictions"]] == np.argmax(expected, 1).tolist()
    assert reply["predictions"][0]["label"] == str(reply["predictions"][0]["index"])
    status, one = _request(url + "/predict", {"inputs": x[2].tolist()})     # a single example
    assert status == 200 and len(one["outputs"]) == 1
    np.testing.assert_allclose(one["outputs"][0], expected[2], rtol=1e-5, atol=1e-6)


def _has_sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "not valid JSON"),
    (b"\xff\xfe", 400, "not UTF-8"),
    ([1, 2], 400, "must be a JSON object"),
    ({"x": 1}, 400, "no 'inputs'"),
    ({"inputs": "abc"}, 400, "must be a number or a (nested) list"),
    ({"inputs": [[1, 2], [3]]}, 400, "ragged"),
    ({"inputs": np.zeros((2, 64)).tolist()}, 400, "each example must have shape (8, 8, 1)"),
    ({"inputs": []}, 400, "inputs is empty"),
    ({"inputs": [[["a"]] * 8] * 8}, 400, "must hold numbers"),
    ({"inputs": np.zeros((9, 8, 8, 1)).tolist()}, 413, "limit is 8"),
    ({"texts": ["hello"]}, 400, "takes 'inputs', not 'texts'"),
])
def test_bad_requests_get_json_errors(image_server, body, status, message):
    url, _, _ = image_server
    got, reply = _request(url + "/predict", body)
    assert got == status and reply["status"] == status
    assert message in reply["error"], reply


def test_nan_and_oversized_bodies_and_wrong_routes(image_server):
    url, _, _ = image_server
    nan = json.dumps({"inputs": np.full((8, 8, 1), np.nan).tolist()}).encode()
    assert _request(url + "/predict", nan)[0] == 400
    status, reply = _request(url + "/predict", b"[" + b"0," * 20_000 + b"0]")
    assert status == 413 and "limit is 20000" in reply["error"]
    assert _request(url + "/nowhere")[0] == 404
    assert _request(url + "/predict")[0] == 405                 # GET
    assert _request(url + "/info", b"{}")[0] == 405             # POST
    assert _request(url + "/health")[0] == 200                  # still serving


def test_internal_errors_answer_500_and_the_server_keeps_running(image_server, monkeypatch,
                                                                 capsys):
    url, _, server = image_server

    def broken(batch):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(server.service, "_batched", broken)
    status, reply = _request(url + "/predict", {"inputs": np.zeros((8, 8, 1)).tolist()})
    assert status == 500 and "RuntimeError: kernel exploded" in reply["error"]
    monkeypatch.undo()
    assert _request(url + "/predict", {"inputs": np.zeros((8, 8, 1)).tolist()})[0] == 200
    assert "kernel exploded" in capsys.readouterr().err      # the traceback is logged


def test_concurrent_requests(image_server):
    url, predict, _ = image_server
    rng = np.random.default_rng(1)
    batches = [rng.random((n, 8, 8, 1)).astype(np.float32) for n in (1, 3, 8, 5, 2, 7)]
    results = [None] * len(batches)

    def worker(i):
        results[i] = _request(url + "/predict", {"inputs": batches[i].tolist()})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for batch, (status, reply) in zip(batches, results):
        assert status == 200
        np.testing.assert_allclose(reply["outputs"], predict(batch), rtol=1e-5, atol=1e-6)


def test_text_model_accepts_texts():
    tok = data.Tokenizer().fit(["free prize now", "see you at lunch"])
    spec = {"dataset": "sms-spam", "kind": "text", "classes": ["ham", "spam"],
            "input_shape": [6], "input_dtype": "int64", "maxlen": 6,
            "tokenizer": tok.to_dict()}
    exported, predict = _export(spec, model_name="text")
    service = serve.PredictionService(exported)
    reply = service.predict({"texts": ["free prize", "lunch?"]})
    ids = tok.encode_batch(["free prize", "lunch?"], maxlen=6)
    np.testing.assert_allclose(reply["outputs"], predict(ids), rtol=1e-5, atol=1e-6)
    assert service.predict({"inputs": ids.tolist()})["outputs"] == reply["outputs"]
    for bad, message in [({"inputs": [[1.5] * 6]}, "must be integers"),
                         ({"inputs": [[99] * 6]}, "token ids must be in 0 ... 8"),
                         ({"texts": [1, 2]}, "list of strings")]:
        with pytest.raises(serve.RequestError, match=message):
            service.predict(bad)
    assert service.info()["accepts_texts"] is True and "tokenizer" not in service.info()["task"]
