// dsk_onednn_matmul_bench: oneDNN's matmul called directly, without dsk, for scripts/bench (the
// "GEMM through dsk against oneDNN called directly" rows of issue 4).
//
//   dsk_onednn_matmul_bench --n 1024 [--layout plain|any] [--type f32|u8s8] [--reps R] [--rep-s S]
//
// C[n, n] = A[n, n] B[n, n] on the OpenMP pool (OMP_NUM_THREADS), after a warm-up, in R
// repetitions of about S seconds each, with the same timing scheme as hosts/bench/dsk_bench.
// Layouts: `plain` gives every matrix row-major, as dsk's onednn backend does (its weights are
// graph variables that change between runs); `any` lets oneDNN choose B's layout and reorders B
// once before timing (the best oneDNN can do for constant weights). Types: f32, or u8s8
// (u8 A, s8 B, s32 C: the int8 product of MatMulInteger). Prints one JSON object.
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using dnnl::memory;

struct Options {
    int64_t n = 1024;
    std::string layout = "plain";
    std::string type = "f32";
    int reps = 5;
    double rep_s = 0.4, warmup_s = 0.3;
};

[[noreturn]] void usage(const std::string& message) {
    std::fprintf(stderr,
                 "dsk_onednn_matmul_bench: %s\nusage: dsk_onednn_matmul_bench [--n N] [--layout plain|any] "
                 "[--type f32|u8s8] [--reps R] [--rep-s S] [--warmup-s S]\n",
                 message.c_str());
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) usage("missing the value of " + a);
        const std::string v = argv[++i];
        if (a == "--n") o.n = std::atoll(v.c_str());
        else if (a == "--layout") o.layout = v;
        else if (a == "--type") o.type = v;
        else if (a == "--reps") o.reps = std::atoi(v.c_str());
        else if (a == "--rep-s") o.rep_s = std::atof(v.c_str());
        else if (a == "--warmup-s") o.warmup_s = std::atof(v.c_str());
        else usage("unknown option " + a);
    }
    if (o.layout != "plain" && o.layout != "any") usage("--layout is plain or any");
    if (o.type != "f32" && o.type != "u8s8") usage("--type is f32 or u8s8");
    if (o.n < 1 || o.reps < 1) usage("n and reps must be positive");
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    try {
        const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
        dnnl::stream stream(engine);
        const bool int8 = o.type == "u8s8";
        const memory::data_type ta = int8 ? memory::data_type::u8 : memory::data_type::f32;
        const memory::data_type tb = int8 ? memory::data_type::s8 : memory::data_type::f32;
        const memory::data_type tc = int8 ? memory::data_type::s32 : memory::data_type::f32;
        const memory::dims dims = {o.n, o.n};
        const memory::desc a_desc(dims, ta, memory::format_tag::ab), c_desc(dims, tc, memory::format_tag::ab);
        const memory::desc b_plain(dims, tb, memory::format_tag::ab);
        const memory::desc b_wanted = o.layout == "any" ? memory::desc(dims, tb, memory::format_tag::any) : b_plain;
        const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_desc, b_wanted, c_desc), engine);
        const dnnl::matmul matmul(pd);

        // Values as in dsk_bench (uniform in [-1, 1]; whole numbers for int8).
        const size_t count = static_cast<size_t>(o.n * o.n);
        std::vector<float> fa(count), fb(count), fc(count);
        std::vector<uint8_t> ua(count);
        std::vector<int8_t> sb(count);
        std::vector<int32_t> ic(count);
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (size_t i = 0; i < count; ++i) {
            fa[i] = u(rng);
            fb[i] = u(rng);
            ua[i] = static_cast<uint8_t>(rng() % 256);
            sb[i] = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
        }
        memory a(a_desc, engine, int8 ? static_cast<void*>(ua.data()) : fa.data());
        memory b_given(b_plain, engine, int8 ? static_cast<void*>(sb.data()) : fb.data());
        memory c(c_desc, engine, int8 ? static_cast<void*>(ic.data()) : fc.data());
        memory b = b_given;
        if (pd.weights_desc() != b_plain) {  // `any`: B in oneDNN's layout, made once, untimed
            b = memory(pd.weights_desc(), engine);
            dnnl::reorder(b_given, b).execute(stream, b_given, b);
            stream.wait();
        }
        auto once = [&] {
            matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
            stream.wait();
        };
        auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
        int64_t warmup_runs = 0;
        const auto w0 = Clock::now();
        do {
            once();
            ++warmup_runs;
        } while (seconds_since(w0) < o.warmup_s || warmup_runs < 3);
        const double estimate = seconds_since(w0) / static_cast<double>(warmup_runs);
        const int64_t runs_per_rep = std::max<int64_t>(1, static_cast<int64_t>(o.rep_s / std::max(estimate, 1e-9)));
        std::vector<double> per_run;
        for (int r = 0; r < o.reps; ++r) {
            const auto t0 = Clock::now();
            for (int64_t i = 0; i < runs_per_rep; ++i) once();
            per_run.push_back(seconds_since(t0) / static_cast<double>(runs_per_rep));
        }
        std::printf("{\"case\": \"onednn-matmul\", \"type\": \"%s\", \"layout\": \"%s\", \"implementation\": \"%s\", "
                    "\"threads\": %d, \"n\": %lld, \"warmup_runs\": %lld, \"runs_per_rep\": %lld, \"seconds_per_run\": [",
                    o.type.c_str(), o.layout.c_str(), pd.impl_info_str(), omp_get_max_threads(),
                    static_cast<long long>(o.n), static_cast<long long>(warmup_runs),
                    static_cast<long long>(runs_per_rep));
        for (size_t i = 0; i < per_run.size(); ++i) std::printf("%s%.9g", i ? ", " : "", per_run[i]);
        std::printf("]}\n");
        return 0;
    } catch (const dnnl::error& e) {
        std::fprintf(stderr, "dsk_onednn_matmul_bench: oneDNN: %s (status %d)\n", e.what(), static_cast<int>(e.status));
        return 1;
    }
}
