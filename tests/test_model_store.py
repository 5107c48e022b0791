"""Model files: safetensors round trip with checksum; corrupt or foreign files refused."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from cidir.config import RunConfig
from cidir.errors import InputError
from cidir.fields import ConditionedTransform
from cidir.geometry import Grid
from cidir.io import model_store
from cidir.io.model_store import load_model, read_metadata, save_model
from cidir.models import DeformationModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(kind: str = "cidir") -> RunConfig:
    return RunConfig().with_overrides({"model.kind": kind, "model.width": 32,
                                       "model.hidden_layers": 2,
                                       "model.harmonizer_widths": [8]})


def _transform(config: RunConfig, ndim: int) -> ConditionedTransform:
    torch.manual_seed(0)
    model = DeformationModel(config.model, ndim, config.num_conditions)
    with torch.no_grad():  # non-trivial weights everywhere
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    if ndim == 3:
        grid = Grid((10, 8, 6), (0.9, 1.1, 2.5), (-5.0, 3.0, 12.0),
                    (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    else:
        grid = Grid((12, 9), (0.7, 1.9), (4.0, -2.0), (1.0, 0.0, 0.0, -1.0))
    init = np.eye(ndim + 1)
    init[:ndim, :ndim] *= 1.05
    init[:ndim, ndim] = np.arange(1, ndim + 1) * 0.5
    return ConditionedTransform(model, grid, init)


@pytest.fixture
def saved(tmp_path):
    config = _config()
    transform = _transform(config, 3)
    path = tmp_path / "model.safetensors"
    save_model(path, transform, config)
    return path, transform, config


@pytest.mark.parametrize(("kind", "ndim"), [("cidir", 3), ("siren", 2), ("relu", 3)])
def test_round_trip(tmp_path, kind, ndim):
    """Saved and loaded transforms give identical points, and keep grid, affine and config."""
    config = _config(kind)
    transform = _transform(config, ndim)
    path = tmp_path / "m.safetensors"
    save_model(path, transform, config)
    loaded, loaded_config = load_model(path, expected_config=config)
    assert loaded_config == config
    assert loaded.grid == transform.grid
    np.testing.assert_array_equal(loaded.init_matrix, transform.init_matrix)
    points = transform.grid.world_points()[::3]
    for alpha in (0.0, 0.7):
        expected = transform.map_points(points, alpha)
        np.testing.assert_array_equal(loaded.map_points(points, alpha), expected)
    assert np.abs(transform.map_points(points, 0.7) - points).max() > 0.1
    assert not loaded.model.training


def test_file_is_safetensors_without_pickle(saved, monkeypatch):
    """The file opens with safetensors.safe_open, carries its metadata, and loading never
    calls pickle or torch.load."""
    path, transform, _ = saved
    with safe_open(str(path), framework="pt") as f:
        names = set(f.keys())
        metadata = f.metadata()
    assert names == set(transform.model.state_dict())
    assert metadata["format"] == model_store.FORMAT
    assert len(metadata["sha256"]) == 64
    assert read_metadata(path)["grid"] == transform.grid.to_json()

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle-based loading used")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    load_model(path)


def test_truncated_file_refused(saved):
    """A file cut short raises InputError naming it."""
    path, _, _ = saved
    data = path.read_bytes()
    for keep in (len(data) - 16, len(data) // 2, 20, 4):
        path.write_bytes(data[:keep])
        with pytest.raises(InputError, match="model.safetensors"):
            load_model(path)


def test_tampered_tensor_bytes_refused(saved):
    """Flipping bytes in the tensor data section (header intact) fails the checksum."""
    path, _, _ = saved
    data = bytearray(path.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    start = 8 + header_len
    assert len(data) - start > 1000
    for offset in (start + 10, len(data) - 3):
        tampered = bytearray(data)
        tampered[offset] ^= 0xFF
        path.write_bytes(bytes(tampered))
        with pytest.raises(InputError, match="checksum"):
            load_model(path)


def test_non_safetensors_files_refused(tmp_path):
    """A text file, an empty file, a missing file and a plain safetensors file without the
    cidir metadata are refused with InputError."""
    text = tmp_path / "notes.safetensors"
    text.write_text("this is not a model\n" * 10)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign), metadata={"format": "other"})
    for path in (text, empty, foreign, tmp_path / "missing.safetensors"):
        with pytest.raises(InputError, match=path.name):
            load_model(path)


def test_different_config_refused(saved):
    """expected_config different from the file's config raises InputError."""
    path, _, config = saved
    other = config.with_overrides({"training.iterations": 7})
    with pytest.raises(InputError, match="different config"):
        load_model(path, expected_config=other)
    load_model(path, expected_config=config)


def test_tensors_not_fitting_config_refused(tmp_path):
    """A file whose tensors do not fit its recorded config raises InputError."""
    config = _config()
    transform = _transform(config, 3)
    path = tmp_path / "m.safetensors"
    save_model(path, transform, config.with_overrides({"model.width": 16}))
    with pytest.raises(InputError, match="do not fit"):
        load_model(path)


def test_atomic_save_leaves_no_temp_files(tmp_path, monkeypatch):
    """Saving leaves only the model file; a failing save leaves nothing at all and an
    existing file untouched."""
    config = _config()
    transform = _transform(config, 3)
    path = tmp_path / "out" / "model.safetensors"
    save_model(path, transform, config)
    save_model(path, transform, config)  # overwrite
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]
    before = path.read_bytes()

    def failing(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(model_store, "save_file", failing)
    with pytest.raises(InputError, match="cannot write it .disk full"):
        save_model(path, transform, config)
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]
    assert path.read_bytes() == before
    with pytest.raises(InputError, match="cannot write"):
        save_model(tmp_path / "new.safetensors", transform, config)
    assert not (tmp_path / "new.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
