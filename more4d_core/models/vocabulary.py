"""The words a small model knows, and how a user's prompt is read into them.

The bundled small model learns its words from procedural captions ("the ball slides left quickly,
while the camera pans right"). Users of real photos write other words: "the cat moves right",
"it jumps", "the cube rotates". :func:`read_prompt` maps such a prompt onto the trained words and
says what it did:

* synonyms of trained nouns, verbs, directions and speeds become the trained word ("cube" -> box,
  "rotates" -> spins, "fast" -> quickly, "towards the viewer" -> toward the camera); every way of
  saying "moves" (slides, goes, drifts, ...) becomes "moves";
* generic or unknown subjects ("the subject", "the person", "the animal", "it", "the cat") become
  "object", which the model was trained to read as the most prominent foreground object;
* small filler words are dropped quietly; any other word is dropped and *named* (log and scene
  metadata), never silently;
* a prompt with letters but no known word (for example in another script) and a prompt longer than
  the model's text length get a warning that says so.

Training captions pass through the same function, so what the model learned and what it reads at
generation are the same words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# every word of the procedural captions, after canonicalization (see CANONICAL below)
KNOWN_WORDS = frozenset(
    """the ball box card disc object moves left right up down toward camera away slowly quickly bounces twice
    spins clockwise counterclockwise grows shrinks waves ripples bends and while pans forward back rises nothing
    scene is still everything stays""".split()
)

# phrases rewritten before the words are split (order matters: longer phrases first)
_PHRASES = (
    (r"\b(?:is|are) (?=[a-z]+ing\b)", ""),  # "is moving" reads as "moving": the verb is what the model knows
    (r"\bcounter[\s-]*clockwise\b|\banti[\s-]*clockwise\b", "counterclockwise"),
    (r"\b(?:towards?|to) (?:the |us|me)?(?:viewer|camera|lens|us|me)\b", "toward the camera"),
    (r"\b(?:comes|gets) (?:closer|nearer)\b", "moves toward the camera"),
    (r"\b(?:closer|nearer)\b", "toward the camera"),
    (r"\b(?:approaches|approaching)\b", "moves toward the camera"),
    (r"\b(?:recedes|receding|retreats|retreating)\b", "moves away"),
    (r"\b(?:falls|falling|drops|dropping|sinks|sinking|descends|descending)(?: down)?\b", "moves down"),
    (r"\b(?:climbs|climbing|climb|lifts|lifting)(?: up)?\b", "moves up"),
    (r"\b(?:gets|becomes|grows) (?:bigger|larger)\b", "grows"),
    (r"\b(?:gets|becomes|grows) smaller\b", "shrinks"),
    (r"\b(?:farther|further) away\b|\b(?:farther|further)\b", "away"),
    (r"\bto the (left|right)\b", r"\1"),
    (r"\b(?:stands|stays|remains|sits|is) (?:still|motionless|static|stationary|frozen)\b", "stays still"),
    (r"\bno (?:motion|movement)\b", "nothing moves"),
)
_PHRASE_RES = tuple((re.compile(p), r) for p, r in _PHRASES)

# single words -> trained word
CANONICAL = {
    # how things move from place to place
    **dict.fromkeys("slides slide moving move goes go drifts drift travels travel glides glide shifts shift runs run "
                    "walks walk flies fly floats float rolls roll heads head drives rides sails swims swim crawls "
                    "crawl wanders wander races dashes hurries hurry strolls marches advances sliding drifting gliding "
                    "rolling flying floating walking running driving riding sailing swimming".split(), "moves"),
    "towards": "toward",
    "upward": "up", "upwards": "up", "downward": "down", "downwards": "down", "leftward": "left",
    "leftwards": "left", "rightward": "right", "rightwards": "right", "backward": "back", "backwards": "back",
    **dict.fromkeys("rotates rotate rotating turns turn turning spinning spin twirls twirl twirling revolves revolve "
                    "revolving whirls whirl whirling pivots pivot swivels swivel twists twist".split(), "spins"),
    **dict.fromkeys("jumps jump jumping hops hop hopping leaps leap leaping bouncing bounce bobs bobbing".split(), "bounces"),
    **dict.fromkeys("expands expand expanding enlarges enlarge inflates inflate inflating swells swelling growing grow "
                    "widens".split(), "grows"),
    **dict.fromkeys("contracts contract contracting deflates deflate deflating shrinking shrink dwindles".split(),
                    "shrinks"),
    **dict.fromkeys("flutters flutter fluttering sways sway swaying flaps flap flapping waving wave wiggles wiggle "
                    "wobbles wobble".split(), "waves"),
    **dict.fromkeys("undulates rippling ripple".split(), "ripples"),
    **dict.fromkeys("curls folds bending bend".split(), "bends"),
    **dict.fromkeys("fast rapidly swiftly quick rapid speedily briskly".split(), "quickly"),
    **dict.fromkeys("slow gently gradually leisurely lazily calmly".split(), "slowly"),
    "pan": "pans", "panning": "pans", "rise": "rises", "rising": "rises", "ascends": "rises",
    **dict.fromkeys("static motionless stationary frozen".split(), "still"),
    "stay": "stays", "remains": "stays", "remain": "stays", "are": "is",
    # trained nouns
    **dict.fromkeys("sphere orb globe balloon".split(), "ball"),
    **dict.fromkeys("cube crate block brick".split(), "box"),
    **dict.fromkeys("panel sheet board poster paper flag sign".split(), "card"),
    **dict.fromkeys("circle coin plate ring".split(), "disc"),
    "disk": "disc",
    # generic subjects: the most prominent foreground object
    **dict.fromkeys(
        """it subject thing object person people man woman boy girl child kid baby he she they animal cat dog bird
        horse cow car bike motorcycle rocket astronaut figure character face head body""".split(), "object"),
}
# words that carry nothing the model needs: dropped without a report
FILLER = frozenset("a an its their his her of in on at into onto across around very then main little big small "
                   "slightly softly gently just also this that there".split())

_WORD = re.compile(r"[a-z0-9]+")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


@dataclass
class PromptReading:
    """What the model reads of a prompt, and what it could not."""

    prompt: str
    words: list[str]  # the trained words, in order (before cutting to the text length)
    unknown: list[str] = field(default_factory=list)  # words dropped because the model does not know them
    mapped: dict[str, str] = field(default_factory=dict)  # user word -> trained word
    max_len: int | None = None

    @property
    def kept(self) -> list[str]:
        return self.words if self.max_len is None else self.words[: self.max_len]

    @property
    def text(self) -> str:
        return " ".join(self.kept)

    @property
    def warnings(self) -> list[str]:
        out = []
        if self.unknown:
            out.append(f"words the model does not know were ignored: {', '.join(dict.fromkeys(self.unknown))}")
        if not self.words and _LETTER.search(self.prompt):
            ascii_letters = re.search(r"[A-Za-z]", self.prompt)
            why = "is in a script the model does not read" if not ascii_letters else "has no word the model knows"
            out.append(f"the prompt {why}: it generates as for an empty prompt (nothing moves). "
                       f"It knows English words such as: the ball / box / card / disc / it moves left, right, up, down, "
                       f"toward the camera, away, bounces, spins, grows, shrinks, waves, bends; the camera pans, rises, "
                       f"moves forward or back")
        if self.max_len is not None and len(self.words) > self.max_len:
            out.append(f"the prompt has {len(self.words)} words the model reads but it reads at most {self.max_len}: "
                       f"ignored the end ({' '.join(self.words[self.max_len:])})")
        return out

    def to_dict(self) -> dict:
        return {"read": self.text, "unknown": list(dict.fromkeys(self.unknown)), "mapped": dict(self.mapped),
                "warnings": self.warnings}


def read_prompt(prompt: str, max_len: int | None = None) -> PromptReading:
    """Map ``prompt`` onto the trained words (see module doc)."""
    text = str(prompt).lower()
    for pattern, replacement in _PHRASE_RES:
        text = pattern.sub(replacement, text)
    words: list[str] = []
    unknown: list[str] = []
    mapped: dict[str, str] = {}
    for w in _WORD.findall(text):
        if w in KNOWN_WORDS:
            words.append(w)
        elif w in CANONICAL:
            words.append(CANONICAL[w])
            mapped[w] = CANONICAL[w]
        elif w in FILLER:
            continue
        else:
            unknown.append(w)
    return PromptReading(str(prompt), words, unknown, mapped, max_len)
