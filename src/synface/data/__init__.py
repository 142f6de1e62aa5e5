"""Training data: generated datasets and real face sets, subsets, augmentation, domain mixup and loaders.

Every dataset yields ``(image uint8 (3, H, W), targets int64 (2,), weights float32 (2,))``;
:func:`build_train_source` turns a :class:`DataConfig` into device batches of float
images in ``[-1, 1]`` with their soft labels.
"""

from synface.data.augment import create_augmentation
from synface.data.base import LabelledImageDataset, LabelSubset, to_network_input
from synface.data.imagefolder import ImageFolderDataset
from synface.data.loader import DataConfig, RealMixConfig, build_dataset, build_train_source
from synface.data.mixing import domain_mixup, oversampled_batches
from synface.data.real import ATTDataset, CFPDataset, cfp_fold_identities, cfp_split, real_subset
from synface.data.recordio import RecordIODataset, write_recordio
from synface.data.synthetic import SyntheticDataset

__all__ = [
    "ATTDataset",
    "CFPDataset",
    "DataConfig",
    "ImageFolderDataset",
    "LabelSubset",
    "LabelledImageDataset",
    "RealMixConfig",
    "RecordIODataset",
    "SyntheticDataset",
    "build_dataset",
    "build_train_source",
    "cfp_fold_identities",
    "cfp_split",
    "create_augmentation",
    "domain_mixup",
    "oversampled_batches",
    "real_subset",
    "to_network_input",
    "write_recordio",
]
