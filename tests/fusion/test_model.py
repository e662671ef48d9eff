"""The fusion network: every modality subset, masking, contributions, determinism, calibration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from streamline.errors import ConfigError  # noqa: E402
from streamline.fusion.extract import TEXT_FEATURE_DIM  # noqa: E402
from streamline.fusion.model import STRATEGIES, FusionConfig, FusionNet, fit_temperature  # noqa: E402

SUBSETS = [s for r in (1, 2, 3) for s in itertools.combinations(range(3), r)]


def _inputs(b: int = 4, seed: int = 0) -> list:
    g = torch.Generator().manual_seed(seed)
    face = torch.rand(b, 15, 63, generator=g)
    voice = torch.randn(b, 4, 769, generator=g)
    voice[:, :, 384:768] = voice[:, :, 384:768].abs()  # standard deviations
    voice[:, :, 768] = 1.0  # full hops
    text = torch.randn(b, 1, TEXT_FEATURE_DIM, generator=g)
    masks = [torch.ones(b, 15, dtype=torch.bool), torch.ones(b, 4, dtype=torch.bool), torch.ones(b, 1, dtype=torch.bool)]
    masks[0][:, 10:] = False  # part of the face grid invalid
    masks[1][0, 3:] = False  # a shorter voice window
    return [face, masks[0], voice, masks[1], text, masks[2]]


def _with_subset(inputs: list, subset: tuple[int, ...]) -> list:
    out = list(inputs)
    for m in range(3):
        if m not in subset:
            out[2 * m + 1] = torch.zeros_like(inputs[2 * m + 1])
    return out


@pytest.fixture(scope="module", params=STRATEGIES)
def net(request: pytest.FixtureRequest) -> FusionNet:
    torch.manual_seed(0)
    return FusionNet(FusionConfig(strategy=request.param)).eval()


def test_every_subset_gives_probabilities_and_contributions(net: FusionNet) -> None:
    inputs = _inputs()
    for subset in SUBSETS:
        with torch.no_grad():
            logits, probs, va, contrib, present = net(*_with_subset(inputs, subset))
        assert torch.isfinite(logits).all()
        assert torch.allclose(probs.sum(1), torch.ones(4), atol=1e-5) and (probs >= 0).all()
        assert (va.abs() <= 1).all()
        expect = torch.zeros(3, dtype=torch.bool)
        expect[list(subset)] = True
        assert (present == expect).all()
        assert torch.allclose(contrib.sum(1), torch.ones(4), atol=1e-5)
        assert (contrib[:, ~expect] == 0).all() and (contrib >= 0).all()


def test_an_absent_modality_does_not_change_the_output(net: FusionNet) -> None:
    inputs = _inputs()
    for subset in SUBSETS:
        base = _with_subset(inputs, subset)
        changed = list(base)
        for m in range(3):
            if m not in subset:
                changed[2 * m] = base[2 * m] * 7 + 3  # wild values where the modality is masked
        with torch.no_grad():
            a = net(*base)
            b = net(*changed)
        for x, y in zip(a, b):
            assert torch.equal(x, y), subset


def test_invalid_points_inside_a_present_modality_are_ignored(net: FusionNet) -> None:
    inputs = _inputs()
    changed = list(inputs)
    face = inputs[0].clone()
    face[:, 10:] = 99.0  # the invalid part of the face grid
    changed[0] = face
    with torch.no_grad():
        assert torch.equal(net(*inputs)[1], net(*changed)[1])


def test_no_modality_at_all_is_uniform_for_late_fusion() -> None:
    net = FusionNet(FusionConfig(strategy="late")).eval()
    with torch.no_grad():
        _, probs, _, contrib, present = net(*_with_subset(_inputs(), ()))
    assert torch.allclose(probs, torch.full_like(probs, 1 / 7)) and not present.any() and (contrib == 0).all()


def test_same_seed_same_model_and_same_training_steps() -> None:
    def run() -> torch.Tensor:
        torch.manual_seed(123)
        net = FusionNet(FusionConfig(strategy="attention"))
        opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
        inputs = _inputs(8, seed=5)
        y = torch.arange(8) % 7
        for _ in range(3):
            loss = torch.nn.functional.cross_entropy(net(*inputs)[0], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            return net(*inputs)[1]

    torch.use_deterministic_algorithms(True)
    try:
        assert torch.equal(run(), run())
    finally:
        torch.use_deterministic_algorithms(False)


def test_batch_rows_are_independent(net: FusionNet) -> None:
    inputs = _inputs()
    with torch.no_grad():
        full = net(*inputs)[1]
        row = net(*[x[2:3] for x in inputs])[1]
    assert torch.allclose(full[2:3], row, atol=1e-6)


def test_fit_temperature_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    z = torch.from_numpy(rng.normal(0, 3, size=(20000, 7)).astype(np.float32))
    p = torch.softmax(z / 2.0, dim=1).numpy().astype(np.float64)
    p /= p.sum(1, keepdims=True)
    u = rng.random(len(p))[:, None]
    y = torch.from_numpy((p.cumsum(1) > u).argmax(1))  # one draw per row from softmax(z / 2)
    assert fit_temperature(z, y) == pytest.approx(2.0, rel=0.1)


def test_config_validation_and_round_trip() -> None:
    with pytest.raises(ConfigError):
        FusionConfig(strategy="sum")
    with pytest.raises(ConfigError):
        FusionConfig(d_model=30, n_heads=4)
    cfg = FusionConfig(strategy="concat", voice_hidden=8)
    assert FusionConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown"):
        FusionConfig.from_dict({"strategy": "late", "bogus": 1})


def test_voice_pooling_of_hops_equals_pooling_of_all_frames() -> None:
    """A window's hop items (mean, std, weight) pool to the mean and std of all its encoder frames,
    partial hops included, and masked hops are left out."""
    rng = np.random.default_rng(3)
    frames = rng.standard_normal((25 + 25 + 25 + 10, 384)).astype(np.float64) * 2 + 1
    hops = np.split(frames, [25, 50, 75])
    items = np.stack([np.concatenate([h.mean(0), h.std(0), [len(h) / 25]]) for h in hops])
    x = torch.from_numpy(np.concatenate([items, items[:1] * 100])[None].astype(np.float32))  # + a masked junk hop
    mask = torch.tensor([[True, True, True, True, False]])
    pooled = FusionNet(FusionConfig()).voice.pool(x, mask)[0].numpy()
    assert np.allclose(pooled[:384], frames.mean(0), atol=1e-4)
    assert np.allclose(pooled[384:], frames.std(0), atol=1e-3)
