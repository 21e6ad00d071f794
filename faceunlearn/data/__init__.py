"""Data: the packed aligned-face format, synthetic faces, splits, samplers and the DataModule."""

from faceunlearn.data.datamodule import FaceDataModule
from faceunlearn.data.packed import PackedDatasetError, PackedFaces, PackedFacesWriter

__all__ = ["FaceDataModule", "PackedDatasetError", "PackedFaces", "PackedFacesWriter"]
