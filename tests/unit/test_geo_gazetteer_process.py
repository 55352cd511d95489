"""The offline gazetteer in a child process (geo/gazetteer_process.py) answers what it
answers in this process, and starts again when its process ended."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from geo.gazetteer import OfflineGeocoder
from geo.gazetteer_process import OfflineGeocoderProcess

ADDRESSES = [
    {"city": "Lyon", "country": "France"},
    {"street": "3 rue Neuve", "postal_code": "69001", "city": "Lyon", "country": "FR"},
    {"city": "Springfield", "region": "IL", "country": "US"},
    {"country": "Germany"},
    {"street": "1 Nowhere Lane", "city": "Zzyzxqq"},
    {"city": "Montréal"},
]


@pytest.fixture(scope="module")
def in_child() -> Iterator[OfflineGeocoderProcess]:
    geocoder = OfflineGeocoderProcess()
    yield geocoder
    geocoder.close()


def test_the_child_answers_what_this_process_answers(in_child: OfflineGeocoderProcess) -> None:
    here = OfflineGeocoder()
    answers = [in_child.geocode_address(**address) for address in ADDRESSES]
    assert answers == [here.geocode_address(**address) for address in ADDRESSES]
    assert answers[0] is not None and answers[0].precision == "city" and answers[-2] is None


def test_a_child_that_ended_is_started_again(in_child: OfflineGeocoderProcess) -> None:
    assert in_child.geocode_address(city="Paris") is not None
    assert in_child._child is not None
    in_child._child.kill()
    in_child._child.wait()
    found = in_child.geocode_address(city="Paris", country="FR")
    assert found is not None and found.source == "offline"


def test_a_dataset_that_does_not_exist_is_refused_here() -> None:
    with pytest.raises(ValueError, match="min_population"):
        OfflineGeocoderProcess(min_population=7)
