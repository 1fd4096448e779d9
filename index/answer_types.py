"""What kind of fact a question asks for, and whether a text holds one.

"How much ...cost" wants a money amount, "how many" a number, "when" a date or time, "who" a
person's name, "where" a place. A member who asks "How much will a single ride on the tram
cost?" about a story that gives only the line's total budget gets a passage of the right
story; what tells the bot that this story does not answer is that no sentence naming what was
asked ("ride") also holds the kind of fact asked for. Hand-written patterns, not a tagger:
no named-entity model ships offline here, and these few shapes are what news text uses.
"""

from __future__ import annotations

import re

MONEY = "money"
NUMBER = "number"
AGE = "age"
TIME = "time"
PERSON = "person"
PLACE = "place"

_MONEY_QUESTION = re.compile(
    r"\bhow\s+much\b.*\b(?:cost|costs|pay|paid|pays|spend|spent|worth|price|priced|charge|"
    r"charged|fine|fined|earn|earns|earned|money|salary|sell|sold|buy|bought|fee|fees|fare|"
    r"fares|raise|raised|make|made|owe|owed|get|give|gave|suing|sue|sued|budget)\b"
    r"|\bhow\s+much\s+(?:money|cash|funding)\b"
    r"|\bwhat\s+(?:does|do|did|will|would)\b.*\bcost\b"
    r"|\b(?:net\s+worth|what\s+(?:is|was|'s)\s+the\s+(?:price|cost|fare|fee|salary))\b",
    re.IGNORECASE,
)
_NUMBER_QUESTION = re.compile(
    r"\bhow\s+(?:many|much|old|long|far|big|tall|high|large|fast|deep)\b"
    r"|\bwhat\s+(?:percentage|percent|share|number)\b",
    re.IGNORECASE,
)
_AGE_QUESTION = re.compile(r"\bhow\s+old\b|\bwhat\s+age\b", re.IGNORECASE)
_TIME_QUESTION = re.compile(
    r"\bwhen\b|\bwhat\s+(?:time|year|date|day|month)\b|\bhow\s+soon\b", re.IGNORECASE
)
_PERSON_QUESTION = re.compile(
    r"\bwho(?:'s|s|m|se)?\b|\bname\s+of\b|\bwhat\s+(?:is|was|'s)\s+(?:the\s+)?name\b",
    re.IGNORECASE,
)
_PLACE_QUESTION = re.compile(r"\bwhere\b", re.IGNORECASE)

_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|dozens|half|"
    "a\\s+third|a\\s+quarter"
)
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
)
_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend"
FACT_PATTERNS = {
    MONEY: re.compile(
        r"[$€£¥]\s?\d|\b\d[\d,.]*\s*(?:bn|m|k)?\s*(?:dollars?|pounds?|euros?|cents?|pence|yen|"
        r"yuan|rupees?|francs?)\b|\bUS\$|\b(?:USD|EUR|GBP)\s?\d",
        re.IGNORECASE,
    ),
    NUMBER: re.compile(rf"\d|\b(?:{_NUMBER_WORDS})\b", re.IGNORECASE),
    # "52-year-old", "aged 52", "Okafor, 52, said", "(52)"
    AGE: re.compile(
        r"\b\d{1,3}[- ]years?[- ]old\b|\baged?\s+\d{1,3}\b|,\s*\d{1,3},|\(\d{1,3}\)",
        re.IGNORECASE,
    ),
    TIME: re.compile(
        rf"\b(?:{_MONTHS})\b\.?|\b(?:{_DAYS})s?\b|\b(?:19|20)\d\d\b|\b\d{{1,2}}(?::\d\d)?\s*"
        r"(?:a\.?m\.?|p\.?m\.?)|\b(?:today|tomorrow|yesterday|tonight|noon|midnight)\b|"
        r"\b(?:next|last|this|coming|later\s+this)\s+(?:week|month|year|spring|summer|fall|"
        r"autumn|winter)\b|\b(?:spring|summer|autumn|winter)\b|\bo'clock\b|"
        r"\bwithin\s+(?:days|weeks|months)\b|\b(?:in|within|for|after)\s+(?:\d+|a|an|"
        rf"(?:{_NUMBER_WORDS}))\s+(?:days?|weeks?|months?|years?|hours?)\b",
        re.IGNORECASE,
    ),
    # Two capitalised words in a row, not after a sentence's end: "Denise Okafor", "Mr Pryce".
    PERSON: re.compile(
        r"(?<![.!?]\s)(?<!^)\b(?:Mr|Mrs|Ms|Dr|Sir|Dame)\.?\s+[A-Z]"
        r"|(?<![.!?]\s)(?<!^)\b[A-Z][a-zà-ÿ'’-]+\s+(?:[A-Z]\.\s+)?[A-Z][a-zà-ÿ'’-]{2,}",
    ),
    PLACE: re.compile(
        r"\b(?:in|at|near|to|from|across|outside|inside|off|over)\s+(?:the\s+)?[A-Z][\w'’-]+"
    ),
}


def wanted_fact(question: str) -> str | None:
    """The kind of fact the question asks for, or None (what, why, yes/no, tell me about)."""
    for kind, pattern in (
        (MONEY, _MONEY_QUESTION),
        (AGE, _AGE_QUESTION),
        (TIME, _TIME_QUESTION),
        (NUMBER, _NUMBER_QUESTION),
        (PERSON, _PERSON_QUESTION),
        (PLACE, _PLACE_QUESTION),
    ):
        if pattern.search(question):
            return kind
    return None


def holds_fact(kind: str, text: str) -> bool:
    """Whether ``text`` holds a fact of this kind (a money amount, a number, a date, ...)."""
    return FACT_PATTERNS[kind].search(text) is not None
