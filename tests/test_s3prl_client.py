"""S3PRL as a real client: its `Featurizer` (the layer-weighted sum every SUPERB task trains) on `UpstreamExpert`.

S3PRL 0.4.18 is installed from the package registry at test time into a folder of its own (tests/client_packages.py);
skipped, with the reason, only when it cannot be installed.
"""

import sys

import pytest
import torch
from client_packages import Unavailable, s3prl_site
from helpers import tiny_config_kwargs

from alhubert import AlHubertConfig, AlHubertModel


try:
    sys.path.insert(0, str(s3prl_site()))
    from s3prl.upstream.interfaces import Featurizer
except (Unavailable, ImportError) as error:
    pytest.skip(f"S3PRL 0.4.18 could not be installed: {error}", allow_module_level=True)

pytestmark = pytest.mark.slow  # the first run installs S3PRL from the registry


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    from alhubert.original import hubconf

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("alhubert-s3prl")
    config = AlHubertConfig(**tiny_config_kwargs(num_hidden_layers=4, num_hidden_groups=2))
    AlHubertModel(config).save_pretrained(folder)
    return hubconf.alhubert_hf(str(folder))


def test_hubconf_exports_only_the_upstream_name():
    """S3PRL's hub registers every public callable of a hubconf (`from ...hubconf import *`) as an upstream."""
    namespace = {}
    exec("from alhubert.original.hubconf import *", namespace)
    assert [name for name, value in namespace.items() if callable(value)] == ["alhubert_hf"]


def test_featurizer_weighted_sum_downsample_rate_and_gradient(upstream):
    featurizer = Featurizer(upstream, feature_selection="hidden_states", upstream_device="cpu")
    assert featurizer.layer_num == 4  # one per layer application, as the original expert (see the README)
    assert featurizer.downsample_rate == 320
    assert featurizer.output_dim == 32

    wavs = [torch.randn(16000), torch.randn(9600)]
    with torch.no_grad():
        features = upstream(wavs)
    with torch.no_grad():
        featurizer.weights.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    summed = featurizer(wavs, features)
    # S3PRL keeps round(samples / 320) frames per item: 50 -> the 49 that exist, 30 -> 29 real + 1 padding frame
    # (its rounding, the same for its own HuBERT expert)
    assert [tuple(item.shape) for item in summed] == [(49, 32), (30, 32)]

    weights = torch.softmax(featurizer.weights.detach(), dim=0)
    expected = sum(weight * state for weight, state in zip(weights, features["hidden_states"]))
    torch.testing.assert_close(summed[0], expected[0, :49], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(summed[1], expected[1, :30], atol=1e-5, rtol=1e-5)
    # the real frames the featurizer keeps are the expert's pad_mask
    assert features["pad_mask"].sum(1).tolist() == [49, 29]

    (summed[0].pow(2).sum() + summed[1].pow(2).sum()).backward()
    assert featurizer.weights.grad is not None and featurizer.weights.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in upstream.parameters())  # the upstream stays frozen
