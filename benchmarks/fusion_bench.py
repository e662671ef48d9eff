"""Fusion model benchmark: latency per window on one CPU thread, size, int8 and ONNX deltas.

Run: ``python benchmarks/fusion_bench.py [--weights DIR] [--cache DIR] [--repeats N]``.

* latency: one window (2 s: 30 face points, 4 voice hops, one text vector)
  through the default model, ``torch.set_num_threads(1)``; median and p95 over
  ``--repeats`` calls, for all three modalities and for voice only;
* size: ``fusion.pt`` bytes and parameter count;
* int8: ``torch.ao.quantization.quantize_dynamic`` on the linear layers; latency
  and the change in accuracy on held-out data;
* ONNX: ``torch.onnx.export`` (TorchScript exporter, dynamic batch and sequence
  axes) run with onnxruntime (1 thread); latency, largest probability difference
  and accuracy change.

Held-out data for the accuracy deltas: the training feature caches (RAVDESS test
actors 01-04 as 2 s centre windows, held-out face subjects, MELD dev) when
``--cache`` (default ``$STREAMLINE_FEATURE_CACHE`` or ~/.cache/streamline/features)
holds them; otherwise the accuracy deltas are skipped (null). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timeit(fn, repeats: int) -> tuple[float, float]:
    for _ in range(20):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    a = np.array(ts) * 1000
    return float(np.median(a)), float(np.percentile(a, 95))


def _heldout(cache: Path):
    """(inputs tuple of numpy arrays, labels, group names) from the training caches, or None."""
    from streamline.fusion import cache as C
    from streamline.fusion.extract import FACE_FEATURE_DIM, TEXT_FEATURE_DIM, VOICE_FEATURE_DIM
    from streamline.fusion.train import FACE_TEST_SUBJECTS, RAVDESS_TEST_ACTORS, _pad
    from streamline.fusion.types import CLASSES

    paths = [cache / n for n in ("voice_ravdess16k.npz", "face_faces.npz", "text_meld_dev.npz")]
    if not all(p.exists() for p in paths):
        return None
    v = C.load_voice_cache(paths[0])
    f = C.load_face_cache(paths[1])
    t = C.load_text_cache(paths[2])
    cls = {c: i for i, c in enumerate(CLASSES)}
    vi = np.flatnonzero(np.isin(v.speakers.astype(str), RAVDESS_TEST_ACTORS))
    fi = np.flatnonzero(np.isin(f.speakers.astype(str), FACE_TEST_SUBJECTS) & f.present[:, 0])
    vs = []
    for i in vi:
        x = v.get(int(i), 0)[v.has_speech(int(i), 0)]  # the voice the model sees: hops with speech
        s = max(0, (len(x) - 4) // 2)  # the centre 2 s of it: four 0.5 s hops
        vs.append(x[s : s + 4])
    groups = []
    n = len(vi) + len(fi) + len(t.labels)
    vx, vm = _pad(vs + [np.zeros((1, VOICE_FEATURE_DIM), np.float32)] * (n - len(vi)), VOICE_FEATURE_DIM)
    vm[len(vi):] = False
    no_face = [np.zeros((1, FACE_FEATURE_DIM), np.float32)]
    fx, fm = _pad(no_face * len(vi) + [f.feats[i, :1] for i in fi] + no_face * len(t.labels), FACE_FEATURE_DIM)
    fm[: len(vi)] = False
    fm[len(vi) + len(fi):] = False
    tx = np.zeros((n, 1, TEXT_FEATURE_DIM), np.float32)
    tm = np.zeros((n, 1), bool)
    tx[len(vi) + len(fi):, 0] = t.feats[:, 0]
    tm[len(vi) + len(fi):] = True
    y = np.array([cls[str(c)] for c in list(v.labels[vi]) + list(f.labels[fi]) + list(t.labels)])
    groups = np.array(["voice"] * len(vi) + ["face"] * len(fi) + ["text"] * len(t.labels))
    return (fx, fm, vx, vm, tx, tm), y, groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--cache", default=os.environ.get("STREAMLINE_FEATURE_CACHE", str(Path.home() / ".cache" / "streamline" / "features")))
    ap.add_argument("--repeats", type=int, default=300)
    args = ap.parse_args()

    import torch

    from streamline.features.voice_embedding import ENCODER_DIM
    from streamline.fusion.extract import FACE_FEATURE_DIM, TEXT_FEATURE_DIM
    from streamline.fusion.recognizer import load_model, quantize_dynamic, weights_dir

    torch.set_num_threads(1)
    net, config = load_model(args.weights)
    net.loo_contributions = True
    wpath = weights_dir(args.weights) / config["weights_file"]
    size_bytes = wpath.stat().st_size
    n_params = sum(p.numel() for p in net.parameters())
    rng = np.random.default_rng(0)
    one = (
        torch.from_numpy(rng.random((1, 30, FACE_FEATURE_DIM), dtype=np.float32)),
        torch.ones(1, 30, dtype=torch.bool),
        torch.from_numpy(np.concatenate([rng.standard_normal((1, 4, ENCODER_DIM)), rng.random((1, 4, ENCODER_DIM)) + 0.1,
                                         np.ones((1, 4, 1))], axis=2).astype(np.float32)),
        torch.ones(1, 4, dtype=torch.bool),
        torch.from_numpy((rng.standard_normal((1, 1, TEXT_FEATURE_DIM)) * 0.05).astype(np.float32)),
        torch.ones(1, 1, dtype=torch.bool),
    )
    voice_only = (one[0], torch.zeros_like(one[1]), one[2], one[3], one[4], torch.zeros_like(one[5]))

    with torch.no_grad():
        lat_all = _timeit(lambda: net(*one), args.repeats)
        lat_voice = _timeit(lambda: net(*voice_only), args.repeats)
        qnet = quantize_dynamic(net)
        lat_q = _timeit(lambda: qnet(*one), args.repeats)
    print(f"model: strategy {config['model']['strategy']}, {n_params} parameters, {size_bytes / 1e6:.3f} MB ({wpath.name})")
    print(f"latency per window, 1 thread, all modalities: median {lat_all[0]:.3f} ms, p95 {lat_all[1]:.3f} ms")
    print(f"latency per window, 1 thread, voice only:     median {lat_voice[0]:.3f} ms, p95 {lat_voice[1]:.3f} ms")
    print(f"int8 dynamic quantization: median {lat_q[0]:.3f} ms, p95 {lat_q[1]:.3f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        qpath = Path(tmp) / "q.pt"
        torch.save(qnet.state_dict(), qpath)
        q_size = qpath.stat().st_size
    print(f"int8 state dict size: {q_size / 1e6:.3f} MB")

    # ONNX
    onnx_out: dict[str, object] = {"onnx_ok": False}
    try:
        import onnxruntime as ort

        names = ["face_x", "face_mask", "voice_x", "voice_mask", "text_x", "text_mask"]
        dyn = {n: {0: "batch", 1: f"t_{n.split('_')[0]}"} for n in names}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "fusion.onnx"
            torch.onnx.export(net, one, str(path), dynamo=False, input_names=names,
                              output_names=["logits", "probs", "va", "contributions", "present"], dynamic_axes=dyn, opset_version=17)
            onnx_size = path.stat().st_size
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            so.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            feed = {n: a.numpy() for n, a in zip(names, one)}
            lat_onnx = _timeit(lambda: sess.run(["probs"], feed), args.repeats)
            with torch.no_grad():
                ref = net(*one)[1].numpy()
            diff = float(np.abs(sess.run(["probs"], feed)[0] - ref).max())
            onnx_out = {"onnx_ok": True, "onnx_latency_ms_median": round(lat_onnx[0], 4), "onnx_latency_ms_p95": round(lat_onnx[1], 4),
                        "onnx_size_mb": round(onnx_size / 1e6, 3), "onnx_max_prob_diff": diff}
            print(f"ONNX (onnxruntime, 1 thread): median {lat_onnx[0]:.3f} ms, p95 {lat_onnx[1]:.3f} ms, {onnx_size / 1e6:.3f} MB, max |dp| {diff:.2e}")
            held = _heldout(Path(args.cache))
            if held is not None:
                inputs, y, groups = held
                with torch.no_grad():
                    pf = net(*(torch.from_numpy(a) for a in inputs))[1].numpy()
                    pq = qnet(*(torch.from_numpy(a) for a in inputs))[1].numpy()
                po = np.concatenate([sess.run(["probs"], {n: a[k:k + 256] for n, a in zip(names, inputs)})[0] for k in range(0, len(y), 256)])
                acc = {}
                for g in ("voice", "face", "text"):
                    sel = groups == g
                    acc[g] = {k: float((p[sel].argmax(1) == y[sel]).mean()) for k, p in (("float", pf), ("int8", pq), ("onnx", po))}
                    print(f"held-out {g:<5} (n={int(sel.sum())}): accuracy float {acc[g]['float']:.4f}, int8 {acc[g]['int8']:.4f}, onnx {acc[g]['onnx']:.4f}")
                onnx_out["heldout_accuracy"] = acc
                onnx_out["int8_agreement"] = float((pf.argmax(1) == pq.argmax(1)).mean())
                onnx_out["onnx_agreement"] = float((pf.argmax(1) == po.argmax(1)).mean())
                print(f"agreement with float: int8 {onnx_out['int8_agreement']:.4f}, onnx {onnx_out['onnx_agreement']:.4f}")
            else:
                print(f"(no feature caches under {args.cache}: accuracy deltas skipped)")
    except Exception as exc:  # noqa: BLE001 - report and continue
        print(f"ONNX export/run failed: {type(exc).__name__}: {exc}")
        onnx_out["onnx_error"] = f"{type(exc).__name__}: {exc}"

    result = {
        "strategy": config["model"]["strategy"],
        "params": n_params,
        "model_size_mb": round(size_bytes / 1e6, 4),
        "latency_ms_median": round(lat_all[0], 4),
        "latency_ms_p95": round(lat_all[1], 4),
        "latency_voice_only_ms_median": round(lat_voice[0], 4),
        "int8_latency_ms_median": round(lat_q[0], 4),
        "int8_size_mb": round(q_size / 1e6, 4),
        **onnx_out,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
