// The "idx" dataset: paths from root and split, normalisation, limit, augmentation, the
// images/labels checks, and the C interface (open/info/read/close) with a fake config.
#include <doctest/doctest.h>

#include "error_of.h"  // tests/support

#include <cmath>
#include <cstring>
#include <dsk/dsk_op.hpp>
#include <set>
#include <string>
#include <vector>

#include "../idx_dataset.h"
#include "fake_host.h"  // tests/support: the host table without a kernel
#include "idx_test_files.h"

using namespace dsk::idx;
using namespace idx_test;

namespace {

using test_support::error_of;

struct HostInstalled {
    HostInstalled() { fake_host::install(); }
} const host_installed;

// A custom dataset of `count` images of rows x cols in `dir`.
IdxOptions custom(const TempDir& dir, uint32_t count, uint32_t rows, uint32_t cols,
                  uint32_t label_count = 0) {
    IdxOptions o;
    o.name = "custom";
    o.images = write_file(dir.file("img.gz"), gzip(images_file(count, rows, cols)));
    o.labels = write_file(dir.file("lab"), labels_file(label_count ? label_count : count));
    return o;
}

float normalised(uint8_t b, float mean, float std) {
    return (static_cast<float>(b) / 255.0f - mean) / std;
}

struct Batch {
    std::vector<float> images;
    std::vector<int64_t> labels;
};
Batch read_batch(const IdxDataset& d, const std::vector<uint64_t>& indices, uint64_t seed) {
    Batch b;
    b.images.resize(indices.size() * d.rows() * d.cols());
    b.labels.resize(indices.size());
    d.read(indices.data(), indices.size(), seed, b.images.data(), b.labels.data());
    return b;
}

}  // namespace

TEST_SUITE("data-idx") {
    TEST_CASE("reads normalised images and labels") {
        TempDir dir;
        const IdxDataset d(custom(dir, 6, 3, 5));
        CHECK(d.size() == 6);
        CHECK(d.rows() == 3);
        CHECK(d.cols() == 5);
        const Batch b = read_batch(d, {4, 0, 4}, 0);
        const Bytes pixels = image_pixels(6, 3, 5);
        for (size_t k = 0; k < 15; ++k) {
            CHECK(b.images[k] == normalised(pixels[4 * 15 + k], 0.2860f, 0.3530f));
            CHECK(b.images[15 + k] == normalised(pixels[k], 0.2860f, 0.3530f));
            CHECK(b.images[30 + k] == b.images[k]);
        }
        CHECK(b.labels == std::vector<int64_t>{4, 0, 4});
    }

    TEST_CASE("normalize = false scales to [0, 1]; mean and std apply otherwise") {
        TempDir dir;
        IdxOptions o = custom(dir, 2, 2, 2);
        o.normalize = false;
        const Batch plain = read_batch(IdxDataset(o), {1}, 0);
        const Bytes pixels = image_pixels(2, 2, 2);
        for (size_t k = 0; k < 4; ++k) CHECK(plain.images[k] == pixels[4 + k] / 255.0f);
        o.normalize = true;
        o.mean = 0.5;
        o.std = 0.25;
        const Batch scaled = read_batch(IdxDataset(o), {1}, 0);
        for (size_t k = 0; k < 4; ++k)
            CHECK(scaled.images[k] == normalised(pixels[4 + k], 0.5f, 0.25f));
        o.std = 0;
        CHECK(error_of([&] { IdxDataset{o}; }).code() == DSK_INVALID_ARGUMENT);
    }

    TEST_CASE("limit keeps the first samples; an index past them is INVALID_ARGUMENT") {
        TempDir dir;
        IdxOptions o = custom(dir, 10, 2, 2);
        o.limit = 3;
        const IdxDataset d(o);
        CHECK(d.size() == 3);
        const dsk::Error e = error_of([&] { read_batch(d, {0, 3}, 0); });
        CHECK(e.code() == DSK_INVALID_ARGUMENT);
        CHECK(std::string(e.what()) ==
              "dataset 'idx': sample index 3 (position 1 of the batch) is "
              "out of range: the dataset has 3 samples");
        o.limit = 100;
        CHECK(IdxDataset(o).size() == 10);
    }

    TEST_CASE("image and label counts must agree") {
        TempDir dir;
        const IdxOptions o = custom(dir, 5, 2, 2, 4);
        const dsk::Error e = error_of([&] { IdxDataset{o}; });
        CHECK(e.code() == DSK_DATA_LOSS);
        CHECK(std::string(e.what()) == o.images + " holds 5 images but " + o.labels +
                                           " holds 4 labels; images and labels must come from the "
                                           "same split (both train-* or both t10k-*)");
    }

    TEST_CASE("files from root and split") {
        TempDir dir;
        write_file(dir.file("train-images-idx3-ubyte.gz"), gzip(images_file(7, 4, 4)));
        write_file(dir.file("train-labels-idx1-ubyte.gz"), gzip(labels_file(7)));
        write_file(dir.file("t10k-images-idx3-ubyte"), images_file(2, 4, 4));  // not gzipped
        write_file(dir.file("t10k-labels-idx1-ubyte"), labels_file(2));
        IdxOptions o;
        o.root = dir.path;
        CHECK(IdxDataset(o).size() == 7);
        o.split = "test";
        CHECK(resolve_paths(o).images == dir.file("t10k-images-idx3-ubyte"));
        CHECK(IdxDataset(o).size() == 2);
        o.labels = dir.file("train-labels-idx1-ubyte.gz");  // explicit paths win
        CHECK(error_of([&] { IdxDataset{o}; }).code() == DSK_DATA_LOSS);
    }

    TEST_CASE("missing files and settings that do not fit") {
        TempDir dir;
        IdxOptions o;
        o.root = dir.path;
        dsk::Error e = error_of([&] { IdxDataset{o}; });
        CHECK(e.code() == DSK_NOT_FOUND);
        CHECK(std::string(e.what()) ==
              dir.file("train-images-idx3-ubyte.gz") +
                  ": no such file; install the Debian package dataset-fashion-mnist or set "
                  "images/labels");

        o.name = "custom";
        o.images = dir.file("a");
        e = error_of([&] { IdxDataset{o}; });
        CHECK(e.code() == DSK_INVALID_ARGUMENT);
        CHECK(std::string(e.what()) ==
              "dataset 'idx': name = \"custom\" needs both images and labels (paths of IDX files)");

        o.labels = dir.file("b");
        CHECK(std::string(error_of([&] { IdxDataset{o}; }).what()) ==
              dir.file("a") + ": no such file; check the path in the dataset's `images` key");

        IdxOptions m;
        m.name = "mnist";
        CHECK(
            std::string(error_of([&] { IdxDataset{m}; }).what()) ==
            "dataset 'idx': name = \"mnist\" but root is the Fashion-MNIST folder "
            "/usr/share/datasets/fashion-mnist; set root to the folder holding the MNIST files (or "
            "set images and labels)");
        m.root = dir.path;
        CHECK(std::string(error_of([&] { IdxDataset{m}; }).what()).find("put the MNIST files") !=
              std::string::npos);
    }

    TEST_CASE("augmentation: crops and flips, only with a seed, the same for the same seed") {
        TempDir dir;
        const uint32_t n = 64, h = 6, w = 7;
        IdxOptions o = custom(dir, n, h, w);
        o.normalize = false;
        o.random_crop_padding = 2;
        o.horizontal_flip = true;
        const IdxDataset d(o);
        std::vector<uint64_t> indices(n);
        for (uint32_t i = 0; i < n; ++i) indices[i] = (i * 5) % n;
        const Bytes pixels = image_pixels(n, h, w);

        const Batch plain = read_batch(d, indices, 0);
        for (uint32_t i = 0; i < n; ++i)
            for (uint32_t k = 0; k < h * w; ++k)
                REQUIRE(plain.images[i * h * w + k] == pixels[indices[i] * h * w + k] / 255.0f);

        const Batch a = read_batch(d, indices, 1234);
        const Batch again = read_batch(d, indices, 1234);
        const Batch other = read_batch(d, indices, 99);
        CHECK(a.images == again.images);
        CHECK(a.images != other.images);
        CHECK(a.labels == plain.labels);

        // Every sample is the original shifted by (dy, dx) in [-2, 2]^2, maybe mirrored, with zeros
        // where the window leaves the image; and several offsets and both flips occur.
        std::set<int> offsets;
        int flips = 0;
        for (uint32_t i = 0; i < n; ++i) {
            const float* got = a.images.data() + i * h * w;
            const uint8_t* src = pixels.data() + indices[i] * h * w;
            bool found = false;
            for (int flip = 0; flip < 2 && !found; ++flip)
                for (int dy = -2; dy <= 2 && !found; ++dy)
                    for (int dx = -2; dx <= 2 && !found; ++dx) {
                        bool same = true;
                        for (int y = 0; y < int(h) && same; ++y)
                            for (int x = 0; x < int(w) && same; ++x) {
                                const int sy = y + dy, sx = (flip ? int(w) - 1 - x : x) + dx;
                                const float want = sy >= 0 && sy < int(h) && sx >= 0 && sx < int(w)
                                                       ? src[sy * w + sx] / 255.0f
                                                       : 0.0f;
                                same = got[y * w + x] == want;
                            }
                        if (same) {
                            found = true;
                            offsets.insert(dy * 10 + dx);
                            flips += flip;
                        }
                    }
            CAPTURE(i);
            CHECK(found);
        }
        CHECK(offsets.size() >= 10);
        CHECK(flips > 8);
        CHECK(flips < 56);
    }

    TEST_CASE("a training batch is filled without the pool") {
        // 128 images of 28x28: an estimated 13 us, far under the 100 us that pays for a second
        // thread (dsk_work.hpp); a fork of a busy pool costs milliseconds on 2 shared cores.
        TempDir dir;
        const IdxDataset d(custom(dir, 128, 28, 28));
        dsk_host_api two = fake_host::api();
        two.thread_count = [] { return 2u; };
        dsk::detail::host_slot().store(&two);
        std::vector<uint64_t> indices(128);
        for (uint32_t i = 0; i < 128; ++i) indices[i] = i;
        const size_t before = fake_host::parallel_calls();
        read_batch(d, indices, 7);
        CHECK(fake_host::parallel_calls() == before);
        fake_host::install();
    }

    TEST_CASE("a large batch is the same however the pool splits it") {
        TempDir dir;
        const uint32_t n = 3000;  // 3000 * 28 * 28 pixels: an estimated 294 us, filled through parallel_for
        IdxOptions o = custom(dir, n, 28, 28);
        o.random_crop_padding = 4;
        o.horizontal_flip = true;
        const IdxDataset d(o);
        std::vector<uint64_t> indices(n);
        for (uint32_t i = 0; i < n; ++i) indices[i] = n - 1 - i;

        dsk_host_api two = fake_host::api();
        two.thread_count = [] { return 2u; };
        dsk::detail::host_slot().store(&two);
        const size_t before = fake_host::parallel_calls();
        const Batch chunked = read_batch(d, indices, 7);
        CHECK(fake_host::parallel_calls() == before + 1);
        dsk_host_api whole = fake_host::api();
        whole.parallel_for = [](size_t count, size_t, dsk_parallel_fn fn, void* user) {
            fn(user, 0, count);
        };
        dsk::detail::host_slot().store(&whole);
        const Batch serial = read_batch(d, indices, 7);
        fake_host::install();
        CHECK(std::memcmp(chunked.images.data(), serial.images.data(),
                          chunked.images.size() * sizeof(float)) == 0);
        CHECK(chunked.labels == serial.labels);
    }

    TEST_CASE("the C interface: open from a config, info, read, close") {
        TempDir dir;
        const dsk_dataset_iface& iface = idx_dataset_iface();
        CHECK(std::string(iface.name) == "idx");
        REQUIRE(iface.param_count == 11);
        CHECK(std::string(iface.params[0].default_value) == "\"fashion-mnist\"");
        CHECK(iface.params[9].min_value == 0);
        CHECK(iface.params[9].max_value == 16);

        dsk_config config;
        config.set("name", "custom")
            .set("images", write_file(dir.file("i"), images_file(4, 28, 28)))
            .set("labels", write_file(dir.file("l"), labels_file(4)))
            .set("limit", 3)
            .set("mean", 0.5)
            .set("std", 1);  // an integer literal for a float key
        dsk_dataset* ds = nullptr;
        REQUIRE(fake_host::take(iface.open(iface.self, &config, &ds)).code == DSK_OK);
        REQUIRE(ds != nullptr);

        dsk_dataset_info info{};
        info.struct_size = sizeof info;
        REQUIRE(fake_host::take(iface.info(ds, &info)).code == DSK_OK);
        CHECK(info.field_count == 2);
        CHECK(info.sample_count == 3);
        CHECK(std::string(info.field_names[0]) == "image");
        CHECK(std::string(info.field_names[1]) == "label");
        CHECK(info.fields[0].dtype == DSK_DTYPE_F32);
        CHECK(dsk::shape_of(info.fields[0]) == std::vector<int64_t>{1, 28, 28});
        CHECK(info.fields[1].dtype == DSK_DTYPE_I64);
        CHECK(info.fields[1].ndim == 0);

        std::vector<float> images(2 * 28 * 28);
        std::vector<int64_t> labels(2);
        dsk_tensor_desc out[2] = {dsk::host_tensor(DSK_DTYPE_F32, {2, 1, 28, 28}, images.data()),
                                  dsk::host_tensor(DSK_DTYPE_I64, {2}, labels.data())};
        const uint64_t indices[] = {2, 1};
        REQUIRE(fake_host::take(iface.read(ds, indices, 2, 0, out)).code == DSK_OK);
        CHECK(labels == std::vector<int64_t>{2, 1});
        CHECK(images[0] == normalised(image_pixels(4, 28, 28)[2 * 784], 0.5f, 1.0f));

        out[1] = dsk::host_tensor(DSK_DTYPE_I32, {2}, labels.data());
        const fake_host::Outcome bad = fake_host::take(iface.read(ds, indices, 2, 0, out));
        CHECK(bad.code == DSK_INVALID_ARGUMENT);
        CHECK(bad.message ==
              "dataset 'idx': read: field 'label' must be a contiguous host tensor "
              "i64 [2], got i32 [2]");
        out[1] = dsk::host_tensor(DSK_DTYPE_I64, {2}, labels.data());
        out[0] = dsk::host_tensor(DSK_DTYPE_F32, {2, 28, 28}, images.data());
        CHECK(fake_host::take(iface.read(ds, indices, 2, 0, out)).message ==
              "dataset 'idx': read: field 'image' must be a contiguous host tensor f32 [2, 1, 28, "
              "28], got f32 [2, 28, 28]");
        iface.close(ds);

        dsk_config wrong;
        wrong.set("limit", "ten");
        const fake_host::Outcome typed = fake_host::take(iface.open(iface.self, &wrong, &ds));
        CHECK(typed.code == DSK_INVALID_ARGUMENT);
        CHECK(ds == nullptr);
    }

    TEST_CASE("the default dataset: Fashion-MNIST from its Debian package") {
        const dsk_dataset_iface& iface = idx_dataset_iface();
        dsk_dataset* ds = nullptr;
        const fake_host::Outcome opened = fake_host::take(iface.open(iface.self, nullptr, &ds));
        if (opened.code == DSK_NOT_FOUND) {
            MESSAGE("dataset-fashion-mnist is not installed: checking the message only");
            CHECK(opened.message.find("install the Debian package dataset-fashion-mnist") !=
                  std::string::npos);
            return;
        }
        REQUIRE(opened.code == DSK_OK);
        dsk_dataset_info info{};
        info.struct_size = sizeof info;
        REQUIRE(fake_host::take(iface.info(ds, &info)).code == DSK_OK);
        CHECK(info.sample_count == 60000);
        CHECK(dsk::shape_of(info.fields[0]) == std::vector<int64_t>{1, 28, 28});
        // Over the whole training set, the normalised pixels have mean ~0 and std ~1.
        const size_t n = 60000;
        std::vector<uint64_t> indices(n);
        for (size_t i = 0; i < n; ++i) indices[i] = i;
        std::vector<float> pixels(n * 784);
        std::vector<int64_t> labels(n);
        dsk_tensor_desc out[2] = {
            dsk::host_tensor(DSK_DTYPE_F32, {int64_t(n), 1, 28, 28}, pixels.data()),
            dsk::host_tensor(DSK_DTYPE_I64, {int64_t(n)}, labels.data())};
        REQUIRE(fake_host::take(iface.read(ds, indices.data(), n, 0, out)).code == DSK_OK);
        double sum = 0, sum_sq = 0;
        for (float v : pixels) {
            sum += v;
            sum_sq += double(v) * v;
        }
        const double mean = sum / pixels.size();
        CHECK(mean == doctest::Approx(0.0).epsilon(0.01).scale(1));
        CHECK(std::sqrt(sum_sq / pixels.size() - mean * mean) ==
              doctest::Approx(1.0).epsilon(0.01));
        std::vector<int> per_class(10);
        for (int64_t l : labels) per_class.at(static_cast<size_t>(l))++;
        for (int c : per_class) CHECK(c == 6000);
        iface.close(ds);
    }

}  // TEST_SUITE
