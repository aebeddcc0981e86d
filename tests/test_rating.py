"""Elo-scale ratings fitted to game results (asyncrl.evaluation.rating)."""

import numpy as np
import pytest

from asyncrl.evaluation.rating import bootstrap_intervals, fit_ratings, match_score


def _games(true_ratings: dict[str, float], pairs, games_per_pair: int, rng) -> list[tuple[str, str, float]]:
    games = []
    for a, b in pairs:
        p_a = 1.0 / (1.0 + 10 ** ((true_ratings[b] - true_ratings[a]) / 400))
        games += [(a, b, float(rng.random() < p_a)) for _ in range(games_per_pair)]
    return games


def test_ratings_recover_the_strengths_that_generated_the_games():
    rng = np.random.default_rng(0)
    truth = {"bot": 0.0, "early": -300.0, "mid": -50.0, "late": 200.0}
    # Not a round robin: the early snapshot meets only the bot and the next snapshot, as rate.py schedules.
    pairs = [("early", "bot"), ("mid", "bot"), ("late", "bot"), ("early", "mid"), ("mid", "late")]
    fitted = fit_ratings(_games(truth, pairs, 2000, rng), anchor="bot", prior_draws=1.0)
    assert fitted["bot"] == 0.0
    for name, rating in truth.items():
        assert fitted[name] == pytest.approx(rating, abs=30), name
    assert fitted["early"] < fitted["mid"] < fitted["late"]


def test_a_player_that_never_scores_gets_a_finite_rating_far_below_and_draws_are_half_wins():
    games = [("snapshot", "bot", 0.0)] * 10
    rating = fit_ratings(games, anchor="bot", anchor_rating=1000.0)["snapshot"]
    # 10 losses and one virtual draw: 0.5 points of 11, so 400 log10(0.5 / 10.5) below the bot.
    assert rating == pytest.approx(1000.0 + 400 * np.log10(0.5 / 10.5), abs=0.01)
    even = fit_ratings([("a", "bot", 0.5)] * 6 + [("a", "bot", 1.0), ("a", "bot", 0.0)], anchor="bot")
    assert even["a"] == pytest.approx(0.0, abs=1e-6)


def test_bad_games_are_refused():
    with pytest.raises(ValueError, match="score in"):
        fit_ratings([("a", "bot", 2.0)], anchor="bot")
    with pytest.raises(ValueError, match="anchor 'bot' played no game"):
        fit_ratings([("a", "b", 1.0)], anchor="bot")


def test_match_score_reads_the_leader_gap():
    assert match_score({"final_place": 1.0, "leader_gap": -2.0}) == 1.0
    assert match_score({"final_place": 1.0, "leader_gap": 0.0}) == 0.5
    assert match_score({"final_place": 2.0, "leader_gap": 3.0}) == 0.0


def test_bootstrap_intervals_cover_the_truth_and_narrow_with_more_games():
    rng = np.random.default_rng(1)
    truth = {"bot": 0.0, "a": 150.0}
    widths = []
    for n in (20, 400):
        games = _games(truth, [("a", "bot")], n, rng)
        low, high = bootstrap_intervals(games, anchor="bot", resamples=100)["a"]
        assert low <= 150.0 <= high, (n, low, high)
        widths.append(high - low)
    assert widths[1] < widths[0] / 2
