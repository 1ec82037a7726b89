"""Text metrics of generated replies against reference replies, through the established packages (no torch).

- exact match: the reply equals the reference once both are stripped of surrounding whitespace (share of rows);
- ROUGE-L F (`rouge-score`): the longest common subsequence of tokens, as an F-measure of its precision (share of
  the reply in it) and recall (share of the reference in it). rouge-score's default tokenizer keeps only [a-z0-9]
  and so drops Chinese text whole; `MixedTokenizer` lowercases, keeps latin words and digits as tokens and splits
  CJK text into characters (the usual unit of Chinese ROUGE);
- BLEU (`sacrebleu`): corpus BLEU over the rows, 0-100; sacrebleu's `zh` tokenizer (CJK characters apart) where a
  reference holds CJK text, its standard `13a` otherwise; per row, sentence BLEU with effective order (for the
  row view, not to be averaged into the corpus figure);
- mean generated length (tokens) and the share of generations that stopped at the end-of-turn token (the others ran
  into max_new_tokens: a model that does not know when to stop).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# CJK ideographs (with extension A and the compatibility block), kana, hangul syllables, CJK punctuation
CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
WORD = re.compile(r"[^\W_]+")


def has_cjk(text: str) -> bool:
    return CJK.search(text) is not None


class MixedTokenizer:
    """rouge-score's tokenizer interface (`tokenize(text) -> list[str]`): lowercased latin words and digits as
    tokens, every CJK character a token of its own, punctuation dropped."""

    def tokenize(self, text: str) -> list[str]:
        spaced = CJK.sub(lambda match: f" {match.group(0)} ", text.lower())
        return [token for token in WORD.findall(spaced) if not _punctuation(token)]


def _punctuation(token: str) -> bool:
    """CJK punctuation (。，、「」) falls in the CJK ranges but is no word."""
    return len(token) == 1 and unicodedata.category(token)[0] in "PSZ"


def exact_match(reply: str, reference: str) -> bool:
    return reply.strip() == reference.strip()


def rouge_l(reply: str, reference: str) -> float:
    """ROUGE-L F-measure of one reply against its reference, 0..1."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=MixedTokenizer())
    return float(scorer.score(reference, reply)["rougeL"].fmeasure)


def bleu_tokenizer(references: Sequence[str]) -> str:
    """sacrebleu's tokenizer for these references: zh where any holds CJK text, else 13a."""
    return "zh" if any(has_cjk(reference) for reference in references) else "13a"


def corpus_bleu(replies: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of the replies against one reference each."""
    import sacrebleu

    if not replies:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(replies), [list(references)],
                                       tokenize=bleu_tokenizer(references)).score)


def sentence_bleu(reply: str, reference: str) -> float:
    """BLEU (0-100) of one reply, with effective order (short replies are not zero for lacking 4-grams)."""
    import sacrebleu

    return float(sacrebleu.sentence_bleu(reply, [reference], tokenize=bleu_tokenizer([reference])).score)


@dataclass(frozen=True)
class Generated:
    """One model's reply to one row: the text, its length in tokens, and whether it ended its turn itself."""

    text: str
    new_tokens: int
    stopped: bool


def row_scores(reply: str, reference: str) -> dict[str, float]:
    """The per-row figures the row view shows and sorts by."""
    return {"exact_match": float(exact_match(reply, reference)), "rouge_l": rouge_l(reply, reference),
            "bleu": sentence_bleu(reply, reference)}


def text_metrics(generated: Sequence[Generated], references: Sequence[str]) -> dict[str, Any]:
    """A model's figures over the rows: exact_match, rouge_l (mean F, 0..1), bleu (corpus, 0-100),
    mean_new_tokens, stopped_share; each row's own scores under `rows`."""
    if len(generated) != len(references):
        raise ValueError(f"{len(generated)} replies for {len(references)} references")
    rows = [row_scores(one.text, reference) for one, reference in zip(generated, references, strict=True)]
    count = len(rows)

    def mean(values: Sequence[float]) -> float:
        return sum(values) / count if count else 0.0

    return {
        "rows": count,
        "exact_match": mean([row["exact_match"] for row in rows]),
        "rouge_l": mean([row["rouge_l"] for row in rows]),
        "bleu": corpus_bleu([one.text for one in generated], references),
        "bleu_tokenize": bleu_tokenizer(references),
        "mean_new_tokens": mean([one.new_tokens for one in generated]),
        "stopped_share": mean([float(one.stopped) for one in generated]),
        "per_row": rows,
    }


def changed_share(before: Sequence[str], after: Sequence[str]) -> float:
    """The share of rows whose reply changed (after stripping): how much a tune moved general answers."""
    if not before:
        return 0.0
    return sum(a.strip() != b.strip() for a, b in zip(before, after, strict=True)) / len(before)
