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

from videoqa.retrieval.relevance import content_words

NAMES = (
    "Maria",
    "Thomas",
    "Olivia",
    "George",
    "Sophie",
    "Daniel",
    "Emma",
    "Oscar",
    "Lucy",
    "Henry",
    "Grace",
    "Peter",
    "Alice",
    "Jack",
    "Laura",
    "Victor",
    "Nina",
    "Samuel",
    "Clara",
    "Martin",
)
CITIES = (
    "Lisbon",
    "Berlin",
    "Chicago",
    "Madrid",
    "Dublin",
    "Vienna",
    "Toronto",
    "Sydney",
    "Boston",
    "Oslo",
    "Prague",
    "Denver",
    "London",
    "Paris",
    "Tokyo",
    "Cairo",
)
THINGS = (
    "apples",
    "oranges",
    "books",
    "candles",
    "tickets",
    "shirts",
    "bottles",
    "chairs",
    "lamps",
    "plates",
    "pencils",
    "blankets",
)
PLACES = ("market", "bakery", "library", "harbour", "museum", "station", "garden", "bookshop")
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "black", "white")
JOBS = ("teacher", "pilot", "doctor", "farmer", "baker", "painter", "engineer", "nurse", "chef", "lawyer")
EVENTS = ("concert", "wedding", "festival", "conference", "marathon", "exhibition")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SIGN_WORDS = ("GATE", "ROOM", "PLATFORM", "DOOR", "LOCKER", "TABLE", "BUS", "FLOOR")
# The X and the Y of "NAME finished X. Then NAME did Y." and the word that shows Y was understood.
FIRST_ACTIVITIES = ("swim", "morning run", "piano lesson", "long meeting", "yoga class", "history exam")
NEXT_ACTIVITIES = (
    ("rode a bicycle to the {place}", "bicycle"),
    ("cooked a big pot of soup", "soup"),
    ("painted the garden fence", "fence"),
    ("read a book about volcanoes", "volcanoes"),
    ("played chess with a neighbour", "chess"),
    ("washed the old car", "car"),
    ("baked a chocolate cake", "cake"),
    ("planted tomatoes in the garden", "tomatoes"),
)
# Questions about things no generated video holds: the answerer must say so instead of inventing.
ABSENT_QUESTIONS = (
    "What is the name of the {colour} dog?",
    "How tall is the lighthouse on the island?",
    "Which football team won the championship?",
    "What is the password for the wifi network?",
    "How much does the {colour} helicopter cost?",
    "What did the astronaut eat on the moon?",
    "Who won the tennis tournament in {city}?",
    "What is the recipe for the {colour} sauce?",
    "Which planet does the spaceship visit?",
    "What is the weather forecast for the weekend?",
)
# Questions about absent things that share words with what the generated videos do hold (tickets, floors,
# doors, the market, a person's name): a near match in wording, nothing in content.
SHARED_WORD_QUESTIONS = (
    "How much did the tickets cost?",
    "What is the name of {name}'s brother?",
    "How old is {name}?",
    "What time does the {place} close?",
    "Who painted the picture in the {place}?",
    "What did {name} eat for breakfast?",
    "Which floor is the dentist on?",
    "Where did {name} park the car?",
    "What is written on the {colour} door?",
    "Which bus goes to the airport?",
    "How many people live in {city}?",
    "What is the phone number of the {place}?",
)
_UNITS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
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
    # More ways to ask the same question (``question`` is the first); benchmarks fit on the first few
    # and check on the rest, so a calibration is tested on phrasings it never saw.
    phrasings: tuple[str, ...] = ()
    # Questions that share most words with the fact but ask about something the fact does not say (another
    # person, city, thing): the answerer must abstain unless the video says that too.
    near_misses: tuple[str, ...] = ()


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


def _other(pool: tuple[str, ...], value: str, step: int = 1) -> str:
    """Another member of ``pool`` than ``value``, picked without drawing from the generator (so adding
    near misses left every seeded video as it was)."""
    return pool[(pool.index(value) + step) % len(pool)]


def spoken_fact(rng: random.Random) -> Fact:
    """A sentence with one checkable detail (a number, a place, a colour, a job) and its question."""
    name, city, place = rng.choice(NAMES), rng.choice(CITIES), rng.choice(PLACES)
    value, numbers = _number(rng)
    other, elsewhere = _other(NAMES, name, 7), _other(CITIES, city, 5)
    templates = (
        (
            f"{name} bought {value} {(things := rng.choice(THINGS))} at the {place}.",
            (
                f"How many {things} did {name} buy?",
                f"What number of {things} did {name} purchase?",
                f"How many {things} were bought by {name}?",
                f"{name} bought how many {things}?",
                f"Can you tell me how many {things} {name} got at the {place}?",
                f"What quantity of {things} did {name} pick up?",
            ),
            numbers,
            (
                f"How many {things} did {other} buy?",
                f"How many {_other(THINGS, things, 3)} did {name} buy at the {place}?",
            ),
        ),
        (
            f"The train to {city} leaves from platform {value}.",
            (
                f"Which platform does the train to {city} leave from?",
                f"From which platform does the {city} train depart?",
                f"What platform is the {city} train on?",
                f"Where do I catch the train to {city}?",
                f"the train for {city} goes from which platform",
                f"Which platform was given for trains to {city}?",
            ),
            numbers,
            (
                f"Which platform does the train to {elsewhere} leave from?",
                f"What time does the train to {city} arrive?",
            ),
        ),
        (
            f"The favourite colour of {name} is {(colour := rng.choice(COLOURS))}.",
            (
                f"What is the favourite colour of {name}?",
                f"Which colour does {name} like best?",
                f"What is {name}'s favorite color?",
                f"{name} prefers which colour?",
                f"Tell me {name}'s favourite colour.",
                f"What colour does {name} love most?",
            ),
            (colour,),
            (f"What is the favourite colour of {other}?", f"What is the favourite food of {name}?"),
        ),
        (
            f"The {(event := rng.choice(EVENTS))} will take place in {city} next {rng.choice(WEEKDAYS)}.",
            (
                f"Where will the {event} take place?",
                f"In which city is the {event} being held?",
                f"Where is the {event} happening?",
                f"what city hosts the {event}",
                f"Where's the {event} going to be?",
                f"Which city was chosen for the {event}?",
            ),
            (city,),
            (
                f"Where will the {_other(EVENTS, event, 2)} take place?",
                f"How many people attend the {event}?",
            ),
        ),
        (
            f"{name} works as a {(job := rng.choice(JOBS))} in {city}.",
            (
                f"What is the job of {name}?",
                f"What does {name} do for a living?",
                f"What is {name}'s occupation?",
                f"What work does {name} do in {city}?",
                f"what's {name}'s profession",
                f"Which job does {name} have?",
            ),
            (job,),
            (f"What is the job of {other}?", f"What is the salary of {name}?"),
        ),
    )
    text, phrasings, answers, near = rng.choice(templates)
    return Fact("speech", text, phrasings[0], answers, phrasings, near)


def screen_fact(rng: random.Random) -> Fact:
    """A short sign shown as a text card, and a question about what it says."""
    value, _ = _number(rng, 2, 99)
    word = rng.choice(SIGN_WORDS)
    other_word = _other(SIGN_WORDS, word, 3).lower()
    templates = (
        (
            f"{word} {value}",
            (
                f"Which {word.lower()} number is shown on the screen?",
                f"What {word.lower()} number does the sign show?",
                f"What number is written after {word} on screen?",
                f"which {word.lower()} is displayed",
                f"What does the {word.lower()} sign say?",
                f"Which {word.lower()} is on the screen?",
            ),
            (str(value),),
            (f"Which {other_word} number is shown on the screen?",),
        ),
        (
            f"WELCOME TO {(city := rng.choice(CITIES)).upper()}",
            (
                "Which city does the sign on the screen welcome you to?",
                "What city is named on the welcome sign?",
                "Where does the sign say welcome to?",
                "Which place is the welcome sign for?",
                "the on-screen text welcomes visitors to which city",
                "What city does the sign greet us to?",
            ),
            (city,),
            (),
        ),
        (
            f"{(name := rng.choice(NAMES)).upper()} - {(job := rng.choice(JOBS)).upper()}",
            (
                f"What is the job of {name} according to the caption on screen?",
                f"What does the caption say {name} does?",
                f"What is {name}'s job on the title card?",
                f"Which profession is shown next to {name}'s name?",
                f"What job is written under {name}?",
                f"What is {name} according to the on-screen caption?",
            ),
            (job,),
            (f"What is the job of {_other(NAMES, name, 7)} according to the caption on screen?",),
        ),
    )
    text, phrasings, answers, near = rng.choice(templates)
    return Fact("screen", text, phrasings[0], answers, phrasings, near)


def terse_sign_fact(rng: random.Random) -> Fact:
    """A terse sign the way real ones are written (abbreviations, dashes, upper case) and questions
    phrased the way people ask, sharing only the sign's rare words: the embedding of "When was the
    museum founded?" sits far from "MUSEUM - EST. 1987", and the answer still lies in it."""
    year, place, city = rng.randint(1850, 2010), rng.choice(PLACES), rng.choice(CITIES)
    number = rng.randint(2, 19)
    templates = (
        (
            f"{place.upper()} - EST. {year}",
            (
                f"When was the {place} established?",
                f"What year was the {place} founded?",
                f"Since what year has the {place} been open?",
                f"how long has the {place} been around",
                f"In which year did the {place} open?",
                f"When did the {place} first open its doors?",
            ),
            (str(year),),
            (f"When was the {_other(PLACES, place, 3)} established?",),
        ),
        (
            f"PLATFORM {number} - TRAINS TO {city.upper()}",
            (
                f"Which platform do the trains to {city} leave from?",
                f"Where do I catch the train to {city}?",
                f"What platform is the {city} train on?",
                f"the train for {city} departs from which platform",
                f"From which platform can you travel to {city}?",
                f"Which track serves {city}?",
            ),
            (str(number),),
            (f"Which platform do the trains to {_other(CITIES, city, 4)} leave from?",),
        ),
    )
    text, phrasings, answers, near = rng.choice(templates)
    return Fact("screen", text, phrasings[0], answers, phrasings, near)


def sequel(rng: random.Random) -> Sequel:
    """Two events and "what does NAME do after the FIRST?"."""
    name, first = rng.choice(NAMES), rng.choice(FIRST_ACTIVITIES)
    then, keyword = rng.choice(NEXT_ACTIVITIES)
    return Sequel(
        first=f"{name} finished the {first}.",
        then=f"After that, {name} {then.format(place=rng.choice(PLACES))}.",
        question=f"What does {name} do after the {first}?",
        answers=(keyword,),
    )


def absent_question(rng: random.Random) -> str:
    """A question about something no generated video shows or says."""
    return rng.choice(ABSENT_QUESTIONS).format(colour=rng.choice(COLOURS), city=rng.choice(CITIES))


def answer_matches(answer: str, accepted: tuple[str, ...]) -> bool:
    """Whether an answer states the fact: any accepted form, case-insensitive, as whole words."""
    import re

    lowered = answer.lower()
    return any(
        re.search(rf"(?<![a-z0-9]){re.escape(form.lower())}(?![a-z0-9])", lowered) for form in accepted
    )


# --- question sets for calibrating and checking answers ---------------------------------------------

# Narration between the facts: ordinary sentences, some sharing words with the facts' questions (trains,
# colours, jobs, signs) without answering them, as real narration does.
FILLERS = (
    "It was a quiet {weekday} in {city}.",
    "{name} looked out of the window for a while.",
    "The streets were busy that afternoon.",
    "Nobody said much on the way home.",
    "{name} called an old friend from {city}.",
    "The light changed slowly over the hills.",
    "Everyone agreed it had been a long week.",
    "{name} made a cup of tea and sat down.",
    "The train was late again, as it often is on a {weekday}.",
    "{name} talked about work for an hour.",
    "The colours of the sky turned from {colour} to grey.",
    "A sign by the road had faded in the sun.",
    "{name} said the {place} was always crowded at noon.",
    "They counted the boxes twice to be sure.",
    "The city felt different after the rain.",
    "{name} wondered what the next day would bring.",
)
# How "NAME did Y after X" is said: two sentences, or one sentence that orders the two events itself.
SEQUEL_FORMS = ("two sentences", "after first", "after last", "and then", "someone between")


@dataclass(frozen=True)
class AskedQuestion:
    """A question of a question set: what is asked, the answers accepted (empty: not in the video), which
    fact it asks about (the index of its passage), and its phrasing number among that fact's phrasings."""

    question: str
    answers: tuple[str, ...]
    passage: int | None  # the passage that answers it; None for an unanswerable question
    phrasing: int  # 0 for the first way of asking, 1.. for the others
    family: str  # "speech", "screen", "terse sign", "after", "near miss", "absent"


@dataclass(frozen=True)
class QuestionSet:
    """A stand-in for a narrated video's passages (text, channel, time) and questions about it."""

    passages: tuple[tuple[str, str, float, float], ...]  # (channel, text, start_s, end_s), in time order
    questions: tuple[AskedQuestion, ...]


def ordered_pair(rng: random.Random, form: str) -> tuple[list[str], tuple[str, ...], tuple[str, ...]]:
    """Sentences telling that NAME did Y after X (in ``form``, one of SEQUEL_FORMS), the questions asking
    what NAME did after X, and the accepted answers."""
    name, first = rng.choice(NAMES), rng.choice(FIRST_ACTIVITIES)
    then, keyword = rng.choice(NEXT_ACTIVITIES)
    then = then.format(place=rng.choice(PLACES))
    other = _other(NAMES, name, 3)
    sentences = {
        "two sentences": [f"{name} finished the {first}.", f"After that, {name} {then}."],
        "after first": [f"After the {first}, {name} {then}."],
        "after last": [f"{name} {then} after the {first}."],
        "and then": [f"{name} finished the {first} and then {then}."],
        "someone between": [
            f"{name} finished the {first}.",
            f"{other} went for a short walk.",
            f"Later, {name} {then}.",
        ],
    }[form]
    questions = (
        f"What does {name} do after the {first}?",
        f"After the {first}, what did {name} do?",
        f"What did {name} do once the {first} was over?",
        f"What did {name} do when the {first} ended?",
        f"what happened after {name}'s {first}",
    )
    return sentences, questions, (keyword,)


def question_set(seed: int, facts: int = 60) -> QuestionSet:
    """A seeded stand-in video of ``facts`` facts (spoken facts, signs, and events in order, with a similar
    fact about someone else right after some of them) among filler narration, and the questions: each
    fact in all its phrasings, near misses, and questions about things the video does not hold."""
    rng = random.Random(seed)
    passages: list[tuple[str, str, float, float]] = []
    asked: list[AskedQuestion] = []
    seen: set[str] = set()  # questions asked already: a second sign "WELCOME TO ..." would make it ambiguous

    def say(channel: str, text: str) -> int:
        start = passages[-1][3] + 1.0 if passages else 2.0
        passages.append((channel, text, start, start + (6.0 if channel == "screen" else 4.0)))
        return len(passages) - 1

    for i in range(facts):
        for _ in range(rng.randint(1, 3)):
            say(
                "speech",
                rng.choice(FILLERS).format(
                    weekday=rng.choice(WEEKDAYS),
                    city=rng.choice(CITIES),
                    name=rng.choice(NAMES),
                    colour=rng.choice(COLOURS),
                    place=rng.choice(PLACES),
                ),
            )
        kind = ("speech", "screen", "after", "speech", "terse sign")[i % 5]
        if kind == "after":
            form = SEQUEL_FORMS[(i // 5) % len(SEQUEL_FORMS)]
            sentences, questions, answers = ordered_pair(rng, form)
            while not seen.isdisjoint(questions):  # the same person after the same activity twice
                sentences, questions, answers = ordered_pair(rng, form)
            seen.update(questions)
            spots = [say("speech", text) for text in sentences]
            asked += [AskedQuestion(q, answers, spots[-1], n, "after") for n, q in enumerate(questions)]
            continue
        fact = _new_fact(kind, rng, seen)
        where = say(fact.channel, fact.text)
        family = kind if fact.channel == "screen" else "speech"  # signs fall back to speech when used up
        asked += [AskedQuestion(q, fact.answers, where, n, family) for n, q in enumerate(fact.phrasings)]
        asked += [AskedQuestion(q, (), None, 0, "near miss") for q in fact.near_misses]
        if rng.random() < 0.3:  # a similar fact right after: the two must not be confused
            sibling = _new_fact(kind, rng, seen)
            spot = say(sibling.channel, sibling.text)
            asked += [
                AskedQuestion(
                    q, sibling.answers, spot, n, family if sibling.channel == "screen" else "speech"
                )
                for n, q in enumerate(sibling.phrasings)
            ]
    absent = {q.format(colour=c, city=t) for q in ABSENT_QUESTIONS for c in COLOURS[:2] for t in CITIES[:2]}
    absent |= {
        q.format(
            name=rng.choice(NAMES),
            place=rng.choice(PLACES),
            colour=rng.choice(COLOURS),
            city=rng.choice(CITIES),
        )
        for q in SHARED_WORD_QUESTIONS
        for _ in range(3)
    }
    asked += [AskedQuestion(q, (), None, 0, "absent") for q in sorted(absent)]
    # A near miss that another passage happens to answer (the other person's colour is said too, or the
    # near miss "when was the bookshop established" is another fact's own question) is dropped.
    said = [_words(text) for _, text, _, _ in passages]
    answered = {q.question for q in asked if q.answers}
    kept = [
        q
        for q in asked
        if q.answers
        or (q.question not in answered and not any(_words(q.question) <= words for words in said))
    ]
    return QuestionSet(tuple(passages), tuple(kept))


def _new_fact(kind: str, rng: random.Random, seen: set[str]) -> Fact:
    """A fact none of whose questions an earlier fact of the set is asked with too ("Where do I catch the
    train to Berlin?" of a spoken platform and of a sign's: the question would be ambiguous);
    a spoken one when the signs' questions run out (their pools are small)."""
    for _ in range(100):
        fact = (
            spoken_fact(rng)
            if kind == "speech"
            else screen_fact(rng)
            if kind == "screen"
            else terse_sign_fact(rng)
        )
        if seen.isdisjoint(fact.phrasings):
            seen.update(fact.phrasings)
            return fact
    if kind != "speech":
        return _new_fact("speech", rng, seen)
    raise ValueError("cannot draw another distinct spoken fact; ask for fewer facts")


def _words(text: str) -> set[str]:
    return set(content_words(text))
