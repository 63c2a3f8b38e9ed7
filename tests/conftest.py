"""Test session set-up: no network, offline hubs, small deterministic thread use."""

import os
import sys
from pathlib import Path

import pytest

NETBLOCK = Path(__file__).parent / "netblock"

# Before anything imports timm or huggingface_hub: offline mode, and sockets blocked here and in
# every subprocess (via sitecustomize on PYTHONPATH).
os.environ["LIFEIQA_TEST_NETBLOCK"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(NETBLOCK), os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, str(NETBLOCK))
import lifeiqa_netblock  # noqa: E402

lifeiqa_netblock.install()


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)
