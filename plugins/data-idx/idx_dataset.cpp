#include "idx_dataset.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <dsk/dsk_op.hpp>
#include <dsk/dsk_random.hpp>
#include <iterator>

namespace dsk::idx {
namespace {

const char* const kNameChoices[] = {"fashion-mnist", "mnist", "custom", nullptr};
const char* const kSplitChoices[] = {"train", "test", nullptr};

const dsk_param_spec kParams[] = {
    param_string("name", "which dataset: fashion-mnist, mnist, or custom (give images and labels)",
                 "\"fashion-mnist\"", kNameChoices),
    param_string("root", "folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]",
                 "\"/usr/share/datasets/fashion-mnist\""),
    param_string("split", "train (train-* files) or test (t10k-* files)", "\"train\"",
                 kSplitChoices),
    param_string("images", "path of the IDX image file (overrides root and split)"),
    param_string("labels", "path of the IDX label file (overrides root and split)"),
    param_int("limit", "read only the first N samples (0: all)", "0", 0, 9007199254740992.0),
    param_bool("normalize", "subtract mean and divide by std after scaling to [0, 1]", "true"),
    param_float("mean", "mean subtracted when normalize is on", "0.2860"),
    param_float("std", "standard deviation divided by when normalize is on (> 0)", "0.3530"),
    param_int("random_crop_padding",
              "augmentation: pad by this many zero pixels and crop back at a random offset", "0", 0,
              16),
    param_bool("horizontal_flip", "augmentation: mirror half of the images left to right", "false"),
};

const char* const kFieldNames[] = {"image", "label", nullptr};

// The work of one pixel for dsk::parallel_for's rule (dsk_work.hpp): a byte read, a table lookup
// and a float written, about 8 bytes' worth of one core's time. Training and evaluation batches
// of 28x28 images (128 and 1000: an estimated 13 and 98 us) are filled on the calling thread.
constexpr double kBytesPerPixel = 8.0;

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

std::string hint_for(const IdxOptions& o, const char* key, bool explicit_path) {
    if (explicit_path) return std::string("check the path in the dataset's `") + key + "` key";
    if (o.name == "fashion-mnist") {
        return "install the Debian package dataset-fashion-mnist or set images/labels";
    }
    return "put the MNIST files ({train,t10k}-{images-idx3,labels-idx1}-ubyte.gz) in root or "
           "set images/labels";
}

// The counter-based generator of the augmentation: draw (position, draw) of a SplitMix64 stream
// keyed by the finalised seed, so every draw depends only on the seed, the position and the
// draw number (README.md, "Normalisation and augmentation").
uint64_t random_bits(uint64_t seed, uint64_t position, uint64_t draw) {
    constexpr uint64_t kDrawsPerSample = 4;
    return dsk::mix(dsk::splitmix64_finalize(seed), position * kDrawsPerSample + draw);
}
// Uniform in [0, n) from the high 32 bits (bias below 2^-32 * n: nothing to see here).
uint32_t uniform_below(uint64_t bits, uint32_t n) {
    return static_cast<uint32_t>(((bits >> 32) * n) >> 32);
}


void check_field(const dsk_tensor_desc& t, const char* name, uint32_t dtype,
                 const std::vector<int64_t>& shape) {
    const bool ok = t.ndim <= DSK_MAX_DIMS && t.dtype == dtype && shape_of(t) == shape &&
                    dsk::is_contiguous(t) && (t.data != nullptr || numel(t) == 0);
    if (!ok) {
        const std::string got = t.ndim <= DSK_MAX_DIMS ? shape_text(shape_of(t)) : "(bad rank)";
        throw Error(DSK_INVALID_ARGUMENT, std::string("dataset 'idx': read: field '") + name +
                                              "' must be a contiguous host tensor " +
                                              dtype_name(dtype) + " " + shape_text(shape) +
                                              ", got " + dtype_name(t.dtype) + " " + got +
                                              (t.data == nullptr ? " with data NULL" : ""));
    }
}

}  // namespace

IdxOptions IdxOptions::from_config(const Config& config) {
    IdxOptions o;
    o.name = config.get_or("name", o.name.c_str());
    o.root = config.get_or("root", o.root.c_str());
    o.split = config.get_or("split", o.split.c_str());
    o.images = config.get_or("images", "");
    o.labels = config.get_or("labels", "");
    o.limit = config.get_or("limit", o.limit);
    o.normalize = config.get_or("normalize", o.normalize);
    o.mean = config.get_or("mean", o.mean);
    o.std = config.get_or("std", o.std);
    o.random_crop_padding = config.get_or("random_crop_padding", o.random_crop_padding);
    o.horizontal_flip = config.get_or("horizontal_flip", o.horizontal_flip);
    return o;
}

IdxPaths resolve_paths(const IdxOptions& o) {
    const auto bad = [](const std::string& why) {
        return Error(DSK_INVALID_ARGUMENT, "dataset 'idx': " + why);
    };
    if (o.name != "fashion-mnist" && o.name != "mnist" && o.name != "custom") {
        throw bad("name = \"" + o.name +
                  "\" is not one of \"fashion-mnist\", \"mnist\", \"custom\"");
    }
    if (o.split != "train" && o.split != "test") {
        throw bad("split = \"" + o.split + "\" is not one of \"train\", \"test\"");
    }
    if (o.name == "custom" && (o.images.empty() || o.labels.empty())) {
        throw bad("name = \"custom\" needs both images and labels (paths of IDX files)");
    }
    const bool from_root = o.images.empty() || o.labels.empty();
    if (o.name == "mnist" && from_root && o.root == kFashionMnistRoot) {
        throw bad(std::string("name = \"mnist\" but root is the Fashion-MNIST folder ") +
                  kFashionMnistRoot +
                  "; set root to the folder holding the MNIST files (or "
                  "set images and labels)");
    }
    const std::string prefix = o.root + "/" + (o.split == "train" ? "train" : "t10k");
    const auto in_root = [&](const char* kind) {
        const std::string gz = prefix + "-" + kind + "-ubyte.gz";
        const std::string raw = prefix + "-" + kind + "-ubyte";
        return !exists(gz) && exists(raw) ? raw : gz;  // a missing file is reported by its .gz name
    };
    return {o.images.empty() ? in_root("images-idx3") : o.images,
            o.labels.empty() ? in_root("labels-idx1") : o.labels};
}

IdxDataset::IdxDataset(const IdxOptions& options) : options_(options) {
    const auto bad = [](const std::string& why) {
        return Error(DSK_INVALID_ARGUMENT, "dataset 'idx': " + why);
    };
    if (options_.limit < 0)
        throw bad("limit = " + std::to_string(options_.limit) + " must be >= 0");
    if (options_.random_crop_padding < 0 || options_.random_crop_padding > 16) {
        throw bad("random_crop_padding = " + std::to_string(options_.random_crop_padding) +
                  " is out of range [0, 16]");
    }
    if (options_.normalize &&
        !(std::isfinite(options_.mean) && std::isfinite(options_.std) && options_.std > 0)) {
        throw bad("normalize needs a finite mean and a std > 0 (got mean = " +
                  std::to_string(options_.mean) + ", std = " + std::to_string(options_.std) + ")");
    }

    const IdxPaths paths = resolve_paths(options_);
    images_ = read_idx_file(paths.images, IdxKind::images,
                            hint_for(options_, "images", !options_.images.empty()));
    labels_ = read_idx_file(paths.labels, IdxKind::labels,
                            hint_for(options_, "labels", !options_.labels.empty()));
    if (images_.count() != labels_.count()) {
        throw Error(DSK_DATA_LOSS, paths.images + " holds " + std::to_string(images_.count()) +
                                       " images but " + paths.labels + " holds " +
                                       std::to_string(labels_.count()) +
                                       " labels; images and labels must come from the same split "
                                       "(both train-* or both t10k-*)");
    }
    size_ = images_.count();
    if (options_.limit > 0)
        size_ = std::min<uint64_t>(size_, static_cast<uint64_t>(options_.limit));

    // The torchvision order: ToTensor (byte / 255 in float), then Normalize ((x - mean) / std).
    const float mean = static_cast<float>(options_.mean);
    const float std = static_cast<float>(options_.std);
    for (int b = 0; b < 256; ++b) {
        const float x = static_cast<float>(b) / 255.0f;
        lut_[b] = options_.normalize ? (x - mean) / std : x;
    }

    fields_[0] = dsk_tensor_desc{};
    set_contiguous(fields_[0], DSK_DTYPE_F32, {1, rows(), cols()});
    fields_[1] = dsk_tensor_desc{};
    set_contiguous(fields_[1], DSK_DTYPE_I64, {});
}

const char* const* IdxDataset::field_names() const {
    return kFieldNames;
}

void IdxDataset::fill_sample(size_t position, uint64_t index, uint64_t seed, float* out) const {
    const int64_t h = rows();
    const int64_t w = cols();
    const uint8_t* src = images_.data() + index * static_cast<uint64_t>(h * w);
    const int64_t pad = options_.random_crop_padding;
    if (seed == 0 || (pad == 0 && !options_.horizontal_flip)) {
        for (int64_t k = 0; k < h * w; ++k) out[k] = lut_[src[k]];
        return;
    }
    // RandomCrop(padding = pad) then RandomHorizontalFlip, as torchvision: the crop takes the
    // window at offset (oy, ox) in [0, 2 pad]^2 of the zero-padded image.
    int64_t dy = 0, dx = 0;
    if (pad > 0) {
        const uint32_t span = static_cast<uint32_t>(2 * pad + 1);
        dy = static_cast<int64_t>(uniform_below(random_bits(seed, position, 0), span)) - pad;
        dx = static_cast<int64_t>(uniform_below(random_bits(seed, position, 1), span)) - pad;
    }
    const bool flip = options_.horizontal_flip && (random_bits(seed, position, 2) >> 63) != 0;
    const float background = lut_[0];
    for (int64_t y = 0; y < h; ++y) {
        float* row = out + y * w;
        const int64_t sy = y + dy;
        if (sy < 0 || sy >= h) {
            std::fill(row, row + w, background);
            continue;
        }
        const uint8_t* src_row = src + sy * w;
        for (int64_t x = 0; x < w; ++x) {
            const int64_t sx = (flip ? w - 1 - x : x) + dx;
            row[x] = sx >= 0 && sx < w ? lut_[src_row[sx]] : background;
        }
    }
}

void IdxDataset::read(const uint64_t* indices, size_t count, uint64_t seed, float* images,
                      int64_t* labels) const {
    for (size_t i = 0; i < count; ++i) {
        if (indices[i] >= size_) {
            throw Error(DSK_INVALID_ARGUMENT, "dataset 'idx': sample index " +
                                                  std::to_string(indices[i]) + " (position " +
                                                  std::to_string(i) +
                                                  " of the batch) is out of range: "
                                                  "the dataset has " +
                                                  std::to_string(size_) + " samples");
        }
    }
    const size_t pixels = static_cast<size_t>(rows() * cols());
    const uint8_t* label_bytes = labels_.data();
    const auto fill = [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) {
            fill_sample(i, indices[i], seed, images + i * pixels);
            labels[i] = label_bytes[indices[i]];
        }
    };
    parallel_for(count, Work{0.0, kBytesPerPixel * static_cast<double>(pixels)}, fill);
}

//==============================================================================================
// The C interface
//==============================================================================================

namespace {

IdxDataset* from_handle(dsk_dataset* handle) {
    return reinterpret_cast<IdxDataset*>(handle);
}

dsk_status open_dataset(void* /*self*/, const dsk_config* config, dsk_dataset** out) {
    return guard([&] {
        if (out == nullptr) throw Error(DSK_INVALID_ARGUMENT, "dataset 'idx': open: out is NULL");
        *out = nullptr;
        const IdxOptions options =
            config != nullptr ? IdxOptions::from_config(Config(config)) : IdxOptions{};
        *out = reinterpret_cast<dsk_dataset*>(new IdxDataset(options));
    });
}

// Writes the members the caller's struct_size covers (the dsk_device_info convention).
dsk_status dataset_info(dsk_dataset* dataset, dsk_dataset_info* out_info) {
    return guard([&] {
        if (out_info == nullptr) {
            throw Error(DSK_INVALID_ARGUMENT, "dataset 'idx': info: out_info is NULL");
        }
        const IdxDataset& d = *from_handle(dataset);
        if (DSK_HAS_MEMBER(out_info, dsk_dataset_info, field_count)) out_info->field_count = 2;
        if (DSK_HAS_MEMBER(out_info, dsk_dataset_info, sample_count)) {
            out_info->sample_count = d.size();
        }
        if (DSK_HAS_MEMBER(out_info, dsk_dataset_info, field_names)) {
            out_info->field_names = d.field_names();
        }
        if (DSK_HAS_MEMBER(out_info, dsk_dataset_info, fields)) out_info->fields = d.fields();
    });
}

dsk_status read_samples(dsk_dataset* dataset, const uint64_t* indices, size_t count, uint64_t seed,
                        const dsk_tensor_desc* out_fields) {
    return guard([&] {
        if (count == 0) return;
        if (indices == nullptr || out_fields == nullptr) {
            throw Error(DSK_INVALID_ARGUMENT, "dataset 'idx': read: indices or out_fields is NULL");
        }
        const IdxDataset& d = *from_handle(dataset);
        const int64_t n = static_cast<int64_t>(count);
        check_field(out_fields[0], "image", DSK_DTYPE_F32, {n, 1, d.rows(), d.cols()});
        check_field(out_fields[1], "label", DSK_DTYPE_I64, {n});
        d.read(indices, count, seed, static_cast<float*>(out_fields[0].data),
               static_cast<int64_t*>(out_fields[1].data));
    });
}

void close_dataset(dsk_dataset* dataset) {
    delete from_handle(dataset);
}

}  // namespace

const dsk_dataset_iface& idx_dataset_iface() {
    static const dsk_dataset_iface iface = {
        sizeof(dsk_dataset_iface),
        "idx",
        "MNIST-format (IDX) image and label files, gzipped or not: Fashion-MNIST, MNIST or "
        "your own",
        nullptr,
        kParams,
        std::size(kParams),
        &open_dataset,
        &dataset_info,
        &read_samples,
        &close_dataset};
    return iface;
}

}  // namespace dsk::idx
