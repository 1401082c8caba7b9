// One IDX file: parsing raw and gzipped files, and every error a user can meet.
#include <doctest/doctest.h>

#include "error_of.h"  // tests/support

#include <string>

#include "../idx_file.h"
#include "idx_test_files.h"

using namespace dsk::idx;
using namespace idx_test;

namespace {

const std::string kHint = "install the Debian package dataset-fashion-mnist or set images/labels";
const std::string kRefetch = "download it again or reinstall the package that ships it";

using test_support::error_of;

}  // namespace

TEST_SUITE("data-idx") {
    TEST_CASE("raw and gzipped image files parse to the same pixels") {
        TempDir dir;
        const Bytes raw = images_file(3, 2, 4);
        const std::string raw_path = write_file(dir.file("images-idx3-ubyte"), raw);
        const std::string gz_path = write_file(dir.file("images-idx3-ubyte.gz"), gzip(raw));
        for (const std::string& path : {raw_path, gz_path}) {
            CAPTURE(path);
            const IdxFile f = read_idx_file(path, IdxKind::images, kHint);
            CHECK(f.path() == path);
            CHECK(f.count() == 3);
            CHECK(f.rows() == 2);
            CHECK(f.cols() == 4);
            CHECK(f.dims() == std::vector<uint32_t>{3, 2, 4});
            CHECK(f.was_gzipped() == (path == gz_path));
            const Bytes pixels = image_pixels(3, 2, 4);
            CHECK(Bytes(f.data(), f.data() + pixels.size()) == pixels);
        }
    }

    TEST_CASE("label files, and gzip files of several members") {
        TempDir dir;
        const Bytes raw = labels_file(25);
        Bytes two_members = gzip(Bytes(raw.begin(), raw.begin() + 10));
        const Bytes second = gzip(Bytes(raw.begin() + 10, raw.end()));
        two_members.insert(two_members.end(), second.begin(), second.end());
        const IdxFile f =
            read_idx_file(write_file(dir.file("l.gz"), two_members), IdxKind::labels, kHint);
        CHECK(f.count() == 25);
        CHECK(f.data()[13] == 3);
        CHECK(f.was_gzipped());
    }

    TEST_CASE("an empty dataset is valid") {
        TempDir dir;
        const IdxFile f = read_idx_file(write_file(dir.file("e"), images_file(0, 28, 28)),
                                        IdxKind::images, kHint);
        CHECK(f.count() == 0);
    }

    TEST_CASE("a missing file is NOT_FOUND with the fix") {
        TempDir dir;
        const std::string path = dir.file("train-images-idx3-ubyte.gz");
        const dsk::Error e = error_of([&] { read_idx_file(path, IdxKind::images, kHint); });
        CHECK(e.code() == DSK_NOT_FOUND);
        CHECK(std::string(e.what()) == path + ": no such file; " + kHint);
        CHECK(std::string(error_of([&] {
                              read_idx_file(dir.file("x/y"), IdxKind::labels, "");
                          }).what()) == dir.file("x/y") + ": no such file");
    }

    TEST_CASE("a folder is UNAVAILABLE") {
        TempDir dir;
        const dsk::Error e = error_of([&] { read_idx_file(dir.path, IdxKind::images, kHint); });
        CHECK(e.code() == DSK_UNAVAILABLE);
        CHECK(std::string(e.what()) == dir.path + ": is a folder, not an IDX file");
    }

    TEST_CASE("a wrong magic is DATA_LOSS naming both numbers") {
        TempDir dir;
        SUBCASE("a label file given as images") {
            const std::string path = write_file(dir.file("l"), labels_file(4));
            const dsk::Error e = error_of([&] { read_idx_file(path, IdxKind::images, kHint); });
            CHECK(e.code() == DSK_DATA_LOSS);
            CHECK(std::string(e.what()) ==
                  path +
                      ": not an IDX image file: expected magic 0x00000803 (unsigned bytes, 3 "
                      "dimensions), found 0x00000801 (an IDX label file: are images and labels "
                      "swapped?); check that images names an *-images-idx3-ubyte file");
        }
        SUBCASE("something else given as labels") {
            const std::string path =
                write_file(dir.file("x.gz"), gzip(idx_bytes(0x12345678, {}, {})));
            const dsk::Error e = error_of([&] { read_idx_file(path, IdxKind::labels, kHint); });
            CHECK(e.code() == DSK_DATA_LOSS);
            CHECK(std::string(e.what()) ==
                  path +
                      ": not an IDX label file: expected magic 0x00000801 (unsigned bytes, 1 "
                      "dimension), found 0x12345678; check that labels names an "
                      "*-labels-idx1-ubyte file");
        }
    }

    TEST_CASE("a truncated file is DATA_LOSS with the sizes") {
        TempDir dir;
        SUBCASE("data shorter than the header says") {
            const Bytes bytes = idx_bytes(0x00000803, {60000, 28, 28}, Bytes(1234 - 16, 0));
            const std::string path = write_file(dir.file("t"), bytes);
            const dsk::Error e = error_of([&] { read_idx_file(path, IdxKind::images, kHint); });
            CHECK(e.code() == DSK_DATA_LOSS);
            CHECK(std::string(e.what()) ==
                  path +
                      ": truncated: header says 60000 images of 28x28 (47040016 bytes of data) "
                      "but the file holds 1234; " +
                      kRefetch);
        }
        SUBCASE("gzipped: the decompressed size is what counts") {
            const Bytes bytes = idx_bytes(0x00000801, {10}, Bytes(7, 1));
            const std::string path = write_file(dir.file("t.gz"), gzip(bytes));
            const dsk::Error e = error_of([&] { read_idx_file(path, IdxKind::labels, kHint); });
            CHECK(std::string(e.what()) ==
                  path +
                      ": truncated: header says 10 labels (18 bytes of data) but the file holds "
                      "15 once decompressed; " +
                      kRefetch);
        }
        SUBCASE("shorter than its header") {
            Bytes bytes = images_file(1, 2, 2);
            bytes.resize(10);
            const std::string path = write_file(dir.file("h"), bytes);
            CHECK(std::string(
                      error_of([&] { read_idx_file(path, IdxKind::images, kHint); }).what()) ==
                  path + ": truncated: its header needs 16 bytes but the file holds 10; " +
                      kRefetch);
        }
        SUBCASE("shorter than a magic number") {
            const std::string path = write_file(dir.file("m"), Bytes{0, 0});
            const dsk::Error e = error_of([&] { read_idx_file(path, IdxKind::images, kHint); });
            CHECK(e.code() == DSK_DATA_LOSS);
            CHECK(std::string(e.what()) == path +
                                               ": truncated: the file holds 2 bytes, too few for "
                                               "an IDX header; " +
                                               kRefetch);
        }
        SUBCASE("more data than the header says") {
            Bytes bytes = labels_file(5);
            bytes.push_back(9);
            const std::string path = write_file(dir.file("x"), bytes);
            const dsk::Error e = error_of([&] { read_idx_file(path, IdxKind::labels, kHint); });
            CHECK(e.code() == DSK_DATA_LOSS);
            CHECK(std::string(e.what()) ==
                  path +
                      ": header says 5 labels (13 bytes of data) but the file holds 14: extra "
                      "bytes after the data (not an IDX file of this kind?)");
        }
        SUBCASE("images without pixels") {
            const std::string path = write_file(dir.file("z"), idx_bytes(0x803, {3, 0, 28}, {}));
            CHECK(std::string(
                      error_of([&] { read_idx_file(path, IdxKind::images, kHint); }).what()) ==
                  path + ": header says 3 images of 0x28: an image needs at least one pixel; " +
                      kRefetch);
        }
        SUBCASE("a header whose size overflows 64 bits") {
            const Bytes bytes = idx_bytes(0x803, {0xffffffffu, 0xffffffffu, 0xffffffffu}, {});
            const std::string path = write_file(dir.file("o"), bytes);
            CHECK(
                std::string(error_of([&] { read_idx_file(path, IdxKind::images, kHint); }).what())
                    .find("(79228162458924105385300197391 bytes of data) but the file holds 16") !=
                std::string::npos);
        }
    }

    TEST_CASE("a corrupt gzip stream is DATA_LOSS") {
        TempDir dir;
        const Bytes good = gzip(images_file(4, 8, 8));
        SUBCASE("a wrong checksum") {
            Bytes bad = good;
            bad[bad.size() - 8] ^= 0xff;  // the CRC-32 in the trailer
            const std::string path = write_file(dir.file("c.gz"), bad);
            const dsk::Error e = error_of([&] { read_idx_file(path, IdxKind::images, kHint); });
            CHECK(e.code() == DSK_DATA_LOSS);
            CHECK(std::string(e.what()) ==
                  path + ": corrupt gzip stream (incorrect data check); " + kRefetch);
        }
        SUBCASE("an unknown compression method") {
            Bytes bad = good;
            bad[2] = 7;
            const std::string path = write_file(dir.file("m.gz"), bad);
            CHECK(std::string(
                      error_of([&] { read_idx_file(path, IdxKind::images, kHint); }).what()) ==
                  path + ": corrupt gzip stream (unknown compression method); " + kRefetch);
        }
        SUBCASE("garbage in the compressed data") {
            Bytes bad = good;
            for (size_t i = 12; i < bad.size() - 8; ++i) bad[i] = static_cast<uint8_t>(0xff - i);
            const std::string path = write_file(dir.file("g.gz"), bad);
            const dsk::Error e = error_of([&] { read_idx_file(path, IdxKind::images, kHint); });
            CHECK(e.code() == DSK_DATA_LOSS);
            CHECK(std::string(e.what()).rfind(path + ": corrupt gzip stream (", 0) == 0);
        }
        SUBCASE("a stream cut short") {
            Bytes cut = good;
            cut.resize(cut.size() - 12);
            const std::string path = write_file(dir.file("s.gz"), cut);
            const dsk::Error e = error_of([&] { read_idx_file(path, IdxKind::images, kHint); });
            CHECK(e.code() == DSK_DATA_LOSS);
            CHECK(std::string(e.what()) == path + ": gzip stream ends early, after " +
                                               std::to_string(cut.size()) +
                                               " compressed bytes (truncated file); " + kRefetch);
        }
        SUBCASE("garbage after the stream") {
            Bytes bad = good;
            bad.insert(bad.end(), {1, 2, 3});
            const std::string path = write_file(dir.file("t.gz"), bad);
            CHECK(std::string(
                      error_of([&] { read_idx_file(path, IdxKind::images, kHint); }).what()) ==
                  path + ": corrupt gzip stream (3 bytes of garbage after the end); " + kRefetch);
        }
    }

}  // TEST_SUITE
