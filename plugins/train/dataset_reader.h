// A dataset of (image, label) samples read through a dataset provider (dsk_dataset_iface), from
// a table of the stage: `train_data = { reader = "idx", split = "train", ... }`.
#pragma once

#include <dsk/dsk_op.hpp>

#include <string>
#include <vector>

namespace dsk::train {

class DatasetReader {
public:
    DatasetReader(const StageContext& ctx, const std::string& key);
    ~DatasetReader();
    DatasetReader(const DatasetReader&) = delete;
    DatasetReader& operator=(const DatasetReader&) = delete;

    uint64_t size() const { return size_; }
    const std::vector<int64_t>& image_shape() const { return image_shape_; }
    int64_t image_size() const { return image_size_; }

    // Reads samples `indices` into `images` (count x image_size floats) and `labels`; `seed` != 0
    // enables augmentation with that randomness.
    void read(const std::vector<uint64_t>& indices, uint64_t seed, float* images, int64_t* labels) const;
    // Throws DATA_LOSS naming the dataset key, the sample and `classes` for a label outside
    // [0, classes): call it before running a graph, whose loss kernel would fail without the hint.
    void check_labels(const std::vector<uint64_t>& indices, const int64_t* labels, int64_t classes) const;

private:
    const dsk_dataset_iface* iface_ = nullptr;
    dsk_dataset* dataset_ = nullptr;
    uint64_t size_ = 0;
    std::vector<int64_t> image_shape_;
    int64_t image_size_ = 0;
    std::string key_;
};

// Validates the stage's dataset table `key` against its reader's params.
void check_dataset_config(const StageContext& ctx, const std::string& key);

}  // namespace dsk::train
