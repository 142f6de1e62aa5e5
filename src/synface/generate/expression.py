"""The expression prior: plausible blendshape weights drawn from expression archetypes.

Independent random blendshape weights make grimaces, not expressions. A sample
here picks one archetype (neutral, smiles, surprise, anger, talking visemes,
blinks, a smirk...), scales it by a random intensity, lets the two sides of
every left/right pair differ a little, adds a few faint random blendshapes and
a conjugate gaze shift, and clips to [0, 1].

Archetypes are sparse maps over ARKit blendshape names written without their
side: ``"mouthSmile": 0.7`` drives ``mouthSmile_L`` and ``mouthSmile_R`` (the
``Left``/``Right`` spelling is recognised too). Names a face model lacks are
ignored, so the same prior serves the ICT-FaceKit model and smaller heads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synface.config import ConfigBase, require

_SIDES = (("_L", "_R"), ("Left", "Right"))

# Weights at full intensity. One-sided archetypes name only the left side and are
# mirrored at random (see ONE_SIDED).
ARCHETYPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "smile": {"mouthSmile": 0.7, "cheekSquint": 0.3, "mouthDimple": 0.2, "eyeSquint": 0.15},
    "open_smile": {"mouthSmile": 0.9, "jawOpen": 0.3, "cheekSquint": 0.5, "eyeSquint": 0.35,
                   "mouthUpperUp": 0.3, "mouthLowerDown": 0.3},
    "laugh": {"mouthSmile": 1.0, "jawOpen": 0.55, "cheekSquint": 0.7, "eyeSquint": 0.6,
              "mouthUpperUp": 0.4, "mouthLowerDown": 0.4, "browInnerUp": 0.2},
    "surprise": {"browInnerUp": 0.8, "browOuterUp": 0.8, "eyeWide": 0.6, "jawOpen": 0.35, "mouthFunnel": 0.15},
    "fear": {"browInnerUp": 0.8, "browOuterUp": 0.3, "eyeWide": 0.6, "mouthStretch": 0.5, "jawOpen": 0.15},
    "anger": {"browDown": 0.8, "eyeSquint": 0.4, "noseSneer": 0.3, "mouthPress": 0.4, "mouthFrown": 0.3},
    "sadness": {"browInnerUp": 0.6, "mouthFrown": 0.6, "mouthShrugLower": 0.4, "eyeLookDown": 0.2,
                "eyeSquint": 0.1},
    "disgust": {"noseSneer": 0.7, "mouthUpperUp": 0.5, "browDown": 0.4, "eyeSquint": 0.3,
                "mouthShrugUpper": 0.4, "cheekSquint": 0.2},
    "talk_a": {"jawOpen": 0.45, "mouthLowerDown": 0.25, "mouthUpperUp": 0.1},
    "talk_o": {"mouthFunnel": 0.5, "mouthPucker": 0.35, "jawOpen": 0.25},
    "talk_e": {"mouthStretch": 0.4, "jawOpen": 0.15, "mouthSmile": 0.15, "mouthLowerDown": 0.15},
    "talk_m": {"mouthPress": 0.5, "mouthRollLower": 0.3, "mouthRollUpper": 0.2},
    "talk_f": {"mouthRollLower": 0.5, "mouthUpperUp": 0.2, "jawOpen": 0.05},
    "blink": {"eyeBlink": 1.0},
    "squint": {"eyeSquint": 0.7, "cheekSquint": 0.3, "browDown": 0.2},
    "smirk": {"mouthSmile_L": 0.7, "mouthDimple_L": 0.3, "cheekSquint_L": 0.25, "eyeSquint_L": 0.1},
    "pout": {"mouthPucker": 0.8, "mouthFunnel": 0.2, "mouthShrugLower": 0.2},
    "cheek_puff": {"cheekPuff": 0.7, "mouthPress": 0.2},
}
ONE_SIDED = frozenset({"smirk"})

DEFAULT_PROBABILITIES: dict[str, float] = {
    "neutral": 0.22, "smile": 0.14, "open_smile": 0.08, "laugh": 0.03, "surprise": 0.05, "fear": 0.02,
    "anger": 0.04, "sadness": 0.04, "disgust": 0.03, "talk_a": 0.05, "talk_o": 0.04, "talk_e": 0.04,
    "talk_m": 0.04, "talk_f": 0.02, "blink": 0.04, "squint": 0.04, "smirk": 0.05, "pout": 0.02,
    "cheek_puff": 0.01,
}


@dataclass(frozen=True)
class ExpressionConfig(ConfigBase):
    """How expressions are drawn.

    Attributes:
        frozen: every sample gets the neutral expression (the paper's "no expression" setting).
        archetypes: archetype name -> relative probability (need not sum to 1).
        intensity: range of the uniform scale applied to the chosen archetype.
        asymmetry: largest relative difference between the left and right weight of a pair.
        jitter_count: at most this many extra blendshapes get a faint random weight.
        jitter_scale: largest weight of such an extra blendshape.
        gaze: largest eye rotation as eyeLook* weights (both eyes move together).
    """

    frozen: bool = False
    archetypes: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PROBABILITIES))
    intensity: tuple[float, float] = (0.3, 1.0)
    asymmetry: float = 0.15
    jitter_count: int = 2
    jitter_scale: float = 0.1
    gaze: float = 0.25

    def validate(self) -> None:
        for name, probability in self.archetypes.items():
            require(name in ARCHETYPES, f"archetypes.{name}",
                    f"unknown archetype; valid: {', '.join(ARCHETYPES)}")
            require(probability >= 0.0, f"archetypes.{name}", f"{probability} must not be negative")
        require(sum(self.archetypes.values()) > 0.0, "archetypes", "needs at least one positive probability")
        low, high = self.intensity
        require(0.0 <= low <= high <= 1.0, "intensity", f"{self.intensity} must satisfy 0 <= low <= high <= 1")
        require(0.0 <= self.asymmetry <= 1.0, "asymmetry", f"{self.asymmetry} is outside [0, 1]")
        require(self.jitter_count >= 0, "jitter_count", f"{self.jitter_count} must not be negative")
        require(0.0 <= self.jitter_scale <= 1.0, "jitter_scale", f"{self.jitter_scale} is outside [0, 1]")
        require(0.0 <= self.gaze <= 1.0, "gaze", f"{self.gaze} is outside [0, 1]")


def _side_names(base: str) -> list[tuple[str, str]]:
    """Both spellings of the (left, right) names of ``base``."""
    return [(base + left, base + right) for left, right in _SIDES]


class ExpressionPrior:
    """Draws expression weights for one face model's blendshapes.

    Args:
        expression_names: the model's blendshape names, in basis order.
        config: the expression settings.
    """

    def __init__(self, expression_names: tuple[str, ...] | list[str], config: ExpressionConfig | None = None):
        self.names = tuple(expression_names)
        self.config = config if config is not None else ExpressionConfig()
        self._index = {name: i for i, name in enumerate(self.names)}
        self._mirror = np.arange(len(self.names))  # (Ke,) index of each blendshape's other side
        pairs = []
        for name, i in self._index.items():
            for left, right in _SIDES:
                if name.endswith(left) and name[: -len(left)] + right in self._index:
                    j = self._index[name[: -len(left)] + right]
                    self._mirror[i], self._mirror[j] = j, i
                    pairs.append((i, j))
        self._pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)  # (P, 2) left, right
        chosen = {k: p for k, p in self.config.archetypes.items() if p > 0.0}
        self._archetypes = [self._resolve(ARCHETYPES[k]) for k in chosen]
        self._one_sided = [k in ONE_SIDED for k in chosen]
        total = sum(chosen.values())
        self._probabilities = np.array([p / total for p in chosen.values()])
        self._gaze = {key: self._present(key) for key in ("eyeLookUp", "eyeLookDown")}
        self._gaze_sides = [self._present("eyeLookOut_L") + self._present("eyeLookIn_R"),
                            self._present("eyeLookOut_R") + self._present("eyeLookIn_L")]

    def _present(self, base: str) -> list[int]:
        """Indices of ``base`` (or both its sides, in either spelling) that this model has."""
        names = [base] + [n for pair in _side_names(base) for n in pair]
        for spelling, other in zip(_SIDES, _SIDES[::-1]):  # "mouthSmile_L" <-> "mouthSmileLeft"
            for side, other_side in zip(spelling, other):
                if base.endswith(side):
                    names.append(base[: -len(side)] + other_side)
        return [self._index[n] for n in names if n in self._index]

    def _resolve(self, weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(indices, weights) of an archetype over this model's blendshapes."""
        index, value = [], []
        for base, weight in weights.items():
            for i in self._present(base):
                index.append(i)
                value.append(weight)
        return np.array(index, dtype=np.int64), np.array(value, dtype=np.float64)

    def neutral(self) -> np.ndarray:
        """(Ke,) float32 zeros: the rest face."""
        return np.zeros(len(self.names), dtype=np.float32)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One expression: (Ke,) float32 weights in [0, 1], a pure function of ``rng``'s state."""
        config = self.config
        weights = np.zeros(len(self.names), dtype=np.float64)
        if config.frozen or not self.names:
            return weights.astype(np.float32)
        choice = int(rng.choice(len(self._archetypes), p=self._probabilities))
        index, value = self._archetypes[choice]
        if self._one_sided[choice] and rng.random() < 0.5:
            index = self._mirror[index]
        weights[index] = value * rng.uniform(*config.intensity)
        shift = rng.uniform(-config.asymmetry, config.asymmetry, size=len(self._pairs))  # (P,)
        weights[self._pairs[:, 0]] *= 1.0 + shift  # the two sides move together, not identically
        weights[self._pairs[:, 1]] *= 1.0 - shift
        count = int(rng.integers(0, config.jitter_count + 1))
        if count:
            extra = rng.choice(len(self.names), size=min(count, len(self.names)), replace=False)
            weights[extra] += rng.uniform(0.0, config.jitter_scale, size=len(extra))
        horizontal, vertical = rng.uniform(-config.gaze, config.gaze, size=2)
        weights[self._gaze["eyeLookUp" if vertical > 0 else "eyeLookDown"]] += abs(vertical)
        weights[self._gaze_sides[0 if horizontal > 0 else 1]] += abs(horizontal)
        return np.clip(weights, 0.0, 1.0).astype(np.float32)
