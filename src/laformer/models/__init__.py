"""LAformer networks in pure PyTorch (no Lightning, no Hydra)."""

from laformer.models.attention import (
    ATTENTIONS,
    FEATURE_MAPS,
    LinearAttention,
    RankEnhancedLinearAttention,
    SoftmaxAttention,
    build_attention,
)
from laformer.models.blocks import FUSION_MODES, GlobalPerception, LAformerBlock
from laformer.models.laformer import PRESETS, SIZE_MULTIPLE, LAformer, pad_to_multiple
from laformer.models.rank import attention_rank_report, effective_attention_maps, energy_rank, numerical_rank
from laformer.models.registry import (
    NetworkConfigError,
    NetworkInfo,
    UntrustedConfigError,
    build_network,
    network_info,
    register_network_target,
)

__all__ = [
    "ATTENTIONS",
    "FEATURE_MAPS",
    "FUSION_MODES",
    "PRESETS",
    "SIZE_MULTIPLE",
    "GlobalPerception",
    "LAformer",
    "LAformerBlock",
    "LinearAttention",
    "NetworkConfigError",
    "NetworkInfo",
    "RankEnhancedLinearAttention",
    "SoftmaxAttention",
    "UntrustedConfigError",
    "attention_rank_report",
    "build_attention",
    "build_network",
    "effective_attention_maps",
    "energy_rank",
    "network_info",
    "numerical_rank",
    "pad_to_multiple",
    "register_network_target",
]
