"""Distances against the ground-plane positions of PETS09-S2L1 and TUD-Stadtmitte (metres in
the MOT ground truth): the homography is fitted on the first half of each sequence and
checked on the second half."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.geometry import fit_homography
from appliance.runtime.analysis.distance import CalibratedDistance, CenterPointsDistance, FourCornersDistance
from evaluation import distance_errors, fit_floor_homography, load_mot_ground_truth

TRUTH = {
    "PETS09-S2L1": "sequences/PETS09-S2L1/gt/gt.txt",
    "TUD-Stadtmitte": "sequences/TUD-Stadtmitte/gt/gt.txt",
}


def halves(data: Path, sequence: str) -> tuple[list, list]:  # type: ignore[type-arg]
    truth = load_mot_ground_truth(data / TRUTH[sequence])
    frames = [truth[n] for n in sorted(truth)]
    return frames[: len(frames) // 2], frames[len(frames) // 2 :]


def test_calibrated_distance_on_pets_is_within_15_cm_median(data: Path) -> None:
    fit, check = halves(data, "PETS09-S2L1")
    homography = fit_floor_homography(fit)
    errors = distance_errors(CalibratedDistance(homography), check)
    assert len(errors) > 1000
    assert np.median(errors) <= 15, np.median(errors)
    assert homography.reprojection_error_cm < 10


def test_calibrated_distance_on_tud_stadtmitte(data: Path) -> None:
    fit, check = halves(data, "TUD-Stadtmitte")
    errors = distance_errors(CalibratedDistance(fit_floor_homography(fit)), check)
    assert np.median(errors) <= 15, np.median(errors)


@pytest.mark.parametrize("sequence", TRUTH)
def test_uncalibrated_methods_are_measured_and_far_worse(data: Path, sequence: str) -> None:
    fit, check = halves(data, sequence)
    calibrated = np.median(distance_errors(CalibratedDistance(fit_floor_homography(fit)), check))
    for method in (CenterPointsDistance(170), FourCornersDistance(170)):
        errors = distance_errors(method, check)
        assert np.isfinite(errors).all()
        assert np.median(errors) > calibrated


def test_four_calibration_points_reproject_exactly() -> None:
    image = [(100, 500), (700, 500), (600, 200), (200, 200)]
    floor = [(0, 0), (600, 0), (600, 1200), (0, 1200)]
    homography = fit_homography(image, floor)
    assert homography.reprojection_error_cm < 1e-6
    np.testing.assert_allclose(homography.to_floor(image), floor, atol=1e-6)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ([(0, 0), (1, 0), (0, 1)], "at least 4 points, got 3"),
        ([(0, 0), (10, 0), (20, 0), (30, 0)], "no three on a line"),
        ([(0, 0), (10, 0), (10, 0), (0, 10)], "appears more than once"),
    ],
)
def test_degenerate_calibrations_are_refused(image: list[tuple[float, float]], message: str) -> None:
    floor = [(0, 0), (100, 0), (100, 100), (0, 100)][: len(image)]
    with pytest.raises(ValueError, match=message):
        fit_homography(image, floor)
