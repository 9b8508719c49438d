"""Property tests (hypothesis) of the pure geometry and analysis code."""

from __future__ import annotations

import itertools

import numpy as np
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from appliance.config.model import AreaConfig, OccupancyAlertConfig, ViolationAlertConfig
from appliance.geometry import calibration_problem, fit_homography
from appliance.planar import polygon_problem
from appliance.runtime.analysis.distance import CenterPointsDistance, FourCornersDistance
from appliance.runtime.analysis.occupancy import CameraCounts, area_status
from appliance.runtime.analysis.violations import EpisodeTracker
from appliance.runtime.types import Track
from tests.test_violations import distancing

coordinate = st.floats(min_value=0, max_value=2000, allow_nan=False)
point = st.tuples(coordinate, coordinate)


@settings(max_examples=500)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=3, max_size=7))
def test_the_plain_polygon_check_agrees_with_shapely(points: list[tuple[int, int]]) -> None:
    """Small integer grids give many touching, crossing and doubled-back rings."""
    ring = [p for i, p in enumerate(points) if p != points[i - 1]]
    assume(len(ring) >= 3)
    polygon = shapely.Polygon(ring)
    simple = polygon.is_valid and polygon.convex_hull.area > 0
    assert (polygon_problem(ring) is None) == simple, (ring, polygon_problem(ring), shapely.is_valid_reason(polygon))


@st.composite
def boxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    x, y = draw(coordinate), draw(coordinate)
    return x, y, x + draw(st.floats(5, 300)), y + draw(st.floats(10, 600))


@settings(max_examples=200)
@given(st.lists(point, min_size=4, max_size=8, unique=True), st.lists(point, min_size=4, max_size=8, unique=True))
def test_homography_round_trips_image_to_floor_and_back(image: list, floor: list) -> None:  # type: ignore[type-arg]
    size = min(len(image), len(floor))
    image, floor = image[:size], floor[:size]
    assume(calibration_problem(image, floor) is None)
    homography = fit_homography(image, floor)
    assume(abs(np.linalg.det(homography.matrix)) > 1e-9 and np.linalg.cond(homography.matrix) < 1e8)
    probes = np.array(image, dtype=float)
    floor_points = homography.to_floor(probes)
    assume(np.isfinite(floor_points).all() and np.abs(floor_points).max() < 1e7)
    np.testing.assert_allclose(homography.to_image(floor_points), probes, rtol=1e-4, atol=1e-3)


@given(st.lists(boxes(), max_size=12), st.sampled_from([CenterPointsDistance(170), FourCornersDistance(170)]))
def test_distance_matrices_are_symmetric_with_a_zero_diagonal(box_list: list, method: CenterPointsDistance) -> None:  # type: ignore[type-arg]
    tracks = [Track(i, box, 1.0, 1) for i, box in enumerate(box_list)]
    matrix = method.matrix(tracks)
    assert matrix.shape == (len(tracks), len(tracks))
    np.testing.assert_allclose(matrix, matrix.T)
    assert (np.diag(matrix) == 0).all()
    assert (matrix >= 0).all()


@given(
    st.lists(st.dictionaries(st.sampled_from([(1, 2), (1, 3), (2, 3)]), st.floats(0, 400)), max_size=80),
    st.floats(0, 2),
    st.floats(0, 2),
    st.floats(0, 50),
)
def test_episodes_of_a_pair_never_overlap(frames: list, min_duration: float, gap: float, hysteresis: float) -> None:  # type: ignore[type-arg]
    tracker = EpisodeTracker("cam", distancing(min_duration, gap, hysteresis))
    ended = []
    for index, distances in enumerate(frames):
        ended += tracker.update(index * 0.1, distances).ended
    ended += tracker.finish()
    for pair in {e.pair for e in ended}:
        spans = sorted((e.start, e.end) for e in ended if e.pair == pair)
        for (_, first_end), (second_start, _) in itertools.pairwise(spans):
            assert first_end is not None and first_end < second_start
        assert all(end is not None and end >= start for start, end in spans)


@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.tuples(st.integers(0, 50), st.integers(0, 50))))
def test_occupancy_is_never_negative(counts: dict[str, tuple[int, int]]) -> None:
    cameras = {name: CameraCounts(people, min(people, violating)) for name, (people, violating) in counts.items()}
    status = area_status(
        AreaConfig(
            "hall",
            ("a", "b", "c"),
            (),
            (),
            "04:00",
            5,
            OccupancyAlertConfig(5, 1, 60),
            ViolationAlertConfig(True, 2, 5, 60, 2),
        ),
        cameras,
        threshold=5,
    )
    assert status.people >= 0 and 0 <= status.people_in_violation <= status.people
    assert 0.0 <= status.environment_score <= 1.0
