"""Stock-selection scoring models as configuration (SOE, technology, consumer, industry chain).

``load_model(name_or_path)`` reads a shipped model (``soe``, ``tech``, ``consumer``,
``lithium_chain``), a TOML file or a dict; :class:`Model` scores it on rebalance dates and
turns scores into weights. :mod:`quantdask.models.chain` has the industry-chain study
(three-tier portfolios by industry, segment profitability).
"""

from quantdask.models.chain import segment_profitability, tier_returns, tier_summary
from quantdask.models.config import ModelConfig, ModelConfigError, read_config, shipped_models
from quantdask.models.model import Model, load_model

__all__ = [
    "Model",
    "ModelConfig",
    "ModelConfigError",
    "load_model",
    "read_config",
    "segment_profitability",
    "shipped_models",
    "tier_returns",
    "tier_summary",
]
