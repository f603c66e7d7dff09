"""Part groups, the video-level part-state labels of System 1 and the most-frequent baseline.

Kinetics-TPS annotates 10 parts; System 1 (and its baseline) reasons about 6 part groups:

    head (head), hand (left/right hand), arm (left/right arm), hip (hip), leg (left/right leg),
    foot (left/right foot)

**Video-level labels** (`video_labels`): for each video and group, count the states of every
annotated part of that group over every human of every annotated frame; the most frequent one
is the video's state for that group, written as the label `"<action>_<Group>_<state>"` (e.g.
`belly_dancing_Head_none`; the group capitalised). Ties go to the state first in alphabetical
order; a group the video never annotates gets the state "none" (the release's "no movement").
Seven recognisers are trained on these labels: one per group, plus the action.

**Most-frequent baseline** (`most_frequent_states`): per action class and part name, the state
most frequent over the training annotations of that action (ties alphabetical, "none" for a
part never annotated for that action); at test time every predicted part of every frame gets
the state of (predicted action, part).
"""

from __future__ import annotations

from collections import Counter

__all__ = ["GROUPS", "GROUP_TITLES", "part_group", "group_parts", "video_state_counts", "video_labels",
           "label_name", "parse_label", "most_frequent_states", "NONE_STATE"]

#: The 6 part groups, in System 1's order.
GROUPS: tuple[str, ...] = ("head", "hand", "arm", "hip", "leg", "foot")
#: How a group is written inside a label.
GROUP_TITLES: dict[str, str] = {g: g.capitalize() for g in GROUPS}
NONE_STATE = "none"


def part_group(part: str) -> str:
    """The group of a part name ('left_hand' -> 'hand'; matching is by the group word in the name)."""
    low = part.lower()
    for g in GROUPS:
        if g in low:
            return g
    raise ValueError(f"part {part!r}: not one of the Kinetics-TPS part groups {GROUPS}")


def group_parts(parts) -> dict[str, tuple[str, ...]]:
    """{group: its part names} for a part vocabulary."""
    out: dict[str, list[str]] = {g: [] for g in GROUPS}
    for p in parts:
        out[part_group(p)].append(p)
    return {g: tuple(v) for g, v in out.items()}


def _most(counter: Counter) -> str:
    if not counter:
        return NONE_STATE
    best = max(counter.values())
    return min(s for s, n in counter.items() if n == best)


def video_state_counts(frames: dict) -> dict[str, Counter]:
    """{group: Counter of states} over every annotated part of `frames` ({frame: {"humans": [...]}})."""
    counts = {g: Counter() for g in GROUPS}
    for frame in frames.values():
        for human in frame["humans"]:
            for name, part in human["parts"].items():
                counts[part_group(name)][part["verb"]] += 1
    return counts


def label_name(action: str, group: str, state: str) -> str:
    """'<action>_<Group>_<state>' (`GROUP_TITLES`)."""
    return f"{action}_{GROUP_TITLES[group]}_{state}"


def parse_label(label: str, group: str) -> tuple[str, str]:
    """(action, state) of a label of `group` (the inverse of `label_name`; actions and states may hold '_')."""
    mark = f"_{GROUP_TITLES[group]}_"
    i = label.find(mark)
    if i < 0:
        raise ValueError(f"label {label!r}: not a {group} label (no {mark!r})")
    return label[:i], label[i + len(mark):]


def video_labels(action: str, frames: dict) -> dict[str, str]:
    """{group: label} of one video (module docstring), plus {"action": action}."""
    counts = video_state_counts(frames)
    out = {g: label_name(action, g, _most(counts[g])) for g in GROUPS}
    out["action"] = action
    return out


def most_frequent_states(videos) -> dict[str, dict[str, str]]:
    """{action: {part: state}} over training `TpsVideo`s (module docstring); parts never annotated for
    an action are absent (the caller predicts "none" for them, `NONE_STATE`)."""
    counts: dict[str, dict[str, Counter]] = {}
    for v in videos:
        per = counts.setdefault(v.action, {})
        for frame in v.frames.values():
            for human in frame["humans"]:
                for name, part in human["parts"].items():
                    per.setdefault(name, Counter())[part["verb"]] += 1
    return {a: {p: _most(c) for p, c in per.items()} for a, per in counts.items()}
