"""The xyz reader: every malformed-file case gets its own one-line reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bad_xyz_cases import BAD_XYZ_CASES

from ase_au20.database.xyz import XyzError, parse_xyz_text, read_isomer, read_isomers, xyz_files

GOOD = ["20", "-1550.123456"] + [f"Au {i * 2.8:.4f} {(i % 3) * 0.1:.4f} 0.0" for i in range(20)]


def test_good_text_parses_with_energy_and_positions() -> None:
    energy, atoms = parse_xyz_text("\n".join(GOOD) + "\n\n")
    assert energy == pytest.approx(-1550.123456)
    assert len(atoms) == 20
    assert atoms.get_chemical_formula() == "Au20"
    np.testing.assert_allclose(atoms.positions[3], [8.4, 0.0, 0.0])


def test_read_isomer_attaches_energy_and_id(tmp_path: Path) -> None:
    path = tmp_path / "42.xyz"
    path.write_text("\n".join(GOOD) + "\n")
    isomer = read_isomer(path)
    assert (isomer.cluster_id, isomer.source) == (42, "42.xyz")
    assert isomer.atoms.get_potential_energy() == pytest.approx(-1550.123456)


@pytest.mark.parametrize("name", sorted(BAD_XYZ_CASES))
def test_each_bad_file_has_its_reason(tmp_path: Path, name: str) -> None:
    content, fragment = BAD_XYZ_CASES[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(XyzError) as err:
        read_isomer(path)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_folder_read_keeps_good_and_reports_each_bad(
    bad_xyz_dir: tuple[Path, list[str], dict[str, str]],
) -> None:
    folder, good, expected = bad_xyz_dir
    isomers, bad = read_isomers(xyz_files(folder), progress=False)
    assert sorted(i.source for i in isomers) == sorted(good)
    reasons = {b.source: b.reason for b in bad}
    assert set(reasons) == set(expected)
    for name, fragment in expected.items():
        assert fragment in reasons[name], name


def test_duplicate_id_is_reported(tmp_path: Path) -> None:
    (tmp_path / "7.xyz").write_text("\n".join(GOOD) + "\n")
    (tmp_path / "007.xyz").write_text("\n".join(GOOD) + "\n")
    isomers, bad = read_isomers(xyz_files(tmp_path), progress=False)
    assert [i.cluster_id for i in isomers] == [7]
    assert len(bad) == 1 and "id 7 already read from" in bad[0].reason


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="xyz folder not found"):
        xyz_files(tmp_path / "nope")
