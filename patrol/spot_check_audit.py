"""Auditing a stored spot-check draw: derive it again from its stored seed and inputs alone and compare."""

from __future__ import annotations

from dataclasses import dataclass

from patrol.errors import PatrolError
from patrol.spot_checks import DrawInputs, canonical_sha256, period_count, period_seed
from patrol.tables import SpotCheckDraw


@dataclass(frozen=True)
class DrawVerification:
    """The outcome of deriving a stored draw again from its stored inputs."""

    draw_id: int
    ok: bool
    stored_sha256: str
    computed_sha256: str
    stored_schools: tuple[str, ...]
    derived_schools: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def verdict(self) -> str:
        """One line for a person."""
        if self.ok:
            return (
                f"verified: the stored inputs hash to the stored SHA-256 and give the same "
                f"{len(self.stored_schools)} schools in the same order"
            )
        return "NOT verified: " + "; ".join(self.problems)


def verify_draw(draw: SpotCheckDraw, *, quota_seed: int | None = None) -> DrawVerification:
    """Derive ``draw`` again from its stored inputs alone (no database reads) and compare.

    With ``quota_seed`` (the server knows it; nobody else does) it also checks that the draw's seed is the
    period seed derived from it, i.e. that the seed was not picked to steer the draw.
    """
    problems = []
    computed = canonical_sha256(draw.inputs)
    if computed != draw.inputs_sha256:
        problems.append(
            f"the inputs were changed after the draw (SHA-256 {computed} != stored {draw.inputs_sha256})"
        )
    stored = tuple(str(code) for code in draw.schools)
    derived: tuple[str, ...] = ()
    try:
        inputs = DrawInputs.from_json(draw.inputs)
    except PatrolError as err:
        problems.append(str(err))
    else:
        derived = inputs.derive().schools
        for label, have, want in (
            ("quota", draw.quota_id, inputs.quota_id),
            ("seed", draw.seed, inputs.seed),
            ("period start", draw.period_start, inputs.period_start),
            ("count", draw.count, inputs.count),
        ):
            if have != want:
                problems.append(f"the draw's {label} {have} is not the inputs' {want}")
        seeded = period_count(inputs.seed, inputs.min_count, inputs.max_count, inputs.period_start)
        if inputs.count != seeded:
            problems.append(
                f"the count {inputs.count} is not the seeded count {seeded} of "
                f"{inputs.min_count}..{inputs.max_count}"
            )
        if derived != stored:
            problems.append(f"the inputs give {list(derived)}, but the draw lists {list(stored)}")
        if quota_seed is not None and draw.seed != period_seed(quota_seed, draw.quota_id, draw.period_start):
            problems.append(
                f"the seed {draw.seed} is not the period seed that quota {draw.quota_id}'s secret seed gives "
                f"for {draw.period_start.isoformat()}"
            )
    return DrawVerification(
        draw_id=draw.id,
        ok=not problems,
        stored_sha256=draw.inputs_sha256,
        computed_sha256=computed,
        stored_schools=stored,
        derived_schools=derived,
        problems=tuple(problems),
    )
