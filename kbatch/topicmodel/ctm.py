"""A contextualized topic model: CombinedTM (Bianchi et al. 2021) in plain torch, for Dask workers.

CombinedTM is ProdLDA (Srivastava & Sutton 2017) whose encoder reads the bag of words
concatenated with a sentence embedding: the embedding carries meaning that short or rare
words alone do not, and the topics stay word distributions a reader can label.

Why not the ``contextualized-topic-models`` package: it trains through a ``DataLoader``
that by default starts one worker process per CPU, imports plotting libraries, and
returns sampled thetas. Inside a Dask worker the model must stay in its own process,
be deterministic for a seed and pickle small, so the same network is written here with
batches cut by index slicing. The network follows the package's defaults: two softplus
layers, batch norm on the posterior and on the decoder logits, dropout on the encoder
output and on theta, learned logistic-normal prior started at the Laplace approximation
of Dirichlet(1), Adam with betas (0.99, 0.99).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F
from torch import nn

from kbatch.errors import InputError

# Documents per transform batch: the dense BoW batch is 1,024 × vocabulary floats, 78 MiB for 20,000 words.
TRANSFORM_ROWS = 1024
# The CTM package's Adam betas: its ``momentum=0.99`` is the first-moment decay, and it fixes the second at 0.99.
ADAM_BETAS = (0.99, 0.99)


@dataclass(frozen=True)
class CTMSettings:
    """Training settings; defaults are CombinedTM's except a larger batch and fewer epochs, for speed on CPUs."""

    n_topics: int
    epochs: int = 50
    batch_size: int = 256
    hidden: int = 100
    dropout: float = 0.2
    learning_rate: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_topics < 2:
            raise InputError(f"a topic model needs n_topics >= 2, got {self.n_topics}")
        if self.epochs < 1 or self.batch_size < 2 or self.hidden < 1:
            raise InputError(f"epochs and hidden must be >= 1 and batch_size >= 2, got {self.epochs}, {self.hidden}, {self.batch_size}")
        if not 0 <= self.dropout < 1 or self.learning_rate <= 0:
            raise InputError(f"dropout must be in [0, 1) and learning_rate > 0, got {self.dropout}, {self.learning_rate}")


class _Network(nn.Module):
    """Encoder q(z | bow, embedding) and the ProdLDA decoder softmax(batchnorm(theta @ beta))."""

    def __init__(self, vocab_size: int, embedding_size: int, settings: CTMSettings) -> None:
        super().__init__()
        k, hidden = settings.n_topics, settings.hidden
        self.adapt_embedding = nn.Linear(embedding_size, vocab_size)
        self.input_layer = nn.Linear(2 * vocab_size, hidden)
        self.hidden_layer = nn.Linear(hidden, hidden)
        self.encoder_dropout = nn.Dropout(settings.dropout)
        self.f_mu = nn.Linear(hidden, k)
        self.f_log_var = nn.Linear(hidden, k)
        self.mu_norm = nn.BatchNorm1d(k, affine=False)
        self.log_var_norm = nn.BatchNorm1d(k, affine=False)
        # Laplace approximation of a symmetric Dirichlet(1) in the softmax basis: mean 0, variance 1 - 1/K.
        self.prior_mean = nn.Parameter(torch.zeros(k))
        self.prior_variance = nn.Parameter(torch.full((k,), 1.0 - 1.0 / k))
        self.theta_dropout = nn.Dropout(settings.dropout)
        self.beta = nn.Parameter(nn.init.xavier_uniform_(torch.empty(k, vocab_size)))
        self.beta_norm = nn.BatchNorm1d(vocab_size, affine=False)

    def folded_input(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """BoW weight, embedding weight and bias of ``input_layer(cat(bow, adapt_embedding(e)))``.

        The adapter folds into one hidden × embedding matrix: the same function and gradients,
        without the batch × vocabulary product, and transform keeps only the folded matrix.
        """
        vocab = self.beta.shape[1]
        w_bow, w_embedding = self.input_layer.weight[:, :vocab], self.input_layer.weight[:, vocab:]
        bias = torch.addmv(self.input_layer.bias, w_embedding, self.adapt_embedding.bias)
        return w_bow, w_embedding @ self.adapt_embedding.weight, bias

    def encode(self, bow: torch.Tensor, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log variance of the logistic-normal topic proportions."""
        w_bow, w_embedding, bias = self.folded_input()
        h = F.softplus(F.linear(bow, w_bow) + F.linear(embeddings, w_embedding, bias))
        h = self.encoder_dropout(F.softplus(self.hidden_layer(h)))
        return self.mu_norm(self.f_mu(h)), self.log_var_norm(self.f_log_var(h))

    def loss(self, bow: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """Negative ELBO summed over the batch: BoW reconstruction plus KL to the prior."""
        mu, log_var = self.encode(bow, embeddings)
        theta = self.theta_dropout(F.softmax(mu + torch.randn_like(mu) * torch.exp(0.5 * log_var), dim=1))
        log_words = F.log_softmax(self.beta_norm(theta @ self.beta), dim=1)
        reconstruction = -(bow * log_words).sum(dim=1)
        prior_variance = self.prior_variance
        kl = 0.5 * (
            (log_var.exp() / prior_variance).sum(dim=1)
            + ((self.prior_mean - mu) ** 2 / prior_variance).sum(dim=1)
            - mu.shape[1]
            + prior_variance.log().sum()
            - log_var.sum(dim=1)
        )
        return (reconstruction + kl).sum()


class _Posterior(nn.Module):
    """The trained network's posterior mean and topics, without the adapter (vocabulary × embedding) or the training-only parts.

    Kept instead of the whole network so the pickle Dask ships is a fraction of it: for 20,000
    words, 384 dimensions and 100 hidden units, 2.0 M input weights instead of 11.7 M (adapter and input layer).
    """

    def __init__(self, network: _Network) -> None:
        super().__init__()
        # Copies, not views: a pickled view would carry the whole training weight it slices.
        w_bow, w_embedding, bias = (tensor.detach().clone(memory_format=torch.contiguous_format) for tensor in network.folded_input())
        self.bow_weight = nn.Parameter(w_bow, requires_grad=False)
        self.embedding_weight = nn.Parameter(w_embedding, requires_grad=False)
        self.input_bias = nn.Parameter(bias, requires_grad=False)
        self.hidden_layer = network.hidden_layer
        self.f_mu = network.f_mu
        self.mu_norm = network.mu_norm
        self.beta = network.beta
        self.requires_grad_(False)
        self.eval()

    def forward(self, bow: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """Posterior mean of the topic logits (eval mode: no dropout, batch norm with its running statistics)."""
        h = F.softplus(F.linear(bow, self.bow_weight) + F.linear(embeddings, self.embedding_weight, self.input_bias))
        return self.mu_norm(self.f_mu(F.softplus(self.hidden_layer(h))))


class CombinedTM:
    """A fitted CombinedTM: small to pickle (inference weights only, on CPU), so Dask can ship it to workers."""

    def __init__(self, posterior: _Posterior, settings: CTMSettings) -> None:
        self._posterior = posterior
        self.settings = settings

    @classmethod
    def fit(cls, bow: scipy.sparse.csr_matrix, embeddings: np.ndarray, settings: CTMSettings) -> CombinedTM:
        """Train on word counts (documents × vocabulary) and their sentence embeddings, in this thread."""
        bow, embeddings = _checked(bow, embeddings)
        n_docs, vocab_size = bow.shape
        if vocab_size < 2:
            raise InputError(f"a topic model needs a vocabulary of >= 2 words, got {vocab_size}")
        if n_docs < 2:
            raise InputError(f"a topic model needs >= 2 documents (batch norm), got {n_docs}")
        context = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
        shuffle = np.random.default_rng(settings.seed)
        # Equal batches (sizes differ by one at most), so no trailing batch of one breaks batch norm.
        n_batches = -(-n_docs // settings.batch_size)
        # A private RNG stream: the seed fixes the result without touching the caller's torch RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            network = _Network(vocab_size, embeddings.shape[1], settings)
            # fused: one kernel per step instead of a dozen passes over the weights (several times faster on CPU).
            optimizer = torch.optim.Adam(network.parameters(), lr=settings.learning_rate, betas=ADAM_BETAS, fused=True)
            network.train()
            for _ in range(settings.epochs):
                for rows in np.array_split(shuffle.permutation(n_docs), n_batches):
                    loss = network.loss(_dense(bow[rows]), context[rows])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
        network.zero_grad(set_to_none=True)
        return cls(_Posterior(network), settings)

    @property
    def n_topics(self) -> int:
        return self._posterior.beta.shape[0]

    @property
    def vocabulary_size(self) -> int:
        return self._posterior.beta.shape[1]

    def transform(self, bow: scipy.sparse.csr_matrix, embeddings: np.ndarray) -> np.ndarray:
        """Topic proportions per document (rows sum to 1): softmax of the posterior mean, so the same input gives the same theta."""
        bow, embeddings = _checked(bow, embeddings)
        if bow.shape[1] != self.vocabulary_size:
            raise InputError(f"the BoW has {bow.shape[1]} columns but the model was fitted on {self.vocabulary_size} words")
        expected = self._posterior.embedding_weight.shape[1]
        if embeddings.shape[1] != expected:
            raise InputError(f"the embeddings have {embeddings.shape[1]} dimensions but the model was fitted on {expected}")
        theta = np.empty((bow.shape[0], self.n_topics), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, bow.shape[0], TRANSFORM_ROWS):
                stop = start + TRANSFORM_ROWS
                context = torch.from_numpy(np.ascontiguousarray(embeddings[start:stop], dtype=np.float32))
                theta[start:stop] = F.softmax(self._posterior(_dense(bow[start:stop]), context), dim=1).numpy()
        return theta

    def topic_word_weights(self) -> np.ndarray:
        """Beta (topics × vocabulary), the decoder's unnormalized topic-word weights."""
        return self._posterior.beta.detach().numpy().copy()

    def top_words(self, vocabulary: Sequence[str], n: int) -> list[tuple[list[str], list[float]]]:
        """Per topic, its ``n`` most likely words and their softmax(beta) probabilities, best first."""
        if len(vocabulary) != self.vocabulary_size:
            raise InputError(f"the vocabulary has {len(vocabulary)} words but the model was fitted on {self.vocabulary_size}")
        if n < 1:
            raise InputError(f"top_words needs n >= 1, got {n}")
        probabilities = torch.softmax(self._posterior.beta.detach(), dim=1)
        values, indices = torch.topk(probabilities, min(n, self.vocabulary_size), dim=1)
        return [
            ([vocabulary[i] for i in topic_indices], topic_values)
            for topic_indices, topic_values in zip(indices.tolist(), values.tolist(), strict=True)
        ]


def _checked(bow: scipy.sparse.csr_matrix, embeddings: np.ndarray) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """The BoW as float32 CSR and the embeddings as a 2-D array with as many rows, else a one-line InputError."""
    if not scipy.sparse.issparse(bow) or bow.ndim != 2:
        raise InputError(f"the BoW must be a 2-D scipy sparse matrix, got {type(bow).__name__}")
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2:
        raise InputError(f"the embeddings must be a 2-D array, got shape {embeddings.shape}")
    if bow.shape[0] != embeddings.shape[0]:
        raise InputError(f"the BoW has {bow.shape[0]} rows but the embeddings have {embeddings.shape[0]}")
    return scipy.sparse.csr_matrix(bow, dtype=np.float32), embeddings


def _dense(rows: scipy.sparse.csr_matrix) -> torch.Tensor:
    """One batch of the sparse BoW as a dense float32 tensor: only a batch is ever dense."""
    return torch.from_numpy(rows.toarray())
