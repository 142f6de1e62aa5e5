"""The read benchmark: its random dataset is a valid generated dataset and the timings run."""

from __future__ import annotations

from synface.data.bench import measure_read_throughput, write_random_dataset
from synface.data.synthetic import SyntheticDataset


def test_random_dataset_reads_back_and_rates_are_positive(tmp_path):
    root = write_random_dataset(tmp_path / "bench", num_identities=6, samples_per_identity=5,
                                image_size=(8, 6), shard_size=7)
    dataset = SyntheticDataset(root)
    assert len(dataset) == 30 and dataset.num_classes == 6 and len(dataset.shards) == 5
    assert dataset[29][1].tolist() == [5, 5]
    rates = measure_read_throughput(root, batch_size=8, workers=0)
    assert set(rates) == {"get_batch", "getitem", "train_source"} and min(rates.values()) > 0
