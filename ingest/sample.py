"""The sample corpus that ships with newsbot: fictional outlets, realistic page noise."""

from pathlib import Path

SAMPLE_CORPUS = Path(__file__).resolve().parent / "sample_corpus"
