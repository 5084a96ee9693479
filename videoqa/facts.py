"""Seeded facts to plant in test videos, each with the question that asks for it and the answers accepted.

Tests, ``benchmarks/ask.py`` and the needle-in-a-haystack benchmark draw their facts here, from word
pools combined by a seeded generator, so a system cannot score by having memorised a fixed list: a new
seed gives new names, numbers, places and pairings. Words are common English ones, because speech is
synthesised by espeak-ng and read back by a speech recogniser, and the test is of videoqa, not of how
either spells "Okonkwo".
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = ("Maria", "Thomas", "Olivia", "George", "Sophie", "Daniel", "Emma", "Oscar", "Lucy", "Henry",
         "Grace", "Peter", "Alice", "Jack", "Laura", "Victor", "Nina", "Samuel", "Clara", "Martin")
CITIES = ("Lisbon", "Berlin", "Chicago", "Madrid", "Dublin", "Vienna", "Toronto", "Sydney", "Boston",
          "Oslo", "Prague", "Denver", "London", "Paris", "Tokyo", "Cairo")
THINGS = ("apples", "oranges", "books", "candles", "tickets", "shirts", "bottles", "chairs", "lamps",
          "plates", "pencils", "blankets")
PLACES = ("market", "bakery", "library", "harbour", "museum", "station", "garden", "bookshop")
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "black", "white")
JOBS = ("teacher", "pilot", "doctor", "farmer", "baker", "painter", "engineer", "nurse", "chef",
        "lawyer")
EVENTS = ("concert", "wedding", "festival", "conference", "marathon", "exhibition")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SIGN_WORDS = ("GATE", "ROOM", "PLATFORM", "DOOR", "LOCKER", "TABLE", "BUS", "FLOOR")
# The X and the Y of "NAME finished X. Then NAME did Y." and the word that shows Y was understood.
FIRST_ACTIVITIES = ("swim", "morning run", "piano lesson", "long meeting", "yoga class", "history exam")
NEXT_ACTIVITIES = (("rode a bicycle to the {place}", "bicycle"), ("cooked a big pot of soup", "soup"),
                   ("painted the garden fence", "fence"), ("read a book about volcanoes", "volcanoes"),
                   ("played chess with a neighbour", "chess"), ("washed the old car", "car"),
                   ("baked a chocolate cake", "cake"), ("planted tomatoes in the garden", "tomatoes"))
# Questions about things no generated video holds: the answerer must say so instead of inventing.
ABSENT_QUESTIONS = (
    "What is the name of the {colour} dog?", "How tall is the lighthouse on the island?",
    "Which football team won the championship?", "What is the password for the wifi network?",
    "How much does the {colour} helicopter cost?", "What did the astronaut eat on the moon?",
    "Who won the tennis tournament in {city}?", "What is the recipe for the {colour} sauce?",
    "Which planet does the spaceship visit?", "What is the weather forecast for the weekend?",
)
_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(value: int) -> str:
    """0..99 in words, hyphenated like a speech recogniser or a person writes them ("forty-two")."""
    if not 0 <= value < 100:
        raise ValueError(f"only 0..99 are spelled out, got {value}")
    if value < 20:
        return _UNITS[value]
    tens, units = divmod(value, 10)
    return _TENS[tens] + (f"-{_UNITS[units]}" if units else "")


@dataclass(frozen=True)
class Fact:
    """Something planted in a video: said aloud or shown on screen, and how to ask about it."""

    channel: str  # "speech" or "screen"
    text: str  # the sentence spoken, or the text of the card
    question: str
    answers: tuple[str, ...]  # an answer containing any of these (case-insensitive) is right


@dataclass(frozen=True)
class Sequel:
    """Two spoken events in order, and a question about what happened after the first."""

    first: str
    then: str
    question: str
    answers: tuple[str, ...]


def _number(rng: random.Random, low: int = 3, high: int = 99) -> tuple[int, tuple[str, ...]]:
    value = rng.randint(low, high)
    return value, (str(value), number_words(value), number_words(value).replace("-", " "))


def spoken_fact(rng: random.Random) -> Fact:
    """A sentence with one checkable detail (a number, a place, a colour, a job) and its question."""
    name, city, place = rng.choice(NAMES), rng.choice(CITIES), rng.choice(PLACES)
    value, numbers = _number(rng)
    templates = (
        (f"{name} bought {value} {(things := rng.choice(THINGS))} at the {place}.",
         f"How many {things} did {name} buy?", numbers),
        (f"The train to {city} leaves from platform {value}.",
         f"Which platform does the train to {city} leave from?", numbers),
        (f"The favourite colour of {name} is {(colour := rng.choice(COLOURS))}.",
         f"What is the favourite colour of {name}?", (colour,)),
        (f"The {(event := rng.choice(EVENTS))} will take place in {city} next "
         f"{rng.choice(WEEKDAYS)}.", f"Where will the {event} take place?", (city,)),
        (f"{name} works as a {(job := rng.choice(JOBS))} in {city}.", f"What is the job of {name}?",
         (job,)),
    )
    text, question, answers = rng.choice(templates)
    return Fact("speech", text, question, answers)


def screen_fact(rng: random.Random) -> Fact:
    """A short sign shown as a text card, and a question about what it says."""
    value, _ = _number(rng, 2, 99)
    word = rng.choice(SIGN_WORDS)
    templates = (
        (f"{word} {value}", f"Which {word.lower()} number is shown on the screen?", (str(value),)),
        (f"WELCOME TO {(city := rng.choice(CITIES)).upper()}",
         "Which city does the sign on the screen welcome you to?", (city,)),
        (f"{(name := rng.choice(NAMES)).upper()} - {(job := rng.choice(JOBS)).upper()}",
         f"What is the job of {name} according to the caption on screen?", (job,)),
    )
    text, question, answers = rng.choice(templates)
    return Fact("screen", text, question, answers)


def sequel(rng: random.Random) -> Sequel:
    """Two events and "what does NAME do after the FIRST?"."""
    name, first = rng.choice(NAMES), rng.choice(FIRST_ACTIVITIES)
    then, keyword = rng.choice(NEXT_ACTIVITIES)
    return Sequel(first=f"{name} finished the {first}.",
                  then=f"After that, {name} {then.format(place=rng.choice(PLACES))}.",
                  question=f"What does {name} do after the {first}?", answers=(keyword,))


def absent_question(rng: random.Random) -> str:
    """A question about something no generated video shows or says."""
    return rng.choice(ABSENT_QUESTIONS).format(colour=rng.choice(COLOURS), city=rng.choice(CITIES))


def answer_matches(answer: str, accepted: tuple[str, ...]) -> bool:
    """Whether an answer states the fact: any accepted form, case-insensitive, as whole words."""
    import re

    lowered = answer.lower()
    return any(re.search(rf"(?<![a-z0-9]){re.escape(form.lower())}(?![a-z0-9])", lowered)
               for form in accepted)
