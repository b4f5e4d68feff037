"""vega_eval.media: which frames a contact sheet shows, and that its tiles are those frames."""

import numpy as np
import pytest
from PIL import Image

from vega_eval.media import contact_sheet, save_contact_sheet, save_gif, sheet_indices


def test_sheet_indices_spread_evenly_with_both_ends():
    assert sheet_indices(220, 16)[0] == 0 and sheet_indices(220, 16)[-1] == 219
    assert sheet_indices(9, 3) == [0, 4, 8]
    assert sheet_indices(5, 16) == [0, 1, 2, 3, 4]  # fewer frames than tiles: all of them
    assert sheet_indices(7, 1) == [6]
    assert sheet_indices(0, 16) == [] and sheet_indices(10, 0) == []
    steps = np.diff(sheet_indices(220, 16))
    assert steps.min() >= 14 and steps.max() <= 15


def _frames(n, h=6, w=10):
    """Frame i filled with the value 10·i, so a tile says which frame it holds."""
    return [np.full((h, w, 3), 10 * i, np.uint8) for i in range(n)]


def test_contact_sheet_tiles_the_picked_frames_in_order():
    sheet = contact_sheet(_frames(9), count=3, columns=2, scale=3, labels=False)
    assert sheet.shape == (2 * 6 * 3, 2 * 10 * 3, 3)
    assert sheet[0, 0, 0] == 0 and sheet[0, 30, 0] == 40 and sheet[18, 0, 0] == 80  # frames 0, 4, 8
    assert not sheet[18:, 30:].any()  # the unused last tile stays black


def test_contact_sheet_labels_mark_only_the_corner():
    frames = [np.full((32, 48, 3), 200, np.uint8)]
    plain = contact_sheet(frames, labels=False, scale=1)
    labelled = contact_sheet(frames, labels=True, scale=1)
    assert (labelled != plain).any() and (labelled[20:, :] == plain[20:, :]).all()


def test_contact_sheet_refuses_nothing_to_show():
    with pytest.raises(ValueError, match="no frames"):
        contact_sheet([])
    with pytest.raises(ValueError, match="positive"):
        contact_sheet(_frames(2), columns=0)
    with pytest.raises(ValueError, match="positive"):
        contact_sheet(_frames(2), count=0)


def test_written_files_are_real_images(tmp_path):
    frames = _frames(12)
    save_contact_sheet(frames, str(tmp_path / "sheet.png"), count=4, columns=4, scale=2)
    save_gif(frames, str(tmp_path / "ep.gif"), every=3)
    with Image.open(tmp_path / "sheet.png") as png:
        assert png.size == (4 * 10 * 2, 6 * 2)
    with Image.open(tmp_path / "ep.gif") as gif:
        assert gif.n_frames == 4
