"""The several-faces rule: the largest face, a stable track id, switches reported."""

from __future__ import annotations

from streamline.face.tracking import FaceTracker, iou

BIG = (100.0, 100.0, 200.0, 220.0)  # 100 x 120 px
SMALL = (300.0, 120.0, 360.0, 190.0)  # 60 x 70 px


def _shift(box: tuple[float, float, float, float], dx: float) -> tuple[float, float, float, float]:
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def test_iou() -> None:
    assert iou(BIG, BIG) == 1.0
    assert iou(BIG, SMALL) == 0.0
    assert abs(iou((0, 0, 2, 2), (1, 0, 3, 2)) - 1 / 3) < 1e-12
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_largest_face_is_reported_and_ids_stay_stable_while_faces_move() -> None:
    tracker = FaceTracker()
    first = tracker.update([SMALL, BIG])
    assert first.index == 1 and not first.switched
    big_id, small_id = first.track_ids[1], first.track_ids[0]
    assert big_id != small_id
    for step in range(1, 20):  # both drift right by 4 px per frame, listed in either order
        boxes = [_shift(BIG, 4 * step), _shift(SMALL, 4 * step)]
        if step % 2:
            boxes.reverse()
        choice = tracker.update(boxes)
        assert choice.track_id == big_id
        assert not choice.switched
        assert set(choice.track_ids) == {big_id, small_id}


def test_a_switch_is_reported_once_when_the_other_face_becomes_clearly_larger() -> None:
    tracker = FaceTracker(switch_ratio=1.25)
    a = tracker.update([BIG, SMALL])
    # The small face grows (walks towards the camera) until it is > 1.25x the big one.
    grown = (300.0, 100.0, 420.0, 240.0)  # 120 x 140 = 16800 px^2 vs 12000: ratio 1.4
    near = (300.0, 110.0, 410.0, 230.0)  # 110 x 120 = 13200: ratio 1.1, within the margin
    b = tracker.update([BIG, near])
    assert b.track_id == a.track_id and not b.switched  # hysteresis: no flicker
    c = tracker.update([BIG, grown])
    assert c.track_id == a.track_ids[1] and c.switched
    d = tracker.update([BIG, grown])
    assert d.track_id == c.track_id and not d.switched


def test_absent_frames_do_not_switch_and_a_returning_face_keeps_its_id() -> None:
    tracker = FaceTracker(max_missed=5)
    first = tracker.update([BIG])
    for _ in range(3):
        gone = tracker.update([])
        assert gone.index is None and gone.track_id is None and not gone.switched
    back = tracker.update([_shift(BIG, 5)])
    assert back.track_id == first.track_id and not back.switched


def test_a_face_lost_for_longer_than_max_missed_gets_a_new_id_and_counts_as_a_switch() -> None:
    tracker = FaceTracker(max_missed=2)
    first = tracker.update([BIG])
    for _ in range(4):
        tracker.update([])
    again = tracker.update([BIG])
    assert again.track_id != first.track_id
    assert again.switched
