"""How a Transformer knows order: added position vectors, or a bias on attention by distance.

Attention itself is order-blind: with 'none', a window's rows are a set (apart from what a causal
mask reveals). 'sinusoidal' and 'learned' add a vector per position (the table has exactly
window_len rows; a forecaster's last row is counted but never trained: the output at the
window's last position predicts a row not yet logged, so no loss reaches it, and under the
causal mask no earlier output sees it); 'alibi' adds nothing to the rows but lowers each
head's attention to a row in proportion to its distance (Press et al., ICLR 2022), so order
enters as recency, much as a recurrence's decaying memory does.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from anomaly.errors import UserError

POSITIONAL = ("none", "sinusoidal", "learned", "alibi")


class PositionalEncoding(nn.Module):
    """Adds position vectors to (B, T, d) inputs ('sinusoidal', 'learned'); else passes them."""

    def __init__(self, kind: str, d_model: int, window_len: int):
        super().__init__()
        if kind not in POSITIONAL:
            raise UserError(f"positional must be one of {', '.join(POSITIONAL)}, got {kind!r}")
        self.kind = kind
        if kind == "learned":
            self.table = nn.Parameter(torch.randn(window_len, d_model) * 0.02)
        elif kind == "sinusoidal":
            pos = torch.arange(window_len).unsqueeze(1)
            div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
            pe = torch.zeros(window_len, d_model)
            pe[:, 0::2] = torch.sin(pos * div)
            pe[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
            self.register_buffer("table", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind not in ("sinusoidal", "learned"):
            return x
        return x + self.table[: x.shape[1]].unsqueeze(0)  # (B, T, d)


def attention_mask(
    kind: str, n_heads: int, T: int, causal: bool, device: torch.device | None = None
) -> torch.Tensor:
    """The float mask added to attention scores: -inf on later rows when `causal`, and with
    'alibi' -slope_h * distance per head h (slopes 2^(-8h/H)). (H, T, T) or (T, T), on the
    inputs' device (a GPU's attention refuses a mask left on the CPU)."""
    i = torch.arange(T, device=device)
    distance = (i[:, None] - i[None, :]).abs().float()  # (T, T)
    mask = torch.zeros(T, T, device=device)
    if causal:
        mask = mask.masked_fill(i[None, :] > i[:, None], float("-inf"))
    if kind != "alibi":
        return mask
    slopes = 2.0 ** (-8.0 * torch.arange(1, n_heads + 1, device=device) / n_heads)  # (H,)
    return mask[None] - slopes[:, None, None] * distance[None]  # (H, T, T)


def batched(mask: torch.Tensor, batch: int) -> torch.Tensor:
    """A per-head (H, T, T) mask repeated for each window, as attention wants (B * H, T, T);
    a (T, T) mask as it is."""
    return mask.repeat(batch, 1, 1) if mask.dim() == 3 else mask


def encode(encoder: nn.TransformerEncoder, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`encoder(h, mask=mask)`, always as in training. PyTorch's inference fast path (eval mode,
    no grad) reads a float mask as a boolean one, every non-zero entry masked (pytorch/pytorch
    issue 107084): a causal mask of 0 and -inf survives that, but an ALiBi bias leaves each row
    attending to itself alone, so the network scores with other attention than it trained with
    (seen on torch 2.13: outputs off by more than 1 with dropout 0, blind to the order of
    earlier rows). A graded mask therefore takes the standard path."""
    one = mask if mask.dim() == 2 else mask[0]  # every head's slice is graded alike: O(T^2)
    graded = bool((torch.isfinite(one) & (one != 0)).any())
    if not graded or not torch.backends.mha.get_fastpath_enabled():
        return encoder(h, mask=mask)
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        return encoder(h, mask=mask)
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
