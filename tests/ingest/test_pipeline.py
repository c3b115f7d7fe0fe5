"""Work-unit planning: boundaries depend on the input list only."""

from biomedica.ingest.pipeline import plan_units


def test_units_are_fixed_slices_of_the_sorted_list():
    items = [f"a{i:03d}.xml" for i in range(10)]
    units = plan_units(items, 4)
    assert [u.unit_id for u in units] == [0, 1, 2]
    assert units[0].item_ids == tuple(items[:4])
    assert units[2].item_ids == tuple(items[8:])


def test_limit_keeps_earlier_units_identical():
    items = [f"a{i:03d}.xml" for i in range(10)]
    full, limited = plan_units(items, 3), plan_units(items[:7], 3)
    assert limited[:2] == full[:2]
    assert limited[2].item_ids == ("a006.xml",)
