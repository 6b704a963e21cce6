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
    "RankEnhancedLinearAttention",
    "SoftmaxAttention",
    "attention_rank_report",
    "build_attention",
    "effective_attention_maps",
    "energy_rank",
    "numerical_rank",
    "pad_to_multiple",
]
