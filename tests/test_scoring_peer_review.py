"""Circle review, peer review: reviewers on 127.0.0.1 speaking the chat-completions protocol, some badly."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chemactor.errors import ConfigError
from chemactor.generation.backends import endpoint_backends
from chemactor.scoring.review import Review, parse_review, peer_review

REFERENCES = ["ADD water; STIR for 2 h; FILTER.", "ADD THF; ADD NaH; CONCENTRATE."]
PREDICTIONS = [REFERENCES[0], "ADD THF; CONCENTRATE."]


def _prompt(payload: dict) -> str:
    return payload["messages"][-1]["content"]


def exact_reviewer(kind: str, payload: dict) -> str:
    """Scores 1 when the output is the reference, else 0.2; keeps its score in the debate."""
    prompt = _prompt(payload)
    score = 1.0 if "Model output:\nADD water; STIR for 2 h; FILTER." in prompt else 0.2
    return json.dumps({"score": score, "rationale": "same steps" if score == 1.0 else "NaH is missing"})


def chatty_reviewer(kind: str, payload: dict) -> str:
    """Wraps JSON in prose and a code fence; in the debate answers in prose only."""
    if "The other reviewers:" in _prompt(payload):
        return "After reading the others I lower my view. Score: 0.6"
    return 'Here is my review:\n```json\n{"score": 0.8, "rationale": "close {enough}"}\n```\nHope it helps!'


def confused_reviewer(kind: str, payload: dict) -> str:
    """No score at first, then a score on a 0-10 scale."""
    if "The other reviewers:" in _prompt(payload):
        return '{"score": 8, "rationale": "eight out of ten"}'
    return "Looks right to me."


@pytest.fixture
def reviewers(tgi_server):
    return {
        "exact": tgi_server(exact_reviewer, script=["500", "drop"]),  # retried by the endpoint backend
        "chatty": tgi_server(chatty_reviewer),
        "confused": tgi_server(confused_reviewer),
    }


def _reviewers(servers: dict) -> dict:
    return endpoint_backends([{"url": s.url, "name": name, "backoff": 0.01} for name, s in servers.items()], api="chat")


def test_review_and_debate(reviewers):
    result = peer_review(PREDICTIONS, REFERENCES, _reviewers(reviewers), debate_rounds=1)

    first, debate = result["rounds"]
    assert first["reviewer_scores"] == {"exact": pytest.approx(0.6), "chatty": 0.8, "confused": None}
    assert first["sample_consensus"] == pytest.approx([0.9, 0.5])
    assert first["consensus"] == pytest.approx(0.7)
    assert first["agreement"] == pytest.approx(1 - (0.2 + 0.6) / 2)
    assert first["unparsable_by_reviewer"] == {"exact": 0, "chatty": 0, "confused": 2}

    assert debate["reviewer_scores"] == {"exact": pytest.approx(0.6), "chatty": 0.6, "confused": None}
    assert debate["consensus"] == pytest.approx((0.8 + 0.4) / 2)
    assert debate["agreement"] == pytest.approx(0.6)
    assert result["consensus"] == debate["consensus"]
    assert result["unparsable"] == 4
    confused = result["reviews"]["confused"]
    assert confused[0][0]["problem"].startswith("no score in answer 'Looks right to me.'")
    assert confused[1][0]["problem"] == "score 8 outside [0, 1]"
    assert result["reviews"]["chatty"][0][1]["rationale"] == "close {enough}"


def test_debate_prompts_show_the_other_readable_reviews(reviewers):
    peer_review(PREDICTIONS[:1], REFERENCES[:1], _reviewers(reviewers), debate_rounds=1)
    debate_prompt = _prompt(reviewers["exact"].payloads[-1])
    assert "Your previous review: score 1.0: same steps" in debate_prompt
    assert "- score 0.8: close {enough}" in debate_prompt
    assert "Looks right" not in debate_prompt  # the unreadable answer is not passed on
    assert "Your previous review: none could be read" in _prompt(reviewers["confused"].payloads[-1])


def test_failed_requests_are_counted_not_dropped(tgi_server):
    broken = tgi_server(exact_reviewer, faults={"422": 1.0})
    working = tgi_server(exact_reviewer)
    reviewers = endpoint_backends([broken.url, working.url], api="chat")
    result = peer_review(PREDICTIONS, REFERENCES, reviewers, debate_rounds=0)
    (only,) = result["rounds"]
    assert only["unparsable_by_reviewer"] == {broken.url: 2, working.url: 0}
    assert result["reviews"][broken.url][0][0]["problem"].startswith("request failed (validation)")
    assert result["consensus"] == pytest.approx(0.6)
    assert result["agreement"] is None  # no pair of reviewers both answered


def test_unknown_prompt_version_is_named():
    with pytest.raises(ConfigError, match=r"unknown prompt 'peer_review-v9' \(did you mean 'peer_review-v1'\?\)"):
        peer_review(PREDICTIONS, REFERENCES, endpoint_backends(["http://127.0.0.1:1"]), prompt_version="v9")


def test_reviewer_names_must_be_distinct():
    with pytest.raises(ValueError, match="two endpoints are named"):
        endpoint_backends(["http://127.0.0.1:1", "http://127.0.0.1:1"])
    with pytest.raises(ValueError, match="no endpoint given"):
        endpoint_backends([])
    with pytest.raises(ValueError, match="at least one reviewer"):
        peer_review(PREDICTIONS, REFERENCES, {})


@pytest.mark.parametrize(
    ("answer", "review"),
    [
        ('{"score": 0.25, "rationale": "wrong amount"}', Review(0.25, "wrong amount")),
        ('Sure. {"note": 1} then {"score": "1", "rationale": "ok"}', Review(1.0, "ok")),
        ("SCORE = 0.5", Review(0.5, "SCORE = 0.5")),
        ('{"score": -0.1}', Review(None, "", "score -0.1 outside [0, 1]")),
        ('{"score": NaN}', Review(None, problem="no score in answer '{\"score\": NaN}'")),
        (
            "__import__('os').system('true')",
            Review(None, problem="no score in answer \"__import__('os').system('true')\""),
        ),
    ],
)
def test_parse_review(answer, review):
    assert parse_review(answer) == review


@given(
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.text(max_size=60),
    st.text(max_size=40),
    st.text(max_size=40),
)
def test_any_wrapped_json_answer_is_read(score, rationale, before, after):
    answer = f"{before.replace('{', '')}\n{json.dumps({'score': score, 'rationale': rationale})}\n{after}"
    assert parse_review(answer) == Review(score, rationale.strip())


@given(st.text(max_size=200))
def test_any_text_is_read_or_reported(text):
    review = parse_review(text)
    assert (review.score is None) == (review.problem is not None)
    assert review.score is None or 0.0 <= review.score <= 1.0
