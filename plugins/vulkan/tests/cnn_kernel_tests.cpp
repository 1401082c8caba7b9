// The CNN's kernels on the vulkan device where the conformance suite cannot look: Dropout's
// mask against the cpu backend's formula bit for bit, a convolution against a direct loop, and
// BatchNormalization's in-place update of the running statistics.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <dsk/dsk_random.hpp>

#include "vulkan_test_support.h"

using namespace vulkan_test;
using dsk::Attr;

TEST_CASE("vulkan Dropout draws the cpu backend's mask from the node's seed") {
    Device dev;
    if (!dev.ok) return;
    const float ratio = 0.3f;
    Tensor x(dev, DSK_DTYPE_F32, {3001}), y(dev, DSK_DTYPE_F32, {3001}), mask(dev, DSK_DTYPE_U8, {3001});
    fill_random(x, 21, 0.5f, 1.5f);
    test_seed() = 0xfeedbeefcafe1234ull;
    run(dev, "Dropout", {Attr("ratio", static_cast<double>(ratio)), Attr("training_mode", 1)}, {&x}, {&y, &mask});
    const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(ratio) * 4294967296.0);
    size_t mismatches = 0;
    std::vector<double> expected;
    for (size_t i = 0; i < x.f.size(); ++i) {
        const bool keep = (dsk::mix(test_seed(), i) >> 32) >= threshold;
        mismatches += mask.u[i] != (keep ? 1 : 0);
        expected.push_back(keep ? x.f[i] / (1.0 - ratio) : 0.0);
    }
    CHECK(mismatches == 0);
    check_close(y.f, expected);

    Tensor dy(dev, DSK_DTYPE_F32, {3001}), dx(dev, DSK_DTYPE_F32, {3001});
    fill_random(dy, 22);
    run(dev, "DropoutGrad", {Attr("ratio", static_cast<double>(ratio))}, {&dy, &mask}, {&dx});
    std::vector<double> grad;
    for (size_t i = 0; i < dy.f.size(); ++i) grad.push_back(dy.f[i] * mask.u[i] / (1.0 - ratio));
    check_close(dx.f, grad);

    // Without the mask output, and in eval mode (Y = X).
    Tensor y_eval(dev, DSK_DTYPE_F32, {3001});
    run(dev, "Dropout", {Attr("ratio", 0.5)}, {&x}, {&y_eval});
    CHECK(y_eval.f == x.f);
}

TEST_CASE("vulkan Conv matches a direct loop with groups strides and pads") {
    Device dev;
    if (!dev.ok) return;
    const int64_t n = 2, c = 4, h = 9, w = 7, m = 6, g = 2, k = 3, s = 2, p = 1;
    const int64_t oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
    Tensor x(dev, DSK_DTYPE_F32, {n, c, h, w}), wt(dev, DSK_DTYPE_F32, {m, c / g, k, k}), b(dev, DSK_DTYPE_F32, {m});
    Tensor y(dev, DSK_DTYPE_F32, {n, m, oh, ow});
    fill_random(x, 31);
    fill_random(wt, 32);
    fill_random(b, 33);
    run(dev, "Conv",
        {Attr("group", g), Attr("strides", std::vector<int64_t>{s, s}), Attr("pads", std::vector<int64_t>{p, p, p, p})},
        {&x, &wt, &b}, {&y});
    std::vector<double> expected;
    for (int64_t in = 0; in < n; ++in)
        for (int64_t om = 0; om < m; ++om)
            for (int64_t r = 0; r < oh; ++r)
                for (int64_t q = 0; q < ow; ++q) {
                    double sum = b.f[static_cast<size_t>(om)];
                    const int64_t group = om / (m / g);
                    for (int64_t ic = 0; ic < c / g; ++ic)
                        for (int64_t kh = 0; kh < k; ++kh)
                            for (int64_t kw = 0; kw < k; ++kw) {
                                const int64_t ih = r * s - p + kh, iw = q * s - p + kw;
                                if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                                sum += x.f[static_cast<size_t>(((in * c + group * (c / g) + ic) * h + ih) * w + iw)] *
                                       wt.f[static_cast<size_t>(((om * (c / g) + ic) * k + kh) * k + kw)];
                            }
                    expected.push_back(sum);
                }
    check_close(y.f, expected);
}
