"""Questions to quoted, cited passages, or an honest abstention."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Engine, select

from index.answerability import (
    ANSWERABILITY_DEPTH,
    ARTICLE_FEATURES,
    DEFAULT_MIN_COSINE,
    DEFAULT_MIN_COVERAGE,
    DEFAULT_MIN_SCORE,
    DEFAULT_MODEL,
    FLOOR_FEATURES,
    FOCUS_FEATURES,
    AnswerabilityModel,
    Evidence,
    below_floors,
    features,
)
from index.lexical import QUESTION_WORDS, tokenize
from index.quote_widening import QUOTE_CHARS, Surroundings, widen
from index.search import Hit, Retriever, SearchFilters
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.models import Passage
from ingest.split import split_sentences
from ingest.store import PassageRecord, passages_beside, passages_by_id

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
DEFAULT_K = 3
# A quote after the first is shown only when it is itself relevant: its ranking score at
# least SAME_ARTICLE_BAR of the first quote's when its article is already quoted (the same
# story), NEW_ARTICLE_BAR when it would bring in another article, and MIN_QUOTE_SCORE in any
# case. Fitted on natural and RealTime QA dev questions (bench/tune_bars.py): what is left
# below the bars is mostly filler from unrelated stories.
SAME_ARTICLE_BAR = 0.0
NEW_ARTICLE_BAR = 0.7
MIN_QUOTE_SCORE = 0.03


@dataclass(frozen=True)
class QuoteBars:
    """How relevant a quote after the first must be to be shown (see ``SAME_ARTICLE_BAR``)."""

    same_article: float = SAME_ARTICLE_BAR
    new_article: float = NEW_ARTICLE_BAR
    min_score: float = MIN_QUOTE_SCORE


NO_BARS = QuoteBars(0.0, 0.0, 0.0)
CANDIDATES_PER_ANSWER = 8
# Each passage already quoted from an article scales that article's next ones by this factor:
# the ranking score is probability-like, so the penalty must be relative, not a fixed amount.
SAME_ARTICLE_FACTOR = 0.5
NEAR_DUPLICATE = 0.6  # share of word trigrams of the shorter text
MIN_REPEAT_SHINGLES = 4
WORD = re.compile(r"[\w'’-]+")
# A follow-up's own words outweigh the earlier question's in choosing the highlight: any
# one of them beats all of a sentence's matches with the earlier question, as a rule.
FOCUS_WEIGHT = 10.0


@dataclass(frozen=True)
class Quote:
    """A stored passage, verbatim, with its citation and the sentence that best answers."""

    passage_id: int
    text: str
    title: str
    source: str
    url: str | None
    published_at: datetime | None
    score: float
    highlight: str
    similarity: float = 0.0  # cosine to the question, what abstention is judged on
    coverage: float = 0.0  # idf-weighted share of the question's words, the other judge

    def as_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "score": round(self.score, 4),
            "passage_id": self.passage_id,
        }


@dataclass
class Answer:
    question: str
    abstained: bool
    passages: list[Quote]
    searched: int
    closest: list[Quote] = field(default_factory=list)
    more: list[Quote] = field(default_factory=list)
    answerability: float = 0.0  # the model's probability that the passages answer
    signals: dict[str, float] = field(default_factory=dict)  # what it was computed from

    def as_json(self) -> dict[str, object]:
        return {
            "question": self.question,
            "abstained": self.abstained,
            "passages": [q.as_json() for q in self.passages],
        }


class EmptyQuestion(InputError):
    def __init__(self) -> None:
        super().__init__("the question is empty")


class QuestionTooLong(InputError):
    def __init__(self, length: int, limit: int) -> None:
        self.length, self.limit = length, limit
        super().__init__(f"the question is too long ({length} characters; at most {limit})")


def validate_question(question: str, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """The question with its whitespace tidied, or :class:`EmptyQuestion` or
    :class:`QuestionTooLong` (which the bot words for members)."""
    cleaned = " ".join(question.split())
    if not cleaned:
        raise EmptyQuestion()
    if len(cleaned) > max_chars:
        raise QuestionTooLong(len(cleaned), max_chars)
    return cleaned


class Answerer:
    """Retrieval plus the SQL lookups that turn passage ids into citable quotes."""

    def __init__(
        self,
        engine: Engine,
        retriever: Retriever,
        min_score: float = DEFAULT_MIN_SCORE,
        quote_chars: int | None = QUOTE_CHARS,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
        bars: QuoteBars = QuoteBars(),
        model: AnswerabilityModel = DEFAULT_MODEL,
        all_signals: bool = False,
        min_cosine: float = DEFAULT_MIN_COSINE,
    ) -> None:
        self.engine = engine
        self.model = model
        self.all_signals = all_signals  # compute every feature, not only the model's (tuning)
        self.retriever = retriever
        self.min_score = min_score
        self.min_coverage = min_coverage
        self.min_cosine = min_cosine
        self.bars = bars
        self.quote_chars = quote_chars  # None: quote the ranked passage alone

    def answer(
        self,
        question: str,
        k: int = DEFAULT_K,
        filters: SearchFilters | None = None,
        extra: int = 0,
        focus: str | None = None,
        exclude: Collection[int] = (),
    ) -> Answer:
        """The top ``k`` passages (plus ``extra`` more for paging), best first, or an abstention.

        ``focus``: the part of a longer search the member asked last (a follow-up read with
        the question before it); each quote's highlight favours its words. ``exclude``:
        passage ids never to quote (what the conversation already showed).
        """
        question = validate_question(question)
        if k < 1:
            raise InputError("k must be at least 1")
        filters = filters or SearchFilters()
        wanted = k + extra
        depth = max(wanted * 3, CANDIDATES_PER_ANSWER) + len(exclude)
        hits = [
            hit
            for hit in self.retriever.search(question, depth, filters)
            if hit.passage_id not in exclude
        ]
        searched = self.retriever.searchable_count(filters)
        records = self._records(hits)
        quotes = [
            self._quote(hit, records[hit.passage_id]) for hit in hits if hit.passage_id in records
        ]
        ranked = diversify(
            quotes, [records[q.passage_id] for q in quotes], max(wanted, ANSWERABILITY_DEPTH)
        )
        signals = self._signals(question, ranked, records) if ranked else {}
        probability = self.model.probability(signals) if signals else 0.0
        if not signals or not self._answers(signals, probability):
            closest = [
                replace(q, highlight=best_sentence(question, q.text, focus)) for q in ranked[:k]
            ]
            return Answer(question, True, [], searched, closest, [], probability, signals)
        relevant = related(ranked, [records[q.passage_id] for q in ranked], self.bars)
        chosen = self._in_context(question, relevant[:wanted], records)
        # Highlighting only what is shown keeps a 30-candidate answer within its time budget.
        chosen = [replace(q, highlight=best_sentence(question, q.text, focus)) for q in chosen]
        return Answer(question, False, chosen[:k], searched, [], chosen[k:], probability, signals)

    def answers(
        self, question: str, ranked: list[Quote], records: dict[int, PassageRecord]
    ) -> bool:
        """Whether these ranked passages probably answer ``question`` (how a follow judges
        each new story on its own)."""
        if not ranked:
            return False
        signals = self._signals(question, ranked, records)
        return self._answers(signals, self.model.probability(signals))

    def _answers(self, signals: dict[str, float], probability: float) -> bool:
        """Whether the best passages probably answer: answerability, and the floors."""
        floors = below_floors(signals, self.min_coverage, self.min_cosine)
        return not floors and probability >= self.min_score

    def _signals(
        self, question: str, ranked: list[Quote], records: dict[int, PassageRecord]
    ) -> dict[str, float]:
        """The answerability model's features of these ranked passages."""
        top = records[ranked[0].passage_id]
        names = None if self.all_signals else set(self.model.weights) | FLOOR_FEATURES
        article: list[str] = []
        if names is None or names & ARTICLE_FEATURES:
            with session_scope(self.engine) as session:
                article = list(
                    session.scalars(
                        select(Passage.text)
                        .where(Passage.article_id == top.article_id)
                        .order_by(Passage.position)
                    )
                )
        return features(
            Evidence(
                question=question,
                scores=[q.score for q in ranked],
                similarities=[q.similarity for q in ranked],
                coverages=[q.coverage for q in ranked],
                texts=[q.text for q in ranked],
                top_title=top.title,
                top_article=article,
                word_weights=(
                    self.retriever.word_weights(question)
                    if names is None or names & FOCUS_FEATURES
                    else {}
                ),
                # An embedder without token states (a test's word model): exact words.
                token_states=getattr(self.retriever.embedder, "token_states", None),
            ),
            names,
        )

    def _records(self, hits: list[Hit]) -> dict[int, PassageRecord]:
        with session_scope(self.engine) as session:
            return passages_by_id(session, [h.passage_id for h in hits])

    def _in_context(
        self, question: str, chosen: list[Quote], records: dict[int, PassageRecord]
    ) -> list[Quote]:
        """Each quote widened with its neighbours' sentences; no text is quoted twice."""
        if self.quote_chars is None or not chosen:
            return chosen
        places = [
            (records[q.passage_id].article_id, records[q.passage_id].position) for q in chosen
        ]
        with session_scope(self.engine) as session:
            beside = passages_beside(session, places)
        used = set(places)
        shown = [_shingles(quote.text) for quote in chosen]

        def shown_elsewhere(sentence: str) -> bool:
            mine = _shingles(sentence)
            # A sentence of a few words ("He declined to comment.") repeats by chance.
            return len(mine) >= MIN_REPEAT_SHINGLES and any(
                _overlap(mine, other) >= NEAR_DUPLICATE for other in shown
            )

        widened: list[Quote] = []
        for number, (quote, (article, position)) in enumerate(zip(chosen, places, strict=True)):
            before, after = (article, position - 1), (article, position + 1)
            around = Surroundings(
                None if before in used else beside.get(before),
                None if after in used else beside.get(after),
            )
            text = widen(question, quote.text, around, self.quote_chars, shown_elsewhere)
            # A neighbour quoted (even in part) here is not offered to a later quote.
            if not text.startswith(quote.text):
                used.add(before)
            if not text.endswith(quote.text):
                used.add(after)
            shown[number] = _shingles(text)
            widened.append(replace(quote, text=text))
        return widened

    @staticmethod
    def _quote(hit: Hit, record: PassageRecord) -> Quote:
        return Quote(
            passage_id=record.passage_id,
            text=record.text,
            title=record.title,
            source=record.outlet,
            url=record.url,
            published_at=record.published_at,
            score=hit.score,
            highlight="",
            similarity=hit.similarity,
            coverage=hit.coverage,
        )


def related(
    ranked: list[Quote], records: list[PassageRecord], bars: QuoteBars = QuoteBars()
) -> list[Quote]:
    """The first quote, then each later one that clears its bar (see ``SAME_ARTICLE_BAR``)."""
    kept = related_indices([q.score for q in ranked], [r.article_id for r in records], bars)
    return [ranked[i] for i in kept]


def related_indices(
    scores: Sequence[float], article_ids: Sequence[int], bars: QuoteBars = QuoteBars()
) -> list[int]:
    """Which of these ranked quotes (by score and article) :func:`related` keeps."""
    if not scores:
        return []
    kept = [0]
    quoted = {article_ids[0]}
    for i in range(1, len(scores)):
        bar = bars.same_article if article_ids[i] in quoted else bars.new_article
        if scores[i] >= max(bars.min_score, bar * scores[0]):
            kept.append(i)
            quoted.add(article_ids[i])
    return kept


def diversify(quotes: list[Quote], records: list[PassageRecord], wanted: int) -> list[Quote]:
    """Best first, without near-duplicate texts, preferring articles not quoted yet.

    A further passage of an article already chosen competes with its score scaled by
    ``SAME_ARTICLE_FACTOR``, so another article wins unless it is clearly worse.
    """
    unique: list[tuple[Quote, PassageRecord]] = []
    shingles: list[set[str]] = []
    for quote, record in zip(quotes, records, strict=True):
        mine = _shingles(quote.text)
        if any(_overlap(mine, other) >= NEAR_DUPLICATE for other in shingles):
            continue
        unique.append((quote, record))
        shingles.append(mine)
    chosen: list[Quote] = []
    per_article: dict[int, int] = {}
    while unique and len(chosen) < wanted:
        best = max(
            range(len(unique)),
            key=lambda i: (
                unique[i][0].score
                * SAME_ARTICLE_FACTOR ** per_article.get(unique[i][1].article_id, 0)
            ),
        )
        quote, record = unique.pop(best)
        chosen.append(quote)
        per_article[record.article_id] = per_article.get(record.article_id, 0) + 1
    return chosen


def word_shingles(text: str) -> set[str]:
    """The word trigrams near-duplicate texts are compared by (see :func:`near_duplicate`)."""
    return _shingles(text)


def near_duplicate(a: set[str], b: set[str]) -> bool:
    """Whether two texts' shingles make them the same text (a wire story in two outlets)."""
    return _overlap(a, b) >= NEAR_DUPLICATE


def _shingles(text: str) -> set[str]:
    words = [w.casefold() for w in WORD.findall(text)]
    return {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def best_sentence(question: str, passage: str, focus: str | None = None) -> str:
    """The sentence of ``passage`` that best matches the question (verbatim).

    Words are compared by stem ("reopen" meets "reopens"); longer, rarer-looking words count
    more, and a long sentence must match more to win. Words of ``focus`` (part of the
    question) count ``FOCUS_WEIGHT`` times: the rest of the question only breaks ties.
    """
    weights = dict.fromkeys(tokenize(question), 1.0)
    weights.update(dict.fromkeys(set(tokenize(focus or "")) - QUESTION_WORDS, FOCUS_WEIGHT))
    best, best_score = "", -1.0
    for sentence in (s for paragraph in passage.split("\n\n") for s in split_sentences(paragraph)):
        shared = weights.keys() & set(tokenize(sentence))
        score = sum(weights[w] * len(w) ** 0.5 for w in shared) / (1 + 0.01 * len(sentence))
        if score > best_score:
            best, best_score = sentence, score
    return best
