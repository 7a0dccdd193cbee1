"""The console's chart renderer: named for screen readers, axes of whole numbers, bars
and lines where the numbers put them, and text escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from seriesfeed.svgcharts import Chart, Series, bars, lines, nice_ceiling

SVG = "{http://www.w3.org/2000/svg}"


def _axis(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]


def test_a_chart_is_an_image_named_by_its_title() -> None:
    svg = bars(Chart("c1", "Sent <per> day & more", ["1 Dec", "2 Dec"],
                     [Series("en", [1, 2]), Series("es", [0, 3])]))
    root = ET.fromstring(svg)  # well-formed: the title is escaped
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c1-title"
    assert root.find(f"{SVG}title").text == "Sent <per> day & more"  # type: ignore[union-attr]


def test_the_axis_counts_in_whole_steps_up_to_the_largest_total() -> None:
    assert _axis(bars(Chart("c", "t", ["a", "b"], [Series("x", [1, 2]),
                                                   Series("y", [0, 3])]))) == \
        ["0", "2", "4", "6"]
    assert _axis(lines(Chart("c", "t", ["a", "b"], [Series("x", [3, 13])]))) == \
        ["0", "5", "10", "15"]
    assert _axis(lines(Chart("c", "t", ["a"], [Series("x", [0])]))) == \
        ["0", "1", "2", "3", "4"]
    assert nice_ceiling(99) == 100 and nice_ceiling(5) == 6 and nice_ceiling(1234) == 1500


def test_stacked_bars_are_as_tall_as_their_share() -> None:
    svg = bars(Chart("c", "t", ["a", "b"], [Series("x", [2, 0]), Series("y", [2, 4])]))
    heights = [float(h) for h in re.findall(r'<rect class="c\d" x="[\d.]+" y="[\d.]+" '
                                            r'width="[\d.]+" height="([\d.]+)"', svg)]
    # a: 2 + 2, b: 4 alone; the axis tops at 4, so a's two halves add up to b's one bar
    assert len(heights) == 3  # the legend is the page's, not the chart's
    assert abs(heights[0] + heights[1] - heights[2]) < 0.2 and heights[0] == heights[1]


def test_an_empty_chart_says_so() -> None:
    assert Chart("c", "t", ["a"], [Series("x", [0])]).empty
    assert not Chart("c", "t", ["a"], [Series("x", [1])]).empty
