"""SASRec-style sequence model (Kang & McAuley 2018): a small causal transformer over each customer's purchase
sequence predicts the next product. PyTorch; trains on CPU at CI scale and on a GPU when one is present."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from features.i18n import message
from models.recommenders.base import Recommender, RecommenderParams
from models.recommenders.data import TrainingData

PAD = 0  # item index 0 is padding; product i is token i + 1


class SASRecParams(RecommenderParams):
    """Hyperparameters of :class:`SASRec`.

    Attributes
    ----------
    dim
        Embedding and hidden size.
    blocks, heads
        Transformer layers and attention heads per layer.
    dropout
        Dropout on embeddings and inside the layers.
    max_len
        Most recent purchases per sequence (longer histories are cut to their latest part).
    epochs, batch_size, learning_rate, weight_decay
        Adam training settings.
    full_softmax_max_items
        Up to this many products the loss is the full softmax over the catalogue; above it, a sampled softmax
        over ``negatives`` products shared by the batch (memory grows with batch x length x catalogue).
    negatives
        Sampled negatives of the sampled softmax.
    device
        ``auto`` (a GPU when present), ``cpu`` or ``cuda``.
    threads
        CPU threads of torch while fitting and scoring (0: torch's default). Small models gain nothing from
        more, and OpenMP's busy waiting makes them many times slower on a busy machine.
    """

    dim: int = Field(64, ge=2)
    blocks: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    max_len: int = Field(50, ge=2)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    full_softmax_max_items: int = 20_000
    negatives: int = 2_000
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 1


class _Network(nn.Module):
    """Item + position embeddings, causal transformer blocks, scores tied to the item embeddings."""

    def __init__(self, n_tokens: int, p: SASRecParams):
        super().__init__()
        self.items = nn.Embedding(n_tokens, p.dim, padding_idx=PAD)
        self.positions = nn.Embedding(p.max_len, p.dim)
        self.dropout = nn.Dropout(p.dropout)
        layer = nn.TransformerEncoderLayer(p.dim, p.heads, dim_feedforward=p.dim, dropout=p.dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, p.blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(p.dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Hidden state after every position of left-padded sequences (batch, length, dim)."""
        length = tokens.shape[1]
        positions = torch.arange(length, device=tokens.device)
        real = (tokens != PAD).unsqueeze(-1)
        hidden = self.items(tokens) * (self.items.embedding_dim ** 0.5) + self.positions(positions)[None]
        # As in the paper, padding is zeroed rather than masked out of attention: a fully masked row (a padded
        # position) would give NaN, and the causal mask alone keeps every row attending to something.
        hidden = self.dropout(hidden) * real
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=tokens.device), diagonal=1)
        hidden = self.encoder(hidden, mask=causal)
        return self.norm(hidden) * real


class SASRec(Recommender):
    """Next-purchase prediction from the order of a customer's purchases."""

    name = "sasrec"
    Params = SASRecParams
    default_reason = message("rec.recent_purchases")

    def _device(self) -> torch.device:
        if self.params.device == "cuda" or (self.params.device == "auto" and torch.cuda.is_available()):
            return torch.device("cuda")
        return torch.device("cpu")

    def _fit(self, data: TrainingData) -> None:
        with _torch_threads(self.params.threads):
            self._train(data)

    def _train(self, data: TrainingData) -> None:
        p = self.params
        self.sequences_ = _sequences(data, p.max_len)
        torch.manual_seed(p.random_state)
        rng = np.random.default_rng(p.random_state)
        device = self._device()
        self.network_ = _Network(data.n_items + 1, p).to(device)
        optimiser = torch.optim.Adam(self.network_.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
        train = self.sequences_[(self.sequences_ != PAD).sum(axis=1) >= 2]
        full = data.n_items <= p.full_softmax_max_items
        self.network_.train()
        for _ in range(p.epochs):
            order = rng.permutation(len(train))
            for begin in range(0, len(order), p.batch_size):
                batch = torch.as_tensor(train[order[begin:begin + p.batch_size]], device=device)
                inputs, targets = batch[:, :-1], batch[:, 1:]
                keep = (targets != PAD) & (inputs != PAD)
                hidden = self.network_(inputs)[keep]
                target = targets[keep]
                if full:
                    logits = hidden @ self.network_.items.weight.T
                    logits[:, PAD] = -torch.inf
                    loss = nn.functional.cross_entropy(logits, target)
                else:
                    sampled = torch.as_tensor(rng.integers(1, data.n_items + 1, p.negatives), device=device)
                    positive = (hidden * self.network_.items(target)).sum(dim=1, keepdim=True)
                    negative = hidden @ self.network_.items(sampled).T
                    negative = negative.masked_fill(sampled[None, :] == target[:, None], -torch.inf)
                    logits = torch.cat([positive, negative], dim=1)
                    loss = nn.functional.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long,
                                                                           device=device))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        self.network_.eval()

    @torch.no_grad()
    def _forward_last(self, sequences: np.ndarray) -> np.ndarray:
        with _torch_threads(self.params.threads):
            return self._forward(sequences)

    def _forward(self, sequences: np.ndarray) -> np.ndarray:
        device = self._device()
        self.network_.to(device).eval()
        out = np.empty((len(sequences), self.catalog_.size), dtype=np.float32)
        weight = self.network_.items.weight
        for begin in range(0, len(sequences), self.params.batch_size):
            tokens = torch.as_tensor(sequences[begin:begin + self.params.batch_size], device=device)
            hidden = self.network_(tokens)[:, -1]
            out[begin:begin + len(tokens)] = (hidden @ weight[1:].T).float().cpu().numpy()
        empty = (sequences == PAD).all(axis=1)
        out[empty] = -np.inf
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._forward_last(self.sequences_[users])

    def _score_history(self, rows: sp.csr_matrix) -> np.ndarray:
        # A request's events have no order we can trust; the strongest go last (closest to the prediction).
        rows = sp.csr_matrix(rows)
        sequences = np.zeros((rows.shape[0], self.params.max_len), dtype=np.int64)
        for r in range(rows.shape[0]):
            items = rows.indices[rows.indptr[r]:rows.indptr[r + 1]]
            weights = rows.data[rows.indptr[r]:rows.indptr[r + 1]]
            items = items[np.argsort(weights, kind="stable")][-self.params.max_len:] + 1
            if len(items):
                sequences[r, -len(items):] = items
        return self._forward_last(sequences)

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            weight = self.network_.items.weight[1:].detach().float().cpu().numpy()
        normed = weight / np.maximum(np.linalg.norm(weight, axis=1, keepdims=True), np.finfo(np.float32).tiny)
        return normed[items] @ normed.T

    def _explain(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        last = self.sequences_[users, -1] - 1
        names = self.catalog_.names
        text = np.array([message("rec.bought_after", product=names[i]) if i >= 0 else self.default_reason for i in last],
                        dtype=object)
        return np.where(items >= 0, text[:, None], "").astype(object)

    def _state(self) -> dict[str, np.ndarray]:
        weights = {f"net_{k}": v.detach().cpu().numpy() for k, v in self.network_.state_dict().items()}
        return {"sequences": self.sequences_, **weights}

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        self.sequences_ = state["sequences"]
        self.network_ = _Network(self.catalog_.size + 1, self.params)
        weights = {k[len("net_"):]: torch.as_tensor(v) for k, v in state.items() if k.startswith("net_")}
        self.network_.load_state_dict(weights)
        self.network_.to(self._device()).eval()


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Torch's CPU threads set for a block and restored after it (the setting is process-wide)."""
    if not threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sequences(data: TrainingData, max_len: int) -> np.ndarray:
    """Each customer's latest ``max_len`` distinct products per order in time order, left-padded with 0
    (customers x max_len tokens; product i is token i + 1)."""
    log = data.log
    frame = pd.DataFrame({"u": log.user, "o": log.order, "i": log.item})
    # Lines of one order repeat a product now and then; the order of lines inside an order carries no meaning
    # beyond the log's, so the first line of each product in the order is kept.
    frame = frame.drop_duplicates(["u", "o", "i"])
    frame["pos"] = frame.groupby("u").cumcount(ascending=False)  # 0 = latest
    frame = frame[frame["pos"] < max_len]
    sequences = np.zeros((data.n_users, max_len), dtype=np.int64)
    sequences[frame["u"].to_numpy(), max_len - 1 - frame["pos"].to_numpy()] = frame["i"].to_numpy() + 1
    return sequences
