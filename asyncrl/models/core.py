"""The recurrent core: none, GRU or LSTM, with its state always one float tensor ``[N, S]``."""

from __future__ import annotations

import torch
from torch import nn


class Core(nn.Module):
    """``kind`` none | gru | lstm. ``state_size`` is 0 without a core (the state is then None);
    the LSTM packs ``(h, c)`` as ``cat([h, c], -1)`` so its state is ``[N, 2H]``."""

    def __init__(self, kind: str, in_size: int, hidden: int):
        super().__init__()
        self.kind = kind
        if kind == "none":
            self.rnn: nn.RNNBase | None = None
            self.state_size, self.out_size = 0, in_size
        elif kind in ("gru", "lstm"):
            # torch's default init is kept, as Sample Factory does.
            self.rnn = (nn.GRU if kind == "gru" else nn.LSTM)(in_size, hidden)
            self.state_size, self.out_size = hidden * (2 if kind == "lstm" else 1), hidden
        else:
            raise ValueError(f"unknown core {kind!r}: expected none, gru or lstm")

    def initial_state(self, n: int, device: torch.device | str | None = None) -> torch.Tensor | None:
        return None if self.rnn is None else torch.zeros(n, self.state_size, device=device)

    def _split(self, state: torch.Tensor):
        if self.kind == "lstm":
            h, c = state.chunk(2, dim=-1)
            return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()
        return state.unsqueeze(0).contiguous()

    def _join(self, hx) -> torch.Tensor:
        return torch.cat([hx[0][0], hx[1][0]], dim=-1) if self.kind == "lstm" else hx[0]

    def _state(self, state: torch.Tensor | None, x: torch.Tensor, n: int) -> torch.Tensor:
        return torch.zeros(n, self.state_size, device=x.device, dtype=x.dtype) if state is None else state

    def step(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One step: ``x [N, in]``, ``state [N, S]`` (None: zeros) -> ``(y [N, out], state [N, S])``."""
        if self.rnn is None:
            return x, state
        y, hx = self.rnn(x.unsqueeze(0), self._split(self._state(state, x, x.shape[0])))
        return y[0], self._join(hx)

    def unroll(
        self, x: torch.Tensor, state0: torch.Tensor | None, resets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [T, B, in]``, ``state0 [B, S]``, ``resets [T, B]`` bool -> ``(y [T, B, out], state_T)``.

        ``resets[t]`` zeroes the state of those columns before step ``t``. The time axis is cut where any
        column resets; each piece in between runs as one cuDNN-friendly call, which gives the same
        result as stepping one at a time.
        """
        if self.rnn is None:
            return x, state0
        steps = x.shape[0]
        state = self._state(state0, x, x.shape[1])
        cuts = torch.nonzero(resets.any(dim=1)).flatten().tolist()
        starts = sorted({0, *cuts})
        ys = []
        for t0, t1 in zip(starts, [*starts[1:], steps], strict=True):
            state = torch.where(resets[t0].unsqueeze(-1), torch.zeros_like(state), state)
            y, hx = self.rnn(x[t0:t1], self._split(state))
            ys.append(y)
            state = self._join(hx)
        return torch.cat(ys, dim=0), state
