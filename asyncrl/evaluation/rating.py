"""Elo-scale ratings of players from the results of their games (a Bradley-Terry model fitted to all games at
once, so the order the games were played in does not matter, unlike Elo's running updates).

A game is ``(a, b, score)`` with ``score`` player ``a``'s result: 1 win, 0.5 draw, 0 loss. Player ``i``
has strength ``g_i`` and beats ``j`` with probability ``g_i / (g_i + g_j)``; a draw counts half a win for
each. The rating is ``400 * log10(g_i / g_anchor) + anchor_rating``, so 400 points is 10:1 odds, as in chess.

Every player also gets ``prior_draws`` virtual draws against the anchor: without them a player that never
won (or never lost) has no finite maximum-likelihood rating. They pull a rating fitted from few games toward
the anchor's, and matter little once a player has played many more games than that.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

Game = tuple[str, str, float]


def match_score(stats: dict[str, float]) -> float:
    """Player 0's score in a 2-player match from its ``episode_stats``: 1 for strictly the most frags, 0.5 for
    a tie, 0 otherwise (``leader_gap`` is minus the lead for the winner, the deficit for the others)."""
    gap = stats["leader_gap"]
    return 1.0 if gap < 0 else 0.5 if gap == 0 else 0.0


def fit_ratings(games: Iterable[Game], anchor: str, anchor_rating: float = 0.0, prior_draws: float = 1.0,
                iterations: int = 10_000, tolerance: float = 1e-10) -> dict[str, float]:
    """Maximum a posteriori ratings of every player in ``games`` (Hunter's 2004 minorize-maximize updates)."""
    wins: dict[str, float] = defaultdict(float)  # points scored, draws as halves
    played: dict[tuple[str, str], float] = defaultdict(float)  # games between each pair, both orders
    for a, b, score in games:
        if not 0.0 <= score <= 1.0 or a == b:
            raise ValueError(f"game ({a!r}, {b!r}, {score!r}): expected two players and a score in [0, 1]")
        wins[a] += score
        wins[b] += 1.0 - score
        played[a, b] += 1.0
        played[b, a] += 1.0
    if anchor not in wins:
        raise ValueError(f"anchor {anchor!r} played no game")
    names = sorted(wins)
    for name in names:
        if name != anchor:  # a virtual draw is half a point each way
            wins[name] += prior_draws / 2
            wins[anchor] += prior_draws / 2
            played[name, anchor] += prior_draws
            played[anchor, name] += prior_draws
    index = {name: i for i, name in enumerate(names)}
    games_between = np.zeros((len(names), len(names)))
    for (a, b), n in played.items():
        games_between[index[a], index[b]] = n
    points = np.array([wins[name] for name in names])
    strength = np.ones(len(names))
    for _ in range(iterations):
        pair_sum = strength[:, None] + strength[None, :]
        updated = points / (games_between / pair_sum).sum(axis=1)
        updated /= updated[index[anchor]]
        if np.max(np.abs(np.log(updated) - np.log(strength))) < tolerance:
            strength = updated
            break
        strength = updated
    return {name: float(anchor_rating + 400.0 * np.log10(strength[index[name]])) for name in names}


def bootstrap_intervals(games: list[Game], anchor: str, resamples: int = 200, level: float = 0.9, seed: int = 0,
                        prior_draws: float = 1.0) -> dict[str, tuple[float, float]]:
    """Each rating's ``level`` interval from refitting on ``resamples`` resamplings of the games (with
    replacement): how far the ratings move when other games of the same number had been played."""
    rng = np.random.default_rng(seed)
    names = sorted({a for a, _, _ in games} | {b for _, b, _ in games})
    fits = {name: [] for name in names}
    for _ in range(resamples):
        sample = [games[i] for i in rng.integers(len(games), size=len(games))]
        fitted = fit_ratings(sample, anchor, prior_draws=prior_draws) if any(anchor in g[:2] for g in sample) else {}
        for name in names:
            if name in fitted:  # a player absent from a resample has no rating in it
                fits[name].append(fitted[name])
    tail = (1.0 - level) / 2 * 100
    return {name: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))) if v else (np.nan, np.nan)
            for name, v in fits.items()}
