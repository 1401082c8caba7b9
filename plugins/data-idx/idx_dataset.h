// The dataset reader "idx": MNIST-format image/label file pairs (Fashion-MNIST by default),
// loaded whole at open, then read in batches as f32 images [N, 1, rows, cols], normalised, and
// i64 labels [N], with optional random-crop and horizontal-flip augmentation.
//
// Augmentation runs only when read() gets a seed != 0. Its randomness comes from a
// counter-based generator keyed by (seed, position in the batch), so a batch is the same
// whatever the thread count or the order in which samples are filled.
#pragma once

#include <cstdint>
#include <dsk/dsk_plugin.hpp>
#include <string>

#include "idx_file.h"

namespace dsk::idx {

inline constexpr const char* kFashionMnistRoot = "/usr/share/datasets/fashion-mnist";

struct IdxOptions {
    std::string name = "fashion-mnist";  // "fashion-mnist" | "mnist" | "custom"
    std::string root = kFashionMnistRoot;
    std::string split = "train";  // "train" | "test"
    std::string images;           // explicit paths: used when set, required for "custom"
    std::string labels;
    int64_t limit = 0;  // the first `limit` samples only; 0 = all
    bool normalize = true;
    double mean = 0.2860;  // applied after scaling bytes to [0, 1]
    double std = 0.3530;
    int64_t random_crop_padding = 0;  // 0..16
    bool horizontal_flip = false;

    // From the dataset's pipeline table (keys absent: the defaults above).
    static IdxOptions from_config(const Config& config);
};

// The image and label files `options` name: explicit paths where set, else
// <root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (or without .gz when only the
// uncompressed file exists). INVALID_ARGUMENT for options that do not fit together.
struct IdxPaths {
    std::string images;
    std::string labels;
};
IdxPaths resolve_paths(const IdxOptions& options);

class IdxDataset {
  public:
    // Loads and checks both files. Throws dsk::Error (NOT_FOUND, DATA_LOSS, INVALID_ARGUMENT).
    explicit IdxDataset(const IdxOptions& options);

    uint64_t size() const { return size_; }
    int64_t rows() const { return images_.rows(); }
    int64_t cols() const { return images_.cols(); }

    // Fills `images` (count * rows * cols floats) and `labels` (count values) with the samples
    // `indices`, augmented when seed != 0. INVALID_ARGUMENT for an index >= size().
    void read(const uint64_t* indices, size_t count, uint64_t seed, float* images,
              int64_t* labels) const;

    // For dsk_dataset_info: valid as long as this dataset.
    const char* const* field_names() const;
    const dsk_tensor_desc* fields() const { return fields_; }

  private:
    void fill_sample(size_t position, uint64_t index, uint64_t seed, float* out) const;

    IdxOptions options_;
    IdxFile images_;
    IdxFile labels_;
    uint64_t size_ = 0;
    float lut_[256];  // byte -> normalised value
    dsk_tensor_desc fields_[2];
};

// The registered reader "idx" (static storage).
const dsk_dataset_iface& idx_dataset_iface();

}  // namespace dsk::idx
