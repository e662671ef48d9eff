"""Which face to report when several are found: the largest, with a stable id.

The rule, applied identically on every analysed frame:

1. Every face found on the frame is matched to the tracks of earlier frames by
   box overlap (IoU, greedy, best pair first, at least ``min_iou``); a face that
   matches no track starts a new track with the next integer id. A track not
   seen for ``max_missed`` analysed frames is forgotten.
2. The reported face is the **largest** (box area). To keep two faces
   of about the same size from flickering, the face already being reported
   stays selected while it is present and at least ``1 / switch_ratio`` of
   the largest face's area.
3. When the reported track id differs from the one reported last (ignoring
   frames with no face), the observation says ``track_switched=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Box", "iou", "FaceTracker", "TrackChoice"]

#: A face box ``(x0, y0, x1, y1)``, ``x0 <= x1`` and ``y0 <= y1`` (pixels, or fractions
#: of the image size: :class:`~streamline.face.FaceAnalyzer` tracks in fractions so
#: that a resolution change keeps the tracks).
Box = tuple[float, float, float, float]


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes, in [0, 1] (0 when both are empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True, slots=True)
class TrackChoice:
    """The outcome of one :meth:`FaceTracker.update`.

    Attributes:
        index: index of the reported face in the list passed in, or None when none.
        track_id: its track id, or None when no face.
        switched: True when the reported track differs from the last one reported.
        track_ids: the track id of every face passed in, in the same order.
    """

    index: int | None
    track_id: int | None
    switched: bool
    track_ids: tuple[int, ...]


class _Track:
    __slots__ = ("track_id", "box", "missed")

    def __init__(self, track_id: int, box: Box) -> None:
        self.track_id = track_id
        self.box = box
        self.missed = 0


class FaceTracker:
    """Match faces across frames and pick the one to report (see the module docstring).

    Args:
        min_iou: the least overlap for a face to continue a track.
        max_missed: analysed frames a track survives without a match.
        switch_ratio: how much larger (by area) another face must be to take over.
    """

    def __init__(self, *, min_iou: float = 0.3, max_missed: int = 15, switch_ratio: float = 1.25) -> None:
        self._min_iou = min_iou
        self._max_missed = max_missed
        self._switch_ratio = switch_ratio
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._reported: int | None = None

    def reset(self, *, forget_reported: bool = False) -> None:
        """Forget all tracks (ids keep counting up, so an id is never reused).

        Args:
            forget_reported: also forget which track was reported last, so the next
                face is not reported as a switch (a fresh start). By default the
                next face, on a new track, counts as a switch.
        """
        self._tracks.clear()
        if forget_reported:
            self._reported = None

    def update(self, boxes: list[Box]) -> TrackChoice:
        """Take the faces of one analysed frame; return the face to report."""
        pairs = sorted(
            ((iou(box, track.box), bi, ti) for bi, box in enumerate(boxes) for ti, track in enumerate(self._tracks)),
            reverse=True,
        )
        box_track: dict[int, _Track] = {}
        used: set[int] = set()
        for overlap, bi, ti in pairs:
            if overlap < self._min_iou:
                break
            if bi in box_track or ti in used:
                continue
            box_track[bi] = self._tracks[ti]
            used.add(ti)
        for ti, track in enumerate(self._tracks):
            if ti not in used:
                track.missed += 1
        self._tracks = [t for ti, t in enumerate(self._tracks) if ti in used or t.missed <= self._max_missed]
        for bi, box in enumerate(boxes):
            track = box_track.get(bi)
            if track is None:
                track = _Track(self._next_id, box)
                self._next_id += 1
                self._tracks.append(track)
                box_track[bi] = track
            track.box = box
            track.missed = 0
        ids = tuple(box_track[bi].track_id for bi in range(len(boxes)))
        if not boxes:
            return TrackChoice(None, None, False, ids)
        areas = [_area(b) for b in boxes]
        chosen = max(range(len(boxes)), key=lambda i: (areas[i], -i))
        if self._reported is not None and self._reported in ids:
            current = ids.index(self._reported)
            if areas[current] * self._switch_ratio >= areas[chosen]:
                chosen = current
        track_id = ids[chosen]
        switched = self._reported is not None and track_id != self._reported
        self._reported = track_id
        return TrackChoice(chosen, track_id, switched, ids)
