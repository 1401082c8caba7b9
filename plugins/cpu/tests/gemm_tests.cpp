// The blocked SGEMM (kernels/gemm.cpp) against a double-precision triple loop: every
// micro-kernel this CPU runs, all four transpose combinations, odd sizes around the tile and
// cache-block edges, padded leading dimensions, alpha/beta, and bitwise reproducibility across
// thread counts.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "threaded_host.h"

namespace {

using dsk::cpu::GemmIsa;

struct Case {
    bool trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;
    int64_t pad = 0;  // extra elements per row of A, B and C
};

struct Problem {
    Case c;
    int64_t lda, ldb, ldc;
    std::vector<float> a, b, c0;
};

Problem make_problem(const Case& c, uint32_t seed) {
    Problem p{c, 0, 0, 0, {}, {}, {}};
    p.lda = (c.trans_a ? c.m : c.k) + c.pad;
    p.ldb = (c.trans_b ? c.k : c.n) + c.pad;
    p.ldc = c.n + c.pad;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    p.a.resize(static_cast<size_t>((c.trans_a ? c.k : c.m) * p.lda));
    p.b.resize(static_cast<size_t>((c.trans_b ? c.n : c.k) * p.ldb));
    p.c0.resize(static_cast<size_t>(c.m * p.ldc));
    for (float& v : p.a) v = u(rng);
    for (float& v : p.b) v = u(rng);
    for (float& v : p.c0) v = u(rng);
    return p;
}

std::vector<float> run_sgemm(const Problem& p) {
    std::vector<float> c = p.c0;
    dsk::cpu::sgemm(p.c.trans_a, p.c.trans_b, p.c.m, p.c.n, p.c.k, p.c.alpha, p.a.data(), p.lda,
                    p.b.data(), p.ldb, p.c.beta, c.data(), p.ldc);
    return c;
}

// Checks every element against the double reference, with a bound that scales with the size of
// the terms summed; the padding between rows must be untouched.
void check_against_reference(const Problem& p, const std::vector<float>& c) {
    const Case& s = p.c;
    int64_t bad = 0;
    for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = 0; j < s.n; ++j) {
            double sum = 0.0, magnitude = 0.0;
            for (int64_t l = 0; l < s.k; ++l) {
                const double a = s.trans_a ? p.a[l * p.lda + i] : p.a[i * p.lda + l];
                const double b = s.trans_b ? p.b[j * p.ldb + l] : p.b[l * p.ldb + j];
                sum += a * b;
                magnitude += std::fabs(a * b);
            }
            const double old = p.c0[i * p.ldc + j];
            const double want = s.alpha * sum + (s.beta == 0.0f ? 0.0 : s.beta * old);
            const double tol =
                1e-5 * (std::fabs(s.alpha) * magnitude + std::fabs(s.beta * old)) + 1e-6;
            if (std::fabs(c[i * p.ldc + j] - want) > tol && bad++ < 5) {
                FAIL_CHECK("C[" << i << "][" << j << "] = " << c[i * p.ldc + j] << ", want "
                                << want);
            }
        }
        for (int64_t j = s.n; j < p.ldc; ++j) REQUIRE(c[i * p.ldc + j] == p.c0[i * p.ldc + j]);
    }
    CHECK(bad == 0);
}

std::vector<GemmIsa> isas_this_cpu_runs() {
    std::vector<GemmIsa> isas;
    for (GemmIsa isa : {GemmIsa::generic, GemmIsa::avx2, GemmIsa::avx512})
        if (dsk::cpu::sgemm_select_isa(isa)) isas.push_back(isa);
    dsk::cpu::sgemm_select_isa(GemmIsa::automatic);
    return isas;
}

// Restores the automatic micro-kernel and a single thread when a test ends.
struct IsaScope {
    ~IsaScope() {
        dsk::cpu::sgemm_select_isa(GemmIsa::automatic);
        threaded_host::install(1);
    }
};

}  // namespace

TEST_CASE(
    "sgemm matches a double-precision reference for every micro-kernel, shape and transpose") {
    IsaScope scope;
    const int64_t sizes[] = {1, 2, 5, 13, 16, 17, 33, 70};
    for (GemmIsa isa : isas_this_cpu_runs()) {
        REQUIRE(dsk::cpu::sgemm_select_isa(isa));
        for (uint32_t threads : {1u, 3u}) {
            threaded_host::install(threads);
            CAPTURE(dsk::cpu::sgemm_isa_name());
            CAPTURE(threads);
            uint32_t seed = 1;
            for (int64_t m : sizes)
                for (int64_t n : sizes)
                    for (int64_t k : {1, 7, 64, 131})
                        for (int t = 0; t < 4; ++t) {
                            const Case c{(t & 1) != 0, (t & 2) != 0, m, n, k, 1.0f, 0.0f};
                            CAPTURE(m);
                            CAPTURE(n);
                            CAPTURE(k);
                            CAPTURE(t);
                            const Problem p = make_problem(c, seed++);
                            check_against_reference(p, run_sgemm(p));
                        }
        }
    }
}

TEST_CASE("sgemm crosses the cache blocks: K, M and N larger than KC, MC and NC") {
    IsaScope scope;
    for (GemmIsa isa : isas_this_cpu_runs()) {
        REQUIRE(dsk::cpu::sgemm_select_isa(isa));
        threaded_host::install(2);
        CAPTURE(dsk::cpu::sgemm_isa_name());
        const Case cases[] = {
            {false, false, 290, 1100, 530, 1.0f, 0.0f},
            {true, true, 129, 400, 784, 0.5f, 1.0f},
            {false, true, 128, 256, 784, 1.0f, 1.0f, 3},
            {true, false, 300, 70, 1025, -2.0f, 0.25f, 1},
            // Rows of A 4 KB apart: packed even where the micro-kernel could read A in place.
            {false, false, 100, 40, 1024, 1.0f, 0.0f},
        };
        uint32_t seed = 100;
        for (const Case& c : cases) {
            CAPTURE(c.m);
            CAPTURE(c.n);
            CAPTURE(c.k);
            const Problem p = make_problem(c, seed++);
            check_against_reference(p, run_sgemm(p));
        }
    }
}

TEST_CASE(
    "sgemm applies alpha and beta, leaves padding alone, and keeps C's old value out when beta is "
    "0") {
    IsaScope scope;
    threaded_host::install(2);
    uint32_t seed = 7;
    for (float alpha : {1.0f, -0.5f, 3.0f})
        for (float beta : {0.0f, 1.0f, 0.5f, -2.0f})
            for (int t = 0; t < 4; ++t) {
                const Case c{(t & 1) != 0, (t & 2) != 0, 37, 45, 29, alpha, beta, 5};
                const Problem p = make_problem(c, seed++);
                check_against_reference(p, run_sgemm(p));
            }

    // beta = 0: C is not read, so NaN in it does not survive (BLAS).
    Problem p = make_problem({false, false, 20, 40, 10, 1.0f, 0.0f}, 99);
    std::fill(p.c0.begin(), p.c0.end(), std::numeric_limits<float>::quiet_NaN());
    const std::vector<float> c = run_sgemm(p);
    for (float v : c) REQUIRE(std::isfinite(v));
}

TEST_CASE("sgemm with a PackedB gives bitwise the result of packing B on every call") {
    IsaScope scope;
    for (GemmIsa isa : isas_this_cpu_runs()) {
        REQUIRE(dsk::cpu::sgemm_select_isa(isa));
        CAPTURE(dsk::cpu::sgemm_isa_name());
        // K over several slices, N over several NC blocks and not a multiple of NR, padded rows,
        // few and many rows, both layouts of B, one thread and a split of C.
        const Case cases[] = {
            {false, true, 256, 256, 784, 1.0f, 0.0f},  {false, false, 130, 1100, 530, 0.5f, 1.0f, 3},
            {true, true, 37, 45, 29, 1.0f, 0.0f, 5},     {false, true, 3, 70, 300, 1.0f, 0.0f},
            {false, false, 9, 17, 1, -2.0f, 0.25f},
        };
        uint32_t seed = 300;
        for (const Case& c : cases)
            for (uint32_t threads : {1u, 2u}) {
                threaded_host::install(threads);
                CAPTURE(c.m);
                CAPTURE(c.n);
                CAPTURE(c.k);
                CAPTURE(threads);
                const Problem p = make_problem(c, seed++);
                dsk::cpu::PackedB packed;
                packed.pack(c.trans_b, c.n, c.k, p.b.data(), p.ldb);
                REQUIRE(packed.holds(c.trans_b, c.n, c.k));
                CHECK_FALSE(packed.holds(!c.trans_b, c.n, c.k));
                CHECK_FALSE(packed.holds(c.trans_b, c.n + 1, c.k));
                std::vector<float> with = p.c0;
                dsk::cpu::sgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, p.a.data(), p.lda,
                                p.b.data(), p.ldb, c.beta, with.data(), p.ldc, nullptr, &packed);
                CHECK(with == run_sgemm(p));
                // The product reads the panels, not B: B changed after packing does not show
                // where the panels are read (more than 4 rows, or the generic micro-kernel, which has no few-rows path).
                if (dsk::cpu::sgemm_reads_packed_b(c.m)) {
                    Problem changed = p;
                    for (float& v : changed.b) v = -v;
                    std::vector<float> stale = p.c0;
                    dsk::cpu::sgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, p.a.data(), p.lda,
                                    changed.b.data(), p.ldb, c.beta, stale.data(), p.ldc, nullptr,
                                    &packed);
                    CHECK(stale == with);
                }
            }
        // Packed under another micro-kernel: ignored, B packed as usual.
        dsk::cpu::PackedB other;
        other.pack(false, 40, 50, std::vector<float>(2000, 1.0f).data(), 40);
        for (GemmIsa next : isas_this_cpu_runs())
            if (next != isa) {
                REQUIRE(dsk::cpu::sgemm_select_isa(next));
                CHECK_FALSE(other.holds(false, 40, 50));
            }
    }
}

TEST_CASE("sgemm with K = 0 or alpha = 0 scales C by beta") {
    IsaScope scope;
    Problem p = make_problem({false, false, 9, 11, 0, 1.0f, 0.5f}, 3);
    std::vector<float> c = run_sgemm(p);
    for (size_t i = 0; i < c.size(); ++i) CHECK(c[i] == p.c0[i] * 0.5f);

    p = make_problem({false, true, 9, 11, 4, 0.0f, 0.0f}, 4);
    c = run_sgemm(p);
    for (float v : c) CHECK(v == 0.0f);
}

TEST_CASE("sgemm results are bitwise identical whatever the thread count") {
    IsaScope scope;
    const Case cases[] = {{false, true, 128, 256, 784, 1.0f, 1.0f},
                          {true, false, 784, 256, 128, 1.0f, 0.0f},
                          {false, false, 333, 517, 300, 1.0f, 0.0f}};
    uint32_t seed = 11;
    for (const Case& c : cases) {
        const Problem p = make_problem(c, seed++);
        threaded_host::install(1);
        const std::vector<float> one = run_sgemm(p);
        for (uint32_t threads : {2u, 3u, 4u, 6u}) {
            threaded_host::install(threads);
            CHECK(run_sgemm(p) == one);
            CHECK(run_sgemm(p) == one);  // and run to run
        }
        std::vector<float> serial = p.c0;
        dsk::cpu::sgemm_serial(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, p.a.data(), p.lda,
                               p.b.data(), p.ldb, c.beta, serial.data(), p.ldc);
        CHECK(serial == one);
    }
}

TEST_CASE("sgemm_select_isa refuses what the CPU cannot run and names the choice") {
    IsaScope scope;
    CHECK(dsk::cpu::sgemm_select_isa(GemmIsa::generic));
    CHECK(std::string(dsk::cpu::sgemm_isa_name()) == "generic");
    CHECK(dsk::cpu::sgemm_select_isa(GemmIsa::automatic));
    const std::string name = dsk::cpu::sgemm_isa_name();
    CHECK((name == "avx512" || name == "avx2" || name == "generic"));
}

namespace {

// An epilogue that records what it saw: each element of C it was given, with its value then,
// and rewrites the element (to 2 * value + 1) so that the test sees the epilogue's output is what
// stays in C.
struct Recorder {
    int64_t ldc;
    // The epilogue's context is const (OutputEpilogue's is): the records are mutable.
    mutable std::vector<int> visits;         // per element of C
    mutable std::vector<float> seen;         // the value at the visit
    mutable std::vector<int64_t> tile_rows;  // rows of each call
    mutable std::mutex mutex;

    static void apply(const void* self, int64_t i0, int64_t j0, int64_t rows, int64_t cols,
                      float* c, int64_t ldc) {
        const Recorder& r = *static_cast<const Recorder*>(self);
        std::lock_guard<std::mutex> lock(r.mutex);
        r.tile_rows.push_back(rows);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) {
                float& v = c[i * ldc + j];
                const size_t at = static_cast<size_t>((i0 + i) * r.ldc + j0 + j);
                ++r.visits[at];
                r.seen[at] = v;
                v = 2.0f * v + 1.0f;
            }
    }
};

}  // namespace

TEST_CASE("sgemm runs the epilogue once on every element of C after its last K slice") {
    IsaScope scope;
    const Case cases[] = {
        {false, false, 37, 45, 29, 1.0f, 0.0f, 3},  // partial tiles, padded rows
        {false, true, 130, 400, 784, 0.5f, 1.0f},   // several K slices and column blocks
        {true, false, 1, 256, 784, 1.0f, 0.0f},     // one row (batch 1)
        {false, true, 3, 130, 40, 1.0f, 0.5f},      // few rows, B^T: dot products
        {false, false, 9, 11, 0, 1.0f, 0.5f},       // K = 0: C = beta * C, then the epilogue
    };
    uint32_t seed = 21;
    for (GemmIsa isa : isas_this_cpu_runs()) {
        REQUIRE(dsk::cpu::sgemm_select_isa(isa));
        CAPTURE(dsk::cpu::sgemm_isa_name());
        for (const Case& c : cases) {
            CAPTURE(c.m);
            CAPTURE(c.n);
            CAPTURE(c.k);
            const Problem p = make_problem(c, seed++);
            threaded_host::install(1);
            const std::vector<float> plain = run_sgemm(p);
            for (uint32_t threads : {1u, 3u}) {
                threaded_host::install(threads);
                Recorder recorder{p.ldc,
                                  std::vector<int>(p.c0.size(), 0),
                                  std::vector<float>(p.c0.size(), 0.0f),
                                  {},
                                  {}};
                const dsk::cpu::GemmEpilogue epilogue{&Recorder::apply, &recorder};
                std::vector<float> got = p.c0;
                dsk::cpu::sgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, p.a.data(), p.lda,
                                p.b.data(), p.ldb, c.beta, got.data(), p.ldc, &epilogue);
                int64_t wrong = 0;
                for (int64_t i = 0; i < c.m; ++i) {
                    for (int64_t j = 0; j < p.ldc; ++j) {
                        const size_t at = static_cast<size_t>(i * p.ldc + j);
                        const bool inside = j < c.n;
                        // Inside C: one visit, on the final value, whose rewrite stays. Padding:
                        // never visited, never written.
                        const bool ok = inside ? recorder.visits[at] == 1 &&
                                                     recorder.seen[at] == plain[at] &&
                                                     got[at] == 2.0f * plain[at] + 1.0f
                                               : recorder.visits[at] == 0 && got[at] == p.c0[at];
                        if (!ok && wrong++ < 5)
                            FAIL_CHECK("C[" << i << "][" << j << "]: " << recorder.visits[at]
                                            << " visits, saw " << recorder.seen[at] << ", left "
                                            << got[at] << "; the plain sgemm gives " << plain[at]);
                    }
                }
                CHECK(wrong == 0);
                // Tiles, not whole rows or the whole matrix, while there is a sum to tile.
                if (c.k > 0)
                    for (int64_t rows : recorder.tile_rows) CHECK(rows <= 16);
            }
        }
    }
}

namespace {

// The epilogue GemmEpilogue::column_bias describes, done by `apply` on the stored tile.
struct BiasRelu {
    const float* bias;
    bool relu;

    static void apply(const void* self, int64_t, int64_t j0, int64_t rows, int64_t cols, float* c,
                      int64_t ldc) {
        const BiasRelu& e = *static_cast<const BiasRelu*>(self);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) {
                const float v = c[i * ldc + j] + e.bias[j0 + j];
                c[i * ldc + j] = e.relu && v < 0.0f ? 0.0f : v;
            }
    }
};

}  // namespace

TEST_CASE("sgemm's column bias and Relu in the micro-kernel give the bits of the epilogue's apply") {
    IsaScope scope;
    const Case cases[] = {
        {false, false, 37, 45, 29, 1.0f, 0.0f, 3},  // partial tiles, padded rows
        {false, true, 130, 600, 784, 1.0f, 0.0f},   // several K slices and column blocks
        {true, false, 64, 96, 300, 0.5f, 0.0f},     // A packed, alpha without beta
        {false, false, 50, 70, 40, 0.5f, 1.5f},     // beta
    };
    uint32_t seed = 31;
    for (GemmIsa isa : isas_this_cpu_runs()) {
        REQUIRE(dsk::cpu::sgemm_select_isa(isa));
        CAPTURE(dsk::cpu::sgemm_isa_name());
        for (const Case& c : cases) {
            CAPTURE(c.m);
            CAPTURE(c.n);
            const Problem p = make_problem(c, seed++);
            std::vector<float> bias(static_cast<size_t>(c.n));
            std::mt19937 rng(seed++);
            std::uniform_real_distribution<float> u(-1.0f, 1.0f);
            for (float& v : bias) v = u(rng);
            bias[3] = std::numeric_limits<float>::quiet_NaN();  // kept by Relu
            for (bool relu : {false, true}) {
                CAPTURE(relu);
                const BiasRelu context{bias.data(), relu};
                std::vector<float> stored = p.c0, in_registers = p.c0;
                const dsk::cpu::GemmEpilogue plain{&BiasRelu::apply, &context};
                const dsk::cpu::GemmEpilogue described{&BiasRelu::apply, &context, bias.data(), relu};
                for (uint32_t threads : {1u, 3u}) {
                    threaded_host::install(threads);
                    dsk::cpu::sgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, p.a.data(), p.lda,
                                    p.b.data(), p.ldb, c.beta, stored.data(), p.ldc, &plain);
                    dsk::cpu::sgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, p.a.data(), p.lda,
                                    p.b.data(), p.ldb, c.beta, in_registers.data(), p.ldc, &described);
                    CHECK(std::memcmp(stored.data(), in_registers.data(), stored.size() * sizeof(float)) == 0);
                    stored = in_registers = p.c0;
                }
            }
        }
    }
}

TEST_CASE(
    "sgemm with 1 to 4 rows reads B in place: every transpose, alpha, beta, padding, threads") {
    IsaScope scope;
    uint32_t seed = 300;
    for (GemmIsa isa : isas_this_cpu_runs()) {
        REQUIRE(dsk::cpu::sgemm_select_isa(isa));
        CAPTURE(dsk::cpu::sgemm_isa_name());
        // 5 rows: just past the few-rows path. N around its blocks of 4 and 64 columns, K around
        // the 8 and 16 lanes of a vector.
        for (int64_t m : {1, 2, 3, 4, 5})
            for (int64_t n : {1, 3, 4, 5, 63, 64, 65, 130})
                for (int64_t k : {1, 7, 8, 9, 15, 16, 17, 300})
                    for (int t = 0; t < 4; ++t) {
                        CAPTURE(m);
                        CAPTURE(n);
                        CAPTURE(k);
                        CAPTURE(t);
                        const bool ta = (t & 1) != 0, tb = (t & 2) != 0;
                        const Problem plain = make_problem({ta, tb, m, n, k, 1.0f, 0.0f}, seed++);
                        threaded_host::install(1);
                        check_against_reference(plain, run_sgemm(plain));
                        const Problem scaled =
                            make_problem({ta, tb, m, n, k, -0.5f, 2.0f, 3}, seed++);
                        const std::vector<float> one = run_sgemm(scaled);
                        check_against_reference(scaled, one);
                        threaded_host::install(3);
                        CHECK(run_sgemm(scaled) == one);
                    }
        // Large enough for the threads to split the columns (blocks of 64, the last one partial).
        for (int t = 0; t < 4; ++t) {
            CAPTURE(t);
            const Problem p =
                make_problem({(t & 1) != 0, (t & 2) != 0, 3, 400, 784, 1.0f, 1.0f, 1}, seed++);
            threaded_host::install(1);
            const std::vector<float> one = run_sgemm(p);
            check_against_reference(p, one);
            for (uint32_t threads : {2u, 3u}) {
                threaded_host::install(threads);
                CHECK(run_sgemm(p) == one);
            }
        }
    }
}
