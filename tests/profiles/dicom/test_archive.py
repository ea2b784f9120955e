"""The archive's paths: an index row names a file inside the archive, or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiles.dicom.archive import Archive


def test_an_instance_path_is_inside_the_archive(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    assert archive.path("1.2.3/1.2.3.4/1.2.3.4.5.dcm") == tmp_path / "1.2.3" / "1.2.3.4" / "1.2.3.4.5.dcm"


@pytest.mark.parametrize(
    "relative",
    [
        "../1.2/1.2.3/1.2.3.4.dcm",
        "1.2/../../etc/passwd.dcm",
        "/etc/1.2/1.2.dcm",
        "1.2/1.2.3/1.2.3.4",
        "1.2/1.2.3/x.dcm",
        "1.2/1.2.3/4/5.dcm",
        "1.2\\..\\x/1.2/1.2.dcm",
        "",
    ],
)
def test_anything_else_is_refused(relative: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a path in the archive"):
        Archive(tmp_path).path(relative)
