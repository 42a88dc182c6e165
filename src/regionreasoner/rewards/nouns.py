"""Key-noun extraction K(.) for the consistency reward (docs/method.md section 5, R_cons).

K(text) = the lowercased, lemmatised nouns of ``text`` with stop words removed. With a trained
spaCy pipeline (``en_core_web_sm`` at paper scale) nouns come from its part-of-speech tagger and
lemmas from its lemmatizer. Without one (offline CPU runs: nothing is ever downloaded at run time)
a fallback reads nouns from a lexicon with ``spacy.blank("en")`` and a PhraseMatcher: COCO's 80
category names, common scene nouns and the synthetic shapes, with generated plurals and a small
alias/lemma table, mapped to one canonical singular form.

A configured pipeline that is not installed stops the run with the install command: the fallback
is chosen only by ``rewards.spacy_model: null``, never silently.

Fallback limits (documented in docs/rewards.md): it knows only lexicon nouns; it has no
part-of-speech tags, so a lexicon word used as another part of speech still counts ("orange
shirt" yields ``orange``, "remote cabin" yields ``remote``); plurals beyond the generated rules and
the alias table are missed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

import spacy
from spacy.matcher import PhraseMatcher
from spacy.util import filter_spans, is_package

MAX_CHARS = 20_000
"""K(.) reads at most this many characters of a text: a 2,000-token response (docs/method.md section 6)
is about 8,000 characters, and spaCy refuses texts over ``nlp.max_length``."""
_CACHE_SIZE = 16_384
_CACHE_MAX_CHARS = 4_096

COCO_CATEGORIES = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)
SYNTHETIC_SHAPES = ("circle", "square", "triangle")
SCENE_NOUNS = (
    "man",
    "woman",
    "boy",
    "girl",
    "child",
    "kid",
    "baby",
    "guy",
    "lady",
    "player",
    "table",
    "desk",
    "shelf",
    "window",
    "door",
    "wall",
    "floor",
    "room",
    "kitchen",
    "street",
    "road",
    "sidewalk",
    "building",
    "house",
    "tree",
    "grass",
    "field",
    "sky",
    "water",
    "beach",
    "snow",
    "hill",
    "plate",
    "glass",
    "food",
    "shirt",
    "jacket",
    "hat",
    "helmet",
    "bag",
    "box",
    "sign",
    "pole",
    "fence",
    "picture",
    "screen",
    "computer",
    "phone",
    "lamp",
    "pillow",
    "blanket",
    "flower",
    "plant",
    "animal",
    "vehicle",
    "ball",
    "bike",
    "van",
    "taxi",
    "grid",
    "background",
    "shape",
    "object",
    "cell",
    "banner",
    "cabinet",
    "counter",
    "mirror",
    "curtain",
    "rock",
)
# Irregular plurals and aliases -> canonical lexicon entry (the "small lemma map").
LEMMA_MAP = {
    "people": "person",
    "persons": "person",
    "men": "man",
    "women": "woman",
    "children": "child",
    "mice": "mouse",
    "knives": "knife",
    "shelves": "shelf",
    "ski": "skis",
    "sofa": "couch",
    "sofas": "couch",
    "television": "tv",
    "televisions": "tv",
    "motorbike": "motorcycle",
    "motorbikes": "motorcycle",
    "aeroplane": "airplane",
    "plane": "airplane",
    "planes": "airplane",
    "doughnut": "donut",
    "doughnuts": "donut",
    "fridge": "refrigerator",
    "fridges": "refrigerator",
    "cellphone": "cell phone",
    "mobile phone": "cell phone",
    "hair dryer": "hair drier",
    "hairdryer": "hair drier",
    "racket": "tennis racket",
    "racquet": "tennis racket",
    "hotdog": "hot dog",
    "puppy": "dog",
    "kitten": "cat",
}
_INVARIANT = {"sheep", "skis", "scissors", "people", "broccoli", "grass", "water", "snow", "food"}


def plural_forms(noun: str) -> tuple[str, ...]:
    """``noun`` and its regular English plural (last word of a compound is inflected)."""
    *head, last = noun.split(" ")
    if last in _INVARIANT:
        return (noun,)
    if last.endswith(("s", "x", "z", "ch", "sh")):
        plural = last + "es"
    elif last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return (noun, " ".join([*head, plural]))


def default_lexicon() -> tuple[str, ...]:
    """The fallback's canonical nouns: COCO categories, synthetic shapes and scene nouns."""
    return tuple(dict.fromkeys(COCO_CATEGORIES + SYNTHETIC_SHAPES + SCENE_NOUNS))


class LexiconNounExtractor:
    """Offline K(.): lexicon nouns found by a PhraseMatcher over ``spacy.blank("en")`` tokens."""

    name = "lexicon"

    def __init__(self, extra_nouns: Iterable[str] = ()) -> None:
        self.nlp = spacy.blank("en")
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        canonical = dict.fromkeys(default_lexicon())
        canonical.update(dict.fromkeys(n.strip().lower() for n in extra_nouns if n and n.strip()))
        surface: dict[str, str] = {}
        for noun in canonical:
            for form in plural_forms(noun):
                surface.setdefault(form, noun)
        for alias, noun in LEMMA_MAP.items():
            for form in plural_forms(alias):
                surface.setdefault(form, noun)
        by_noun: dict[str, list[str]] = {}
        for form, noun in surface.items():
            by_noun.setdefault(noun, []).append(form)
        for noun, forms in by_noun.items():
            self.matcher.add(noun, [self.nlp.make_doc(form) for form in forms])

    def __call__(self, texts: Sequence[str]) -> list[frozenset[str]]:
        strings = self.nlp.vocab.strings
        results = []
        for doc in self.nlp.pipe(texts, batch_size=256):
            spans = filter_spans(self.matcher(doc, as_spans=True))  # longest match wins
            results.append(frozenset(strings[span.label] for span in spans))
        return results


class SpacyNounExtractor:
    """Paper K(.): nouns by a trained pipeline's tagger, lemmatised, stop words removed."""

    def __init__(self, model: str) -> None:
        self.name = model
        self.nlp = spacy.load(model, exclude=["parser", "ner"])

    def __call__(self, texts: Sequence[str]) -> list[frozenset[str]]:
        return [
            frozenset(
                token.lemma_.lower() for token in doc if token.pos_ == "NOUN" and token.is_alpha and not token.is_stop
            )
            for doc in self.nlp.pipe(texts, batch_size=256)
        ]


class CachedNounExtractor:
    """Batches texts through an extractor once each, remembering recent short texts (LRU)."""

    def __init__(self, extractor: Callable[[Sequence[str]], list[frozenset[str]]]) -> None:
        self.extractor = extractor
        self.name = getattr(extractor, "name", type(extractor).__name__)
        self._cache: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> list[frozenset[str]]:
        texts = [t[:MAX_CHARS] if isinstance(t, str) else "" for t in texts]
        found: dict[str, frozenset[str]] = {}
        with self._lock:
            for text in texts:
                if text in self._cache:
                    self._cache.move_to_end(text)
                    found[text] = self._cache[text]
        missing = list(dict.fromkeys(t for t in texts if t not in found and t.strip()))
        found[""] = frozenset()
        if missing:
            for text, nouns in zip(missing, self.extractor(missing), strict=True):
                found[text] = nouns
            with self._lock:
                for text in missing:
                    if len(text) <= _CACHE_MAX_CHARS:
                        self._cache[text] = found[text]
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        return [found.get(t, frozenset()) for t in texts]


class MissingSpacyModel(ValueError):
    """The configured spaCy pipeline is not installed.

    A paper-scale run must never switch silently to the offline lexicon: K(.) would change and so
    would R_cons and every GRPO model trained with it.
    """


def require_spacy_model(spacy_model: str) -> None:
    """Stop with the install command when ``spacy_model`` is not an installed package."""
    if not is_package(spacy_model):
        raise MissingSpacyModel(
            f"spaCy pipeline {spacy_model!r} (config rewards.spacy_model) is not installed; install it with "
            f"`python -m spacy download {spacy_model}` in the training environment (envs/train.yaml lists it), "
            "or set rewards.spacy_model: null to use the offline lexicon on purpose"
        )


@lru_cache(maxsize=8)
def noun_extractor(spacy_model: str | None = None, noun_lexicon: tuple[str, ...] = ()) -> CachedNounExtractor:
    """The K(.) to use: the installed ``spacy_model``, or the lexicon fallback when it is ``None``.

    ``spacy_model=None`` selects the fallback (tiny CPU configs); a configured model that is not
    installed raises MissingSpacyModel naming the install command. ``noun_lexicon`` adds dataset
    nouns (e.g. category names) to the fallback lexicon.
    """
    if spacy_model is not None:
        require_spacy_model(spacy_model)
        return CachedNounExtractor(SpacyNounExtractor(spacy_model))
    return CachedNounExtractor(LexiconNounExtractor(noun_lexicon))


def key_nouns(
    texts: list[str], *, spacy_model: str | None = None, noun_lexicon: Sequence[str] | None = None
) -> list[frozenset[str]]:
    """K(.) of each text, batched through ``nlp.pipe`` and cached (docs/method.md section 5)."""
    return noun_extractor(spacy_model, tuple(noun_lexicon or ()))(list(texts))
