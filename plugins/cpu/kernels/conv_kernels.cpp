// conv_kernels.cpp - Conv (2-D, NCHW, groups), ConvGradInput and ConvGradWeight.
//
// Stride 1 with output planes the size of the input (3x3 pad 1, ...) and 8 or more output
// channels: Conv and ConvGradInput run as direct convolutions (conv_direct.h: AVX-512 or AVX2),
// with no column matrix, and so does ConvGradWeight where the CPU has AVX-512; 3x3 pad 1 with
// channels in multiples of 16 run Winograd's F(2x2, 3x3) instead (conv_winograd.h: 2.25x fewer
// multiply-adds; run_winograd below, and ConvGradWeight from 2 images). The rest of this comment is about the other convolutions.
//
// General path, per (image, group): im2col turns the input into a [Cg*kH*kW, oH*oW] matrix and
// one SGEMM with the group's weights gives the output (a 1x1, stride-1, unpadded convolution
// multiplies the input directly). ConvGradInput multiplies by the transposed weights and adds
// the columns back with col2im; ConvGradWeight multiplies dY by the transposed columns.
//
// Small output planes (14 x 14 = 196 columns) make poor SGEMMs on their own: a 32-wide column
// panel only 4 wide at the end, and the weights packed again for every image. So Conv and
// ConvGradInput put the columns of several images side by side (images_per_gemm: at least 768
// columns) and multiply them at once; the forward pass hands each finished tile to its images'
// planes through the ImageScatter epilogue, ConvGradInput runs col2im per image. ConvGradWeight
// computes dW^T instead of dW when the column rows are fewer than the output channels (a first
// layer), so that the SGEMM's wide tiles span the channels.
//
// Threads: blocks of images (x groups) are split over the pool, each with its own column buffer
// and a serial SGEMM; when there are fewer of them than threads, they run one after the other
// and the SGEMM itself is parallel. ConvGradWeight sums over images: the batch is cut into a fixed number
// of blocks (a function of the batch size only), each block sums its images in order into its
// own partial dW, and the partials are added in block order, so the result does not depend on
// the thread count.
//
// Depthwise convolutions (group == C, one input channel per group) skip the GEMM: each output
// plane is a direct sum over the window, which is what these cheap layers need.
//
// The forward pass ends in output_epilogue.h's epilogue (bias, and for FusedConv the activation
// and the pre-activation output), applied to each tile inside the SGEMM.
#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "conv_direct.h"
#include "conv_winograd.h"
#include "gemm.h"
#include "im2col.h"
#include "kernel_table.h"
#include "max_pool_plane.h"
#include "output_epilogue.h"
#include "scratch.h"
#include "vector_math.h"
#include "window_geometry.h"

namespace dsk::cpu {
namespace {

// ConvGradWeight: at most this many partial sums over the batch, and this many floats in all.
constexpr int64_t kMaxWeightBlocks = 8;
constexpr int64_t kMaxPartialFloats = int64_t{16} << 20;

struct ConvGeometry {
    int64_t batch, in_c, out_c, group, in_cg, out_cg;
    Window2d w;

    int64_t kernel_size() const { return w.kernel_h * w.kernel_w; }
    int64_t col_rows() const { return in_cg * kernel_size(); }
    int64_t in_plane() const { return w.in_h * w.in_w; }
    int64_t out_plane() const { return w.out_h * w.out_w; }
    // The columns are the input itself.
    bool pointwise() const {
        return w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 &&
               w.pad_top == 0 && w.pad_left == 0 && w.pad_bottom == 0 && w.pad_right == 0;
    }
    bool depthwise() const { return group > 1 && group == in_c && in_cg == 1; }
    std::vector<int64_t> x_shape() const { return {batch, in_c, w.in_h, w.in_w}; }
    std::vector<int64_t> w_shape() const { return {out_c, in_cg, w.kernel_h, w.kernel_w}; }
    std::vector<int64_t> y_shape() const { return {batch, out_c, w.out_h, w.out_w}; }
};

ConvGeometry conv_geometry(const KernelArgs& args, const std::vector<int64_t>& x_shape,
                           const std::vector<int64_t>& w_shape) {
    if (x_shape.size() != 4)
        args.fail("X " + shape_text(x_shape) +
                  " must be 4-D (N, C, H, W): only 2-D convolution is implemented");
    if (w_shape.size() != 4)
        args.fail("W " + shape_text(w_shape) + " must be 4-D (M, C/group, kH, kW)");
    ConvGeometry g{};
    g.batch = x_shape[0];
    g.in_c = x_shape[1];
    g.out_c = w_shape[0];
    g.group = args.attrs().get_int("group", 1);
    if (g.group < 1) args.fail("attribute 'group' must be at least 1");
    if (g.in_c % g.group != 0 || w_shape[1] * g.group != g.in_c)
        args.fail("W " + shape_text(w_shape) + " does not fit X " + shape_text(x_shape) +
                  " with group " + std::to_string(g.group) +
                  " (W's dimension 1 must be C / group)");
    if (g.out_c % g.group != 0)
        args.fail("the output channels (" + std::to_string(g.out_c) +
                  ") are not a multiple of group " + std::to_string(g.group));
    g.in_cg = g.in_c / g.group;
    g.out_cg = g.out_c / g.group;
    const std::vector<int64_t> kernel_shape =
        args.attrs().get_ints("kernel_shape", {w_shape[2], w_shape[3]});
    if (kernel_shape.size() != 2 || kernel_shape[0] != w_shape[2] || kernel_shape[1] != w_shape[3])
        args.fail("attribute 'kernel_shape' " + shape_text(kernel_shape) + " disagrees with W " +
                  shape_text(w_shape));
    g.w = window_2d(args, x_shape[2], x_shape[3], w_shape[2], w_shape[3]);
    return g;
}

// The work of one SGEMM task over `images` images of one group (the forward pass and both
// gradients do the same multiply-adds): the columns written and read once, the output (or dY)
// and the group's weights.
dsk::Work gemm_task_work(const ConvGeometry& g, int64_t images) {
    const double rows = static_cast<double>(g.col_rows()), mg = static_cast<double>(g.out_cg);
    const double cols = static_cast<double>(g.out_plane() * images);
    return {2.0 * mg * rows * cols, 4.0 * (2.0 * rows * cols + 2.0 * mg * cols + mg * rows)};
}

// Runs task(t, col, serial_gemm) for t in [0, tasks): in parallel with a serial SGEMM when the
// work pays for threads (dsk::threads_for) and there are enough tasks for them, else in order
// with an SGEMM that splits itself when it is large enough. `col_floats` is the scratch each
// runner needs; `per_task` the work of one task.
template <class Task>
void run_tasks(int64_t tasks, int64_t col_floats, const dsk::Work& per_task, Task&& task) {
    const uint32_t threads = threads_for(per_task * static_cast<double>(tasks));
    if (threads > 1 && tasks >= static_cast<int64_t>(threads)) {
        parallel_for(static_cast<size_t>(tasks), per_task, [&](size_t b, size_t e) {
            Scratch col(static_cast<size_t>(col_floats));
            for (size_t t = b; t < e; ++t) task(static_cast<int64_t>(t), col.data(), true);
        });
    } else {
        Scratch col(static_cast<size_t>(col_floats));
        for (int64_t t = 0; t < tasks; ++t) task(t, col.data(), false);
    }
}

void multiply(bool serial, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
              const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
              int64_t ldc, const GemmEpilogue* epilogue = nullptr) {
    if (serial)
        sgemm_serial(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc, epilogue);
    else
        sgemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc, epilogue);
}

// Depthwise planes: body(plane) for every plane, each `macs_per_plane` multiply-adds over
// `plane_floats` floats read and written.
template <class Body>
void for_each_plane(int64_t planes, int64_t macs_per_plane, int64_t plane_floats, Body&& body) {
    const dsk::Work per_plane{2.0 * static_cast<double>(macs_per_plane),
                              4.0 * static_cast<double>(plane_floats)};
    parallel_for(static_cast<size_t>(planes), per_plane, [&](size_t b, size_t e) {
        for (size_t p = b; p < e; ++p) body(static_cast<int64_t>(p));
    });
}

//----------------------------------------------------------------------------------------------
// Several images per SGEMM
//----------------------------------------------------------------------------------------------

// Images whose columns go side by side into one SGEMM: enough columns (images x output pixels)
// that the SGEMM's column panels are nearly all full and the weights are packed once for several
// images, not once per image (a 14x14 output alone leaves a 4-wide panel of 32 and a weight pack
// per 196 columns).
constexpr int64_t kMinGemmColumns = 768;
constexpr int64_t kMaxImagesPerGemm = 64;

int64_t images_per_gemm(const ConvGeometry& g) {
    const int64_t wanted = (kMinGemmColumns + g.out_plane() - 1) / std::max<int64_t>(g.out_plane(), 1);
    return std::clamp<int64_t>(wanted, 1, std::min(g.batch, kMaxImagesPerGemm));
}

// The batch in blocks of `images` images per SGEMM, a task per block and group.
struct ImageBlocks {
    int64_t images = 1, tasks = 0, width = 0;  // width: columns of one SGEMM (images x plane)
    int64_t batch = 0, groups = 1;

    explicit ImageBlocks(const ConvGeometry& g, int64_t plane)
        : images(images_per_gemm(g)), width(images * plane), batch(g.batch), groups(g.group) {
        tasks = (batch + images - 1) / images * groups;
    }
    // Scratch floats per task: the columns [rows, width], and with several images a panel
    // [panel_rows, width] beside them (the SGEMM's C, or the images' dY side by side).
    int64_t scratch_floats(int64_t rows, int64_t panel_rows) const {
        return rows * width + (images > 1 ? panel_rows * width : 0);
    }
    int64_t group(int64_t task) const { return task % groups; }
    int64_t first(int64_t task) const { return task / groups * images; }
    int64_t count(int64_t task) const { return std::min(images, batch - first(task)); }
};

// The epilogue of an SGEMM whose C holds several images side by side ([Mg, images * plane]):
// each finished tile is copied, image by image, to that image's output planes (Z, or Y itself)
// and goes through that image's OutputEpilogue there (bias, activation, Y), still in cache.
struct ImageScatter {
    const OutputEpilogue* epilogues;  // one per image
    float* const* planes;             // per image: where row 0 of its Z (or Y) goes; rows `plane` apart
    int64_t plane;

    GemmEpilogue hook() const { return {&apply, this}; }

    static void apply(const void* self, int64_t i0, int64_t j0, int64_t rows, int64_t cols,
                      float* c, int64_t ldc) {
        const ImageScatter& s = *static_cast<const ImageScatter*>(self);
        for (int64_t j = j0; j < j0 + cols;) {
            const int64_t image = j / s.plane, at = j % s.plane;
            const int64_t run = std::min(j0 + cols - j, s.plane - at);
            float* dst = s.planes[image] + i0 * s.plane + at;
            for (int64_t r = 0; r < rows; ++r)
                std::memcpy(dst + r * s.plane, c + r * ldc + (j - j0),
                            static_cast<size_t>(run) * sizeof(float));
            const OutputEpilogue& e = s.epilogues[image];
            if (e.needed(s.planes[image])) OutputEpilogue::apply(&e, i0, at, rows, run, dst, s.plane);
            j += run;
        }
    }
};

//----------------------------------------------------------------------------------------------
// Same-size, stride-1 convolutions (conv_direct.h)
//----------------------------------------------------------------------------------------------

// The direct path computes 8 output channels per register tile: with fewer, most of its
// multiply-adds would be padding, and the SGEMM path does better.
constexpr int64_t kDirectMinChannels = 8;
constexpr int64_t kDirectMaxLaneChannels = 64;

bool takes_direct_path(const ConvGeometry& g, int64_t out_channels) {
    return !g.pointwise() && out_channels >= kDirectMinChannels && direct_conv_applies(g.w);
}

// Each group's plan (DirectConvPlan or WinogradWeights): Conv's weights, or (`transposed`,
// ConvGradInput) the weights flipped in space with input and output channels swapped.
template <class Plan, class Conv>
std::vector<Plan> plans_of(const ConvGeometry& g, const float* weights, const Conv& conv, bool transposed) {
    const int64_t taps = g.kernel_size();
    std::vector<Plan> plans;
    plans.reserve(static_cast<size_t>(g.group));
    for (int64_t grp = 0; grp < g.group; ++grp) {
        plans.emplace_back(conv, [&](int64_t m, int64_t c, int64_t t) {
            return transposed ? weights[((grp * g.out_cg + c) * g.in_cg + m) * taps + (taps - 1 - t)]
                              : weights[((grp * g.out_cg + m) * g.in_cg + c) * taps + t];
        });
    }
    return plans;
}

// Plans kept across runs, for the weights (and their version) they were built from.
template <class Plan, class Conv>
struct KeptPlans {
    uint64_t version = 0;
    const float* weights = nullptr;
    Conv conv;
    bool transposed = false;
    std::vector<Plan> plans;
};

// What a convolution node keeps: its direct plans or its Winograd weights.
struct ConvCache : KeptPlans<DirectConvPlan, DirectConv>, KeptPlans<WinogradWeights, WinogradConv> {};

// plans_of the weights (input 1), kept in the node's cache while they keep their version
// (dsk::input_version: the weights of an inference session), else built into `local`. Building
// the direct plans (masks and packed weights) took a fifth of a batch-1 CNN inference.
template <class Plan, class Conv>
const std::vector<Plan>& kept_plans(const KernelArgs& args, const ConvGeometry& g, const Conv& conv, bool transposed,
                                    std::vector<Plan>& local) {
    const float* weights = args.in(1);
    const uint64_t version = dsk::input_version(args.context(), 1);
    ConvCache* cache = version ? dsk::node_cache<ConvCache>(args.context()) : nullptr;
    if (!cache) {
        local = plans_of<Plan>(g, weights, conv, transposed);
        return local;
    }
    KeptPlans<Plan, Conv>& kept = *cache;
    if (kept.version != version || kept.weights != weights || !(kept.conv == conv) || kept.transposed != transposed ||
        kept.plans.size() != static_cast<size_t>(g.group)) {
        kept.version = 0;  // not valid until rebuilt
        kept.plans = plans_of<Plan>(g, weights, conv, transposed);
        kept.version = version;
        kept.weights = weights;
        kept.conv = conv;
        kept.transposed = transposed;
    }
    return kept.plans;
}

//----------------------------------------------------------------------------------------------
// 3x3 pad-1 convolutions with many channels (conv_winograd.h)
//----------------------------------------------------------------------------------------------

// Winograd's F(2x2, 3x3) where it applies (conv_winograd.h). The choice depends on the shapes
// only, never on the threads.
bool takes_winograd_path(const ConvGeometry& g, int64_t in_channels, int64_t out_channels) {
    return winograd_applies(g.w, in_channels, out_channels);
}

// The Winograd convolution of every image and group with `plans` (one per group): `input(n, grp)`
// is the image's input planes; `output(n, grp, extra)` where its output planes go (`extra`:
// `extra_floats` of scratch of the calling thread's own); `done(n, grp, oh0, oh1, extra)` runs on
// the same thread once output rows [oh0, oh1) of every channel are there. An image goes in
// blocks of tile rows (winograd_block_rows), smaller when there are fewer images than threads
// so that each thread has some; each thread prefetches the next image it will start. The
// results do not depend on the blocks or the threads.
template <class Input, class Output, class Done>
void run_winograd(const ConvGeometry& g, const std::vector<WinogradWeights>& plans, const float* bias, bool relu,
                  int64_t extra_floats, Input&& input, Output&& output, Done&& done) {
    const WinogradConv& conv = plans.front().conv;
    const int64_t images = g.batch * g.group, tiles_h = conv.tiles_h();
    auto result = [&](int64_t grp) {
        return DirectConvOutput{.bias = bias ? bias + grp * conv.out_channels : nullptr, .relu = relu};
    };
    const double tiles = static_cast<double>(conv.tiles()), plane = static_cast<double>(g.out_plane());
    const dsk::Work per_image{2.0 * 16.0 * tiles * static_cast<double>(conv.in_channels * conv.out_channels),
                              4.0 * static_cast<double>(conv.in_channels + conv.out_channels) * plane};
    const int64_t threads = threads_for(per_image * static_cast<double>(images));
    int64_t rows = winograd_block_rows(conv);
    if (images < threads) rows = std::min(rows, (tiles_h + threads / images - 1) / (threads / images));
    const int64_t blocks = (tiles_h + rows - 1) / rows, own = winograd_scratch_floats(conv, rows);
    parallel_for(static_cast<size_t>(images * blocks), per_image * (1.0 / static_cast<double>(blocks)),
                 [&](size_t b, size_t e) {
        Scratch scratch(static_cast<size_t>(own + extra_floats));
        float* extra = scratch.data() + own;
        for (int64_t item = static_cast<int64_t>(b); item < static_cast<int64_t>(e); ++item) {
            const int64_t image = item / blocks, first = item % blocks * rows, count = std::min(rows, tiles_h - first);
            const int64_t n = image / g.group, grp = image % g.group;
            const bool next = first + count == tiles_h && item + 1 < static_cast<int64_t>(e);
            winograd_conv_rows(plans[static_cast<size_t>(grp)], input(n, grp), output(n, grp, extra), result(grp), first,
                               count, scratch.data(), next ? input((image + 1) / g.group, (image + 1) % g.group) : nullptr);
            done(n, grp, 2 * first, std::min(conv.h, 2 * (first + count)), extra);
        }
    });
}

// Runs block(n, group, m0, count, scratch) for every image, group and block of 8 output channels
// (of `channels` per group, from `inputs` channels per group), split over the pool when the work
// pays for threads: each output is computed by one call. `scratch` holds `scratch_floats` floats
// of the calling thread's own.
template <class Block>
void for_each_direct_block(const ConvGeometry& g, int64_t channels, int64_t inputs, int64_t scratch_floats,
                           Block&& block) {
    const int64_t blocks = (channels + 7) / 8;
    const double plane = static_cast<double>(g.out_plane());
    const dsk::Work per_block{2.0 * 8.0 * static_cast<double>(inputs * g.kernel_size()) * plane,
                              4.0 * (static_cast<double>(inputs) + 8.0) * plane};
    parallel_for(static_cast<size_t>(g.batch * g.group * blocks), per_block, [&](size_t b, size_t e) {
        Scratch scratch(static_cast<size_t>(scratch_floats));
        for (size_t item = b; item < e; ++item) {
            const int64_t i = static_cast<int64_t>(item);
            const int64_t m0 = i % blocks * 8;
            block(i / (g.group * blocks), i / blocks % g.group, m0, std::min<int64_t>(8, channels - m0), scratch.data());
        }
    });
}

//----------------------------------------------------------------------------------------------
// Depthwise (direct)
//----------------------------------------------------------------------------------------------

// y (one output plane) = bias + the window sums of x (one input plane) with `weights`.
void depthwise_plane(const float* x, const float* weights, float bias, const Window2d& w,
                     float* y) {
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
        float* out = y + oh * w.out_w;
        std::fill(out, out + w.out_w, bias);
        for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
            const int64_t ih = oh * w.stride_h - w.pad_top + kh * w.dilation_h;
            if (ih < 0 || ih >= w.in_h) continue;
            const float* in = x + ih * w.in_w;
            for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
                int64_t ow0, ow1;
                w.valid_columns(kw, &ow0, &ow1);
                const float wv = weights[kh * w.kernel_w + kw];
                const int64_t shift = kw * w.dilation_w - w.pad_left;
                if (w.stride_w == 1) {
                    for (int64_t ow = ow0; ow < ow1; ++ow) out[ow] += wv * in[ow + shift];
                } else {
                    for (int64_t ow = ow0; ow < ow1; ++ow)
                        out[ow] += wv * in[ow * w.stride_w + shift];
                }
            }
        }
    }
}

// `epilogue` (may be null; without a bias) runs on each finished plane, as row `plane` of a
// [N * M, oH * oW] matrix.
void conv_depthwise(const ConvGeometry& g, const float* x, const float* weights, const float* bias,
                    float* y, const OutputEpilogue* epilogue) {
    const int64_t multiplier = g.out_c / g.in_c;
    const int64_t kk = g.kernel_size();
    for_each_plane(g.batch * g.out_c, g.out_plane() * kk, g.in_plane() + g.out_plane(), [&](int64_t plane) {
        const int64_t n = plane / g.out_c, m = plane % g.out_c, c = m / multiplier;
        float* out = y + plane * g.out_plane();
        depthwise_plane(x + (n * g.in_c + c) * g.in_plane(), weights + m * kk,
                        bias ? bias[m] : 0.0f, g.w, out);
        if (epilogue)
            OutputEpilogue::apply(epilogue, plane, 0, 1, g.out_plane(), out, g.out_plane());
    });
}

void conv_grad_input_depthwise(const ConvGeometry& g, const float* dy, const float* weights,
                               float* dx) {
    const int64_t multiplier = g.out_c / g.in_c;
    const int64_t kk = g.kernel_size();
    const Window2d& w = g.w;
    for_each_plane(g.batch * g.in_c, g.out_plane() * kk * multiplier,
                   g.in_plane() + g.out_plane() * multiplier, [&](int64_t plane) {
        const int64_t n = plane / g.in_c, c = plane % g.in_c;
        float* out = dx + plane * g.in_plane();
        std::fill(out, out + g.in_plane(), 0.0f);
        for (int64_t j = 0; j < multiplier; ++j) {
            const int64_t m = c * multiplier + j;
            const float* grad = dy + (n * g.out_c + m) * g.out_plane();
            const float* wm = weights + m * kk;
            for (int64_t oh = 0; oh < w.out_h; ++oh) {
                const float* gr = grad + oh * w.out_w;
                for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
                    const int64_t ih = oh * w.stride_h - w.pad_top + kh * w.dilation_h;
                    if (ih < 0 || ih >= w.in_h) continue;
                    float* row = out + ih * w.in_w;
                    for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
                        int64_t ow0, ow1;
                        w.valid_columns(kw, &ow0, &ow1);
                        const float wv = wm[kh * w.kernel_w + kw];
                        const int64_t shift = kw * w.dilation_w - w.pad_left;
                        for (int64_t ow = ow0; ow < ow1; ++ow)
                            row[ow * w.stride_w + shift] += wv * gr[ow];
                    }
                }
            }
        }
    });
}

void conv_grad_weight_depthwise(const ConvGeometry& g, const float* dy, const float* x, float* dw) {
    const int64_t multiplier = g.out_c / g.in_c;
    const int64_t kk = g.kernel_size();
    const Window2d& w = g.w;
    for_each_plane(g.out_c, g.batch * g.out_plane() * kk, g.batch * (g.in_plane() + g.out_plane()),
                   [&](int64_t m) {
        const int64_t c = m / multiplier;
        std::vector<double> acc(static_cast<size_t>(kk), 0.0);
        for (int64_t n = 0; n < g.batch; ++n) {
            const float* grad = dy + (n * g.out_c + m) * g.out_plane();
            const float* in = x + (n * g.in_c + c) * g.in_plane();
            for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
                int64_t oh0, oh1;
                w.valid_rows(kh, &oh0, &oh1);
                for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
                    int64_t ow0, ow1;
                    w.valid_columns(kw, &ow0, &ow1);
                    const int64_t shift = kw * w.dilation_w - w.pad_left;
                    float sum = 0.0f;
                    for (int64_t oh = oh0; oh < oh1; ++oh) {
                        const float* gr = grad + oh * w.out_w + ow0;
                        const float* row =
                            in + (oh * w.stride_h - w.pad_top + kh * w.dilation_h) * w.in_w +
                            ow0 * w.stride_w + shift;
                        const int64_t sw = w.stride_w;
                        sum += sum_fixed_order_of(
                            ow1 - ow0, [gr, row, sw](int64_t i) { return gr[i] * row[i * sw]; });
                    }
                    acc[static_cast<size_t>(kh * w.kernel_w + kw)] += sum;
                }
            }
        }
        for (int64_t k = 0; k < kk; ++k)
            dw[m * kk + k] = static_cast<float>(acc[static_cast<size_t>(k)]);
    });
}

// out[m - m0] = the sum of dY over images [n0, n1) and positions, for output channels [m0, m0 +
// count) of group `grp` (ConvGradWeight's dB): each plane in a fixed order, images added in
// order in double.
void bias_sums(const ConvGeometry& g, const float* dy, int64_t n0, int64_t n1, int64_t grp, int64_t m0,
               int64_t count, double* out) {
    const int64_t plane = g.out_plane();
    for (int64_t m = m0; m < m0 + count; ++m) {
        double total = 0.0;
        for (int64_t n = n0; n < n1; ++n) total += sum_fixed_order(dy + (n * g.out_c + grp * g.out_cg + m) * plane, plane);
        out[m - m0] = total;
    }
}

//----------------------------------------------------------------------------------------------
// Kernels
//----------------------------------------------------------------------------------------------

}  // namespace

// The sum accumulates into Z (output 1) when the node has it, else into Y; the epilogue adds the
// bias and writes Y. Depthwise planes get the bias in their direct sum and the rest of the
// epilogue right after each plane.
void conv_forward(const KernelArgs& args, const std::optional<ActivationParams>& activation) {
    const ConvGeometry g = conv_geometry(args, shape_of(args.input(0)), shape_of(args.input(1)));
    args.expect_output_shape(0, g.y_shape());
    if (args.has_output(1)) args.expect_output_shape(1, g.y_shape());
    const float* bias = nullptr;
    if (args.has_input(2)) {
        if (numel(args.input(2)) != g.out_c)
            args.fail("B " + shape_text(shape_of(args.input(2))) + " must have " +
                      std::to_string(g.out_c) + " elements");
        bias = args.in(2);
    }
    const float* x = args.in(0);
    const float* weights = args.in(1);
    float* y = args.out(0);
    float* z = args.has_output(1) ? args.out(1) : y;
    if (numel(args.output(0)) == 0) return;
    const int64_t cols = g.out_plane();
    if (g.depthwise()) {
        // Each plane (row p of [N * M, oH * oW]) is finished when depthwise_plane returns.
        const OutputEpilogue epilogue{.y = y, .ldy = cols, .activation = activation};
        conv_depthwise(g, x, weights, bias, z, epilogue.needed(z) ? &epilogue : nullptr);
        return;
    }
    const int64_t rows = g.col_rows();
    // The bias and activation of image n, group grp, applied as Z (at `offset`) is written.
    auto epilogue_of = [&](int64_t grp, int64_t offset) {
        return OutputEpilogue{.bias = bias ? bias + grp * g.out_cg : nullptr,
                              .bias_row_step = 1,
                              .y = y + offset,
                              .ldy = cols,
                              .activation = activation};
    };
    // Image n, group grp from its columns [rows, cols]: one SGEMM writing Z (or Y) directly, with
    // bias and activation as its epilogue.
    auto one_image = [&](bool serial, int64_t n, int64_t grp, const float* columns) {
        const int64_t offset = (n * g.out_c + grp * g.out_cg) * cols;
        const OutputEpilogue epilogue = epilogue_of(grp, offset);
        const GemmEpilogue hook = epilogue.hook(z + offset, cols);
        multiply(serial, false, false, g.out_cg, cols, rows, weights + grp * g.out_cg * rows, rows, columns, cols,
                 0.0f, z + offset, cols, epilogue.needed(z + offset) ? &hook : nullptr);
    };
    if (g.pointwise()) {
        run_tasks(g.batch * g.group, 0, gemm_task_work(g, 1), [&](int64_t task, float*, bool serial) {
            const int64_t n = task / g.group, grp = task % g.group;
            one_image(serial, n, grp, x + (n * g.in_c + grp * g.in_cg) * g.in_plane());
        });
        return;
    }
    // Y written in place with at most a Relu (Conv; FusedConv with no Z): the bias and the Relu
    // are applied in registers, bitwise as the epilogue would.
    const bool in_registers = z == y && (!activation || activation->kind == Activation::relu);
    if (takes_winograd_path(g, g.in_cg, g.out_cg)) {
        // Otherwise the sums go to Z (or Y) and the epilogue runs on each thread's channels.
        const WinogradConv conv{g.in_cg, g.out_cg, g.w.in_h, g.w.in_w};
        std::vector<WinogradWeights> local;
        const std::vector<WinogradWeights>& plans = kept_plans(args, g, conv, false, local);
        run_winograd(
            g, plans, in_registers ? bias : nullptr, in_registers && activation.has_value(), 0,
            [&](int64_t n, int64_t grp) { return x + (n * g.in_c + grp * g.in_cg) * g.in_plane(); },
            [&](int64_t n, int64_t grp, float*) { return z + (n * g.out_c + grp * g.out_cg) * cols; },
            [&](int64_t n, int64_t grp, int64_t oh0, int64_t oh1, float*) {
                const int64_t offset = (n * g.out_c + grp * g.out_cg) * cols, j0 = oh0 * g.w.out_w;
                const OutputEpilogue epilogue = epilogue_of(grp, offset);
                if (!in_registers && epilogue.needed(z + offset))
                    OutputEpilogue::apply(&epilogue, 0, j0, g.out_cg, (oh1 - oh0) * g.w.out_w, z + offset + j0, cols);
            });
        return;
    }
    if (takes_direct_path(g, g.out_cg)) {
        std::vector<DirectConvPlan> local;
        const std::vector<DirectConvPlan>& plans =
            kept_plans(args, g, direct_conv_of(g.w, g.in_cg, g.out_cg), false, local);
        const int64_t scratch_floats = direct_conv_scratch_floats(plans.front().conv);
        for_each_direct_block(g, g.out_cg, g.in_cg, scratch_floats,
                              [&](int64_t n, int64_t grp, int64_t m0, int64_t count, float* scratch) {
            const int64_t offset = (n * g.out_c + grp * g.out_cg) * cols;
            const float* image = x + (n * g.in_c + grp * g.in_cg) * g.in_plane();
            const DirectConvPlan& plan = plans[static_cast<size_t>(grp)];
            if (in_registers) {
                const DirectConvOutput output{.bias = bias ? bias + grp * g.out_cg : nullptr,
                                              .relu = activation.has_value()};
                conv_direct_channels(plan, image, m0, count, z + offset, output, nullptr, scratch);
                return;
            }
            const OutputEpilogue epilogue = epilogue_of(grp, offset);
            const GemmEpilogue hook = epilogue.hook(z + offset, cols);
            conv_direct_channels(plan, image, m0, count, z + offset, {}, epilogue.needed(z + offset) ? &hook : nullptr,
                                 scratch);
        });
        return;
    }
    // Each task: `images` consecutive images of one group, their columns side by side in one
    // SGEMM into a scratch C [Mg, images * oH*oW] that ImageScatter hands out tile by tile.
    // One image at a time (large planes): the SGEMM writes its planes directly, with no C panel.
    const ImageBlocks blocks(g, cols);
    const int64_t images = blocks.images, width = blocks.width;
    run_tasks(blocks.tasks, blocks.scratch_floats(rows, g.out_cg), gemm_task_work(g, images),
              [&](int64_t task, float* scratch, bool serial) {
        const int64_t grp = blocks.group(task), n0 = blocks.first(task), count = blocks.count(task);
        float* col = scratch;
        if (images == 1) {
            im2col(x + (n0 * g.in_c + grp * g.in_cg) * g.in_plane(), g.w, g.in_cg, col, cols);
            one_image(serial, n0, grp, col);
            return;
        }
        float* c = scratch + rows * width;
        std::vector<OutputEpilogue> per_image(static_cast<size_t>(count));
        std::vector<float*> planes(static_cast<size_t>(count));
        for (int64_t i = 0; i < count; ++i) {
            const int64_t n = n0 + i;
            im2col(x + (n * g.in_c + grp * g.in_cg) * g.in_plane(), g.w, g.in_cg, col + i * cols,
                   count * cols);
            const int64_t offset = (n * g.out_c + grp * g.out_cg) * cols;
            per_image[static_cast<size_t>(i)] = {.bias = bias ? bias + grp * g.out_cg : nullptr,
                                                 .bias_row_step = 1,
                                                 .y = y + offset,
                                                 .ldy = cols,
                                                 .activation = activation};
            planes[static_cast<size_t>(i)] = z + offset;
        }
        const ImageScatter scatter{per_image.data(), planes.data(), cols};
        const GemmEpilogue hook = scatter.hook();
        multiply(serial, false, false, g.out_cg, count * cols, rows,
                 weights + grp * g.out_cg * rows, rows, col, count * cols, 0.0f, c, count * cols,
                 &hook);
    });
}

// Y = activation(Conv) never leaves the cache: each block of 8 channels of an image is computed
// into the thread's scratch planes and pooled from there (MaxPool's code for the window).
void conv_max_pool_forward(const KernelArgs& args, const std::optional<ActivationParams>& activation) {
    const ConvGeometry g = conv_geometry(args, shape_of(args.input(0)), shape_of(args.input(1)));
    const bool winograd = takes_winograd_path(g, g.in_cg, g.out_cg);
    if (!(winograd || takes_direct_path(g, g.out_cg)) || (activation && activation->kind != Activation::relu))
        args.fail("only a convolution of the direct path (stride 1, same size, 8 or more output channels per group; "
                  "AVX-512 or AVX2) or of Winograd's (3x3, pad 1, channels in 16s; AVX-512 or AVX2), with no activation or "
                  "Relu, is fused with its pool (the fusion pass checks this)");
    const int64_t pooled_h = g.w.out_h / 2, pooled_w = g.w.out_w / 2;
    if (pooled_h < 1 || pooled_w < 1)
        args.fail("the convolution's output " + shape_text(g.y_shape()) + " is smaller than the 2x2 pool window");
    args.expect_output_shape(0, {g.batch, g.out_c, pooled_h, pooled_w});
    const float* bias = nullptr;
    if (args.has_input(2)) {
        if (numel(args.input(2)) != g.out_c)
            args.fail("B " + shape_text(shape_of(args.input(2))) + " must have " + std::to_string(g.out_c) +
                      " elements");
        bias = args.in(2);
    }
    if (numel(args.output(0)) == 0) return;
    const float* x = args.in(0);
    float* y = args.out(0);
    const int64_t cols = g.out_plane(), pooled = pooled_h * pooled_w;
    if (winograd) {
        const WinogradConv conv{g.in_cg, g.out_cg, g.w.in_h, g.w.in_w};
        std::vector<WinogradWeights> local;
        const std::vector<WinogradWeights>& plans = kept_plans(args, g, conv, false, local);
        run_winograd(
            g, plans, bias, activation.has_value(), g.out_cg * cols,
            [&](int64_t n, int64_t grp) { return x + (n * g.in_c + grp * g.in_cg) * g.in_plane(); },
            [](int64_t, int64_t, float* planes) { return planes; },
            [&](int64_t n, int64_t grp, int64_t oh0, int64_t oh1, float* planes) {
                // Output rows [oh0, oh1) (oh0 even) are pooled rows [oh0 / 2, oh1 / 2).
                if (oh1 - oh0 < 2) return;
                for (int64_t m = 0; m < g.out_cg; ++m)
                    max_pool_plane_2x2(planes + m * cols + oh0 * g.w.out_w, oh1 - oh0, g.w.out_w,
                                       y + (n * g.out_c + grp * g.out_cg + m) * pooled + oh0 / 2 * pooled_w);
            });
        return;
    }
    std::vector<DirectConvPlan> local;
    const std::vector<DirectConvPlan>& plans =
        kept_plans(args, g, direct_conv_of(g.w, g.in_cg, g.out_cg), false, local);
    for_each_direct_block(g, g.out_cg, g.in_cg, g.out_cg * cols + direct_conv_scratch_floats(plans.front().conv),
                          [&](int64_t n, int64_t grp, int64_t m0, int64_t count, float* planes) {
        const DirectConvOutput output{.bias = bias ? bias + grp * g.out_cg : nullptr, .relu = activation.has_value()};
        conv_direct_channels(plans[static_cast<size_t>(grp)], x + (n * g.in_c + grp * g.in_cg) * g.in_plane(), m0,
                             count, planes, output, nullptr, planes + g.out_cg * cols);
        for (int64_t m = m0; m < m0 + count; ++m)
            max_pool_plane_2x2(planes + m * cols, g.w.out_h, g.w.out_w, y + (n * g.out_c + grp * g.out_cg + m) * pooled);
    });
}

bool conv_max_pool_operands(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    if (tensors[0].ndim != 4 || tensors[1].ndim != 4) return false;
    const Attrs attrs(node);
    const int64_t group = attrs.get_int("group", 1);
    if (group < 1 || tensors[1].shape[0] % group != 0 || tensors[1].shape[0] / group < kDirectMinChannels) return false;
    const std::string activation = attrs.get_string("activation", "");
    if (!activation.empty() && activation != "Relu") return false;
    Window2d w;
    if (!read_window_2d(attrs, tensors[0].shape[2], tensors[0].shape[3], tensors[1].shape[2], tensors[1].shape[3],
                        true, &w).empty())
        return false;
    const bool pointwise = w.kernel_h == 1 && w.kernel_w == 1;
    const bool winograd = winograd_applies(w, tensors[1].shape[1], tensors[1].shape[0] / group);
    return !pointwise && (direct_conv_applies(w) || winograd) && w.out_h >= 2 && w.out_w >= 2;
}

bool conv_operands_2d(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    (void)node;
    return tensors[0].ndim == 4 && tensors[1].ndim == 4;
}

namespace {

void conv(const KernelArgs& args) {
    conv_forward(args, std::nullopt);
}

void conv_grad_input(const KernelArgs& args) {
    const std::vector<int64_t> x_shape = args.attrs().require_ints("input_shape");
    const ConvGeometry g = conv_geometry(args, x_shape, shape_of(args.input(1)));
    if (shape_of(args.input(0)) != g.y_shape())
        args.fail("dY " + shape_text(shape_of(args.input(0))) +
                  " does not match the convolution's output " + shape_text(g.y_shape()));
    args.expect_output_shape(0, x_shape);
    const float* dy = args.in(0);
    const float* weights = args.in(1);
    float* dx = args.out(0);
    if (numel(args.output(0)) == 0) return;
    if (g.depthwise()) {
        conv_grad_input_depthwise(g, dy, weights, dx);
        return;
    }
    const int64_t rows = g.col_rows(), cols = g.out_plane();
    if (takes_winograd_path(g, g.out_cg, g.in_cg)) {
        const WinogradConv conv{g.out_cg, g.in_cg, g.w.in_h, g.w.in_w};
        std::vector<WinogradWeights> local;
        const std::vector<WinogradWeights>& plans = kept_plans(args, g, conv, true, local);
        run_winograd(
            g, plans, nullptr, false, 0,
            [&](int64_t n, int64_t grp) { return dy + (n * g.out_c + grp * g.out_cg) * cols; },
            [&](int64_t n, int64_t grp, float*) { return dx + (n * g.in_c + grp * g.in_cg) * g.in_plane(); },
            [](int64_t, int64_t, int64_t, int64_t, float*) {});
        return;
    }
    if (takes_direct_path(g, g.in_cg)) {
        // Stride 1, same size: dX is the direct convolution of dY with the flipped, transposed
        // weights (no columns to add back).
        std::vector<DirectConvPlan> local;
        const std::vector<DirectConvPlan>& plans =
            kept_plans(args, g, direct_conv_transposed(g.w, g.out_cg, g.in_cg), true, local);
        for_each_direct_block(g, g.in_cg, g.out_cg, direct_conv_scratch_floats(plans.front().conv),
                              [&](int64_t n, int64_t grp, int64_t m0, int64_t count, float* scratch) {
            conv_direct_channels(plans[static_cast<size_t>(grp)], dy + (n * g.out_c + grp * g.out_cg) * cols, m0,
                                 count, dx + (n * g.in_c + grp * g.in_cg) * g.in_plane(), {}, nullptr, scratch);
        });
        return;
    }
    if (g.pointwise()) {
        // dX_g [rows, cols] = W_g^T [rows, Mg] * dY_g [Mg, cols]
        run_tasks(g.batch * g.group, 0, gemm_task_work(g, 1), [&](int64_t task, float*, bool serial) {
            const int64_t n = task / g.group, grp = task % g.group;
            multiply(serial, true, false, rows, cols, g.out_cg, weights + grp * g.out_cg * rows,
                     rows, dy + (n * g.out_c + grp * g.out_cg) * cols, cols, 0.0f,
                     dx + (n * g.in_c + grp * g.in_cg) * g.in_plane(), cols);
        });
        return;
    }
    // As in the forward pass, `images` images side by side per SGEMM (their dY copied next to
    // each other when there are several): dcol [rows, images * cols] = W_g^T * dY, then col2im
    // image by image.
    const ImageBlocks blocks(g, cols);
    const int64_t images = blocks.images, width = blocks.width;
    run_tasks(blocks.tasks, blocks.scratch_floats(rows, g.out_cg), gemm_task_work(g, images),
              [&](int64_t task, float* scratch, bool serial) {
        const int64_t grp = blocks.group(task), n0 = blocks.first(task), count = blocks.count(task);
        const int64_t ld = count * cols;
        float* col = scratch;
        const float* b = dy + (n0 * g.out_c + grp * g.out_cg) * cols;
        if (images > 1) {
            float* packed = scratch + rows * width;
            for (int64_t i = 0; i < count; ++i) {
                const float* dyg = dy + ((n0 + i) * g.out_c + grp * g.out_cg) * cols;
                for (int64_t m = 0; m < g.out_cg; ++m)
                    std::memcpy(packed + m * ld + i * cols, dyg + m * cols,
                                static_cast<size_t>(cols) * sizeof(float));
            }
            b = packed;
        }
        multiply(serial, true, false, rows, ld, g.out_cg, weights + grp * g.out_cg * rows, rows, b,
                 ld, 0.0f, col, ld);
        for (int64_t i = 0; i < count; ++i) {
            float* dxg = dx + ((n0 + i) * g.in_c + grp * g.in_cg) * g.in_plane();
            std::fill(dxg, dxg + g.in_cg * g.in_plane(), 0.0f);
            col2im(col + i * cols, g.w, g.in_cg, dxg, ld);
        }
    });
}

void conv_grad_weight(const KernelArgs& args) {
    const std::vector<int64_t> w_shape = args.attrs().require_ints("weight_shape");
    const ConvGeometry g = conv_geometry(args, shape_of(args.input(1)), w_shape);
    if (shape_of(args.input(0)) != g.y_shape())
        args.fail("dY " + shape_text(shape_of(args.input(0))) +
                  " does not match the convolution's output " + shape_text(g.y_shape()));
    args.expect_output_shape(0, w_shape);
    if (args.has_output(1)) args.expect_output_shape(1, {g.out_c});
    const float* dy = args.in(0);
    const float* x = args.in(1);
    float* dw = args.out(0);
    // dB (the bias gradient, when the node has it) is summed per block of images like dW, from
    // the dY rows each block has just read, and the blocks added in order.
    float* db = args.has_output(1) ? args.out(1) : nullptr;
    const int64_t weight_size = numel(args.output(0));
    if (g.batch == 0 || g.out_plane() == 0 || weight_size == 0) {
        std::fill(dw, dw + weight_size, 0.0f);
        if (db) std::fill(db, db + g.out_c, 0.0f);
        return;
    }
    if (g.depthwise()) {
        conv_grad_weight_depthwise(g, dy, x, dw);
        if (db) {
            std::vector<double> sums(static_cast<size_t>(g.out_c));
            bias_sums(g, dy, 0, g.batch, 0, 0, g.out_c, sums.data());
            std::copy(sums.begin(), sums.end(), db);
        }
        return;
    }
    const int64_t rows = g.col_rows(), cols = g.out_plane();
    // Winograd's partial sums are dU (16 values per channel pair), not dW (9).
    const bool winograd = g.batch >= 2 && takes_winograd_path(g, g.in_cg, g.out_cg);
    const int64_t partial_floats = winograd ? g.group * 16 * g.in_cg * g.out_cg : weight_size;
    const int64_t blocks = std::max<int64_t>(
        1, std::min({g.batch, kMaxWeightBlocks, kMaxPartialFloats / partial_floats}));
    std::vector<double> bias_partial(db ? static_cast<size_t>(blocks * g.out_c) : 0);
    // dB: the blocks' sums added in block order.
    auto finish_bias = [&] {
        if (!db) return;
        for (int64_t m = 0; m < g.out_c; ++m) {
            double total = 0.0;
            for (int64_t block = 0; block < blocks; ++block) total += bias_partial[static_cast<size_t>(block * g.out_c + m)];
            db[m] = static_cast<float>(total);
        }
    };
    if (winograd) {
        // Block b sums the dU (conv_winograd.h) of images [b * batch / blocks, (b + 1) * batch /
        // blocks) in order, per group; the blocks are added in order and turned into dW. The
        // blocks are what goes to the threads, so a single image keeps the direct sums.
        const WinogradConv conv{g.in_cg, g.out_cg, g.w.in_h, g.w.in_w};
        const int64_t du_floats = 16 * g.in_cg * g.out_cg, images = (g.batch + blocks - 1) / blocks;
        Scratch du(static_cast<size_t>(blocks * g.group * du_floats));
        const int64_t rows_per_block = winograd_block_rows(conv), tiles_h = conv.tiles_h();
        const dsk::Work per_item{2.0 * 16.0 * static_cast<double>(images * conv.tiles() * g.in_cg * g.out_cg),
                                 4.0 * static_cast<double>(images * (g.in_cg + g.out_cg) * cols)};
        parallel_for(static_cast<size_t>(blocks * g.group), per_item, [&](size_t b, size_t e) {
            Scratch scratch(static_cast<size_t>(winograd_scratch_floats(conv, rows_per_block)));
            for (size_t item = b; item < e; ++item) {
                const int64_t block = static_cast<int64_t>(item) / g.group, grp = static_cast<int64_t>(item) % g.group;
                const int64_t n0 = block * g.batch / blocks, n1 = (block + 1) * g.batch / blocks;
                for (int64_t n = n0; n < n1; ++n) {
                    const float* image = x + (n * g.in_c + grp * g.in_cg) * g.in_plane();
                    const float* grad = dy + (n * g.out_c + grp * g.out_cg) * cols;
                    for (int64_t first = 0; first < tiles_h; first += rows_per_block) {
                        const int64_t count = std::min(rows_per_block, tiles_h - first);
                        const bool next = n + 1 < n1 && first + count == tiles_h;
                        winograd_weight_grad_rows(conv, image, grad, du.data() + static_cast<int64_t>(item) * du_floats,
                                                  n == n0 && first == 0, first, count, scratch.data(),
                                                  next ? image + g.in_c * g.in_plane() : nullptr,
                                                  next ? grad + g.out_c * cols : nullptr);
                    }
                }
                if (db)
                    bias_sums(g, dy, n0, n1, grp, 0, g.out_cg, bias_partial.data() + block * g.out_c + grp * g.out_cg);
            }
        });
        // Block 0's partials (the first group * du_floats floats) += the others, in block order.
        const int64_t sums = g.group * du_floats;
        parallel_for(static_cast<size_t>(sums), dsk::Work{static_cast<double>(blocks), 4.0 * static_cast<double>(blocks + 1)},
                     [&](size_t b, size_t e) {
                         for (int64_t block = 1; block < blocks; ++block) {
                             const float* part = du.data() + block * sums;
                             for (size_t i = b; i < e; ++i) du.data()[i] += part[i];
                         }
                     });
        for (int64_t grp = 0; grp < g.group; ++grp)
            winograd_weight_grad_filters(conv, du.data() + grp * du_floats, dw + grp * g.out_cg * rows);
        finish_bias();
        return;
    }
    // Stride 1, same size: each block's sums straight from dY and the input (conv_direct.h), no
    // columns stored. Otherwise one SGEMM per image and group over its columns; with fewer
    // column rows than output channels (a first layer: 1 x 3 x 3 = 9 rows for 32 channels),
    // dW_g^T [rows, Mg] is computed instead of dW_g [Mg, rows]: the SGEMM's tiles are wider than
    // high, so the wide side should be the channels (9 columns would fill 9 of 32).
    const bool direct_sums =
        takes_direct_path(g, g.out_cg) && direct_conv_weight_grad_applies(direct_conv_of(g.w, g.in_cg, g.out_cg));
    // On AVX-512, up to 64 output channels (4 vectors), the direct sums run with the channels in
    // the vector lanes, from dY transposed and x padded once per call, and give dW^T.
    const bool padded = direct_sums && direct_conv_weight_grad_padded();
    const bool lanes_over_channels = direct_sums && !padded && g.out_cg <= kDirectMaxLaneChannels && g.in_cg >= 8;
    const bool transposed = lanes_over_channels || (!direct_sums && rows < g.out_cg);
    // Block b sums images [b * batch / blocks, (b + 1) * batch / blocks) into its own dW (or
    // dW^T per group); they are added (and turned back) in block order at the end.
    const bool direct = blocks == 1 && !transposed;
    std::vector<float> partial_storage(direct ? 0 : static_cast<size_t>(blocks * weight_size));
    auto partial = [&](int64_t block) {
        return direct ? dw : partial_storage.data() + block * weight_size;
    };
    auto run_block = [&](int64_t block, float* col, bool serial) {
        float* out = partial(block);
        const int64_t n0 = block * g.batch / blocks, n1 = (block + 1) * g.batch / blocks;
        if (db) bias_sums(g, dy, n0, n1, 0, 0, g.out_c, bias_partial.data() + block * g.out_c);
        for (int64_t n = n0; n < n1; ++n) {
            for (int64_t grp = 0; grp < g.group; ++grp) {
                const float* xg = x + (n * g.in_c + grp * g.in_cg) * g.in_plane();
                const float* dyg = dy + (n * g.out_c + grp * g.out_cg) * cols;
                const float* b = xg;
                if (!g.pointwise()) {
                    im2col(xg, g.w, g.in_cg, col, cols);
                    b = col;
                }
                const float beta = n == n0 ? 0.0f : 1.0f;
                float* dwg = out + grp * g.out_cg * rows;
                if (transposed)  // dW_g^T [rows, Mg] (+)= col [rows, cols] * dY_g^T [cols, Mg]
                    multiply(serial, false, true, rows, g.out_cg, cols, b, cols, dyg, cols, beta,
                             dwg, g.out_cg);
                else  // dW_g [Mg, rows] (+)= dY_g [Mg, cols] * col^T [cols, rows]
                    multiply(serial, false, true, g.out_cg, rows, cols, dyg, cols, b, cols, beta,
                             dwg, rows);
            }
        }
    };
    // dY transposed (lanes_over_channels) and x padded (both direct forms but AVX-512's masked
    // loads), per image and group, once per call.
    const DirectConv conv = direct_conv_of(g.w, g.in_cg, g.out_cg);
    const int64_t dyt_floats = lanes_over_channels ? cols * ((g.out_cg + 15) / 16 * 16) : 0;
    const int64_t xp_floats = lanes_over_channels || padded ? g.in_cg * direct_padded_plane(conv) : 0;
    Scratch dyt(static_cast<size_t>(g.batch * g.group * dyt_floats)), xp(static_cast<size_t>(g.batch * g.group * xp_floats));
    if (xp_floats)
        parallel_for(static_cast<size_t>(g.batch * g.group), 1, [&](size_t b, size_t e) {
            for (size_t item = b; item < e; ++item) {
                const int64_t n = static_cast<int64_t>(item) / g.group, grp = static_cast<int64_t>(item) % g.group;
                if (dyt_floats)
                    direct_transpose_dy(conv, dy + (n * g.out_c + grp * g.out_cg) * cols,
                                        dyt.data() + static_cast<int64_t>(item) * dyt_floats);
                direct_pad_x(conv, x + (n * g.in_c + grp * g.in_cg) * g.in_plane(), xp.data() + static_cast<int64_t>(item) * xp_floats);
            }
        });
    if (lanes_over_channels) {
        constexpr int64_t kColumnsPerItem = 48;
        const int64_t chunks = (rows + kColumnsPerItem - 1) / kColumnsPerItem;
        parallel_for(static_cast<size_t>(blocks * g.group * chunks), 1, [&](size_t b, size_t e) {
            for (size_t item = b; item < e; ++item) {
                const int64_t i = static_cast<int64_t>(item);
                const int64_t block = i / (g.group * chunks), grp = i / chunks % g.group, k0 = i % chunks * kColumnsPerItem;
                const int64_t n0 = block * g.batch / blocks, n1 = (block + 1) * g.batch / blocks;
                const int64_t first = n0 * g.group + grp;
                conv_direct_weight_grad_t(conv, dyt.data() + first * dyt_floats, g.group * dyt_floats,
                                          xp.data() + first * xp_floats, g.group * xp_floats, n1 - n0, k0,
                                          std::min(kColumnsPerItem, rows - k0), partial(block) + grp * g.out_cg * rows);
                if (db && k0 == 0)
                    bias_sums(g, dy, n0, n1, grp, 0, g.out_cg, bias_partial.data() + block * g.out_c + grp * g.out_cg);
            }
        });
    } else if (direct_sums) {
        const DirectConvTaps taps(conv);
        constexpr int64_t kRowsPerItem = 4;
        const int64_t chunks = (g.out_cg + kRowsPerItem - 1) / kRowsPerItem;
        parallel_for(static_cast<size_t>(blocks * g.group * chunks), 1, [&](size_t b, size_t e) {
            for (size_t item = b; item < e; ++item) {
                const int64_t i = static_cast<int64_t>(item);
                const int64_t block = i / (g.group * chunks), grp = i / chunks % g.group, m0 = i % chunks * kRowsPerItem;
                const int64_t n0 = block * g.batch / blocks, n1 = (block + 1) * g.batch / blocks;
                const int64_t count = std::min(kRowsPerItem, g.out_cg - m0);
                const float* xs = padded ? xp.data() + (n0 * g.group + grp) * xp_floats
                                         : x + (n0 * g.in_c + grp * g.in_cg) * g.in_plane();
                conv_direct_weight_grad(taps, dy + (n0 * g.out_c + grp * g.out_cg) * cols, g.out_c * cols, xs,
                                        padded ? g.group * xp_floats : g.in_c * g.in_plane(), n1 - n0, m0, count,
                                        partial(block) + grp * g.out_cg * rows);
                if (db)
                    bias_sums(g, dy, n0, n1, grp, m0, count,
                              bias_partial.data() + block * g.out_c + grp * g.out_cg + m0);
            }
        });
    } else {
        run_tasks(blocks, g.pointwise() ? 0 : rows * cols,
                  gemm_task_work(g, (g.batch + blocks - 1) / blocks) * static_cast<double>(g.group), run_block);
    }
    finish_bias();
    if (direct) return;
    // dw[i] for i = (grp * Mg + m) * rows + r sits at i itself, or at grp * Mg * rows + r * Mg + m
    // in a transposed partial.
    const dsk::Work per_weight{static_cast<double>(blocks), 4.0 * static_cast<double>(blocks + 1)};
    parallel_for(static_cast<size_t>(weight_size), per_weight,
                 [&](size_t b, size_t e) {
                     for (size_t i = b; i < e; ++i) {
                         size_t at = i;
                         if (transposed) {
                             const int64_t per_group = g.out_cg * rows;
                             const int64_t grp = static_cast<int64_t>(i) / per_group;
                             const int64_t m = static_cast<int64_t>(i) % per_group / rows;
                             const int64_t r = static_cast<int64_t>(i) % rows;
                             at = static_cast<size_t>(grp * per_group + r * g.out_cg + m);
                         }
                         float sum = partial_storage[at];
                         for (int64_t block = 1; block < blocks; ++block)
                             sum += partial_storage[static_cast<size_t>(block * weight_size) + at];
                         dw[i] = sum;
                     }
                 });
}

const KernelDef kConvKernels[] = {
    kernel("Conv", {F32, F32, F32}, {F32}, conv, conv_operands_2d) | optional_inputs_from(2),
    kernel("ConvGradInput", {F32, F32}, {F32}, conv_grad_input, conv_operands_2d),
    kernel("ConvGradWeight", {F32, F32}, {F32, F32}, conv_grad_weight, conv_operands_2d) | optional_outputs_from(1),
};

}  // namespace

std::span<const KernelDef> conv_kernels() {
    return kConvKernels;
}

}  // namespace dsk::cpu
