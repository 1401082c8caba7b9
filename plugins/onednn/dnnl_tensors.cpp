// dnnl_tensors.cpp - see dnnl_tensors.h.
#include "dnnl_tensors.h"

#include <omp.h>

#include "primitive_cache.h"

namespace dsk::onednn {

memory::data_type data_type_of(uint32_t dtype) {
    switch (dtype) {
        case DSK_DTYPE_F32: return memory::data_type::f32;
        case DSK_DTYPE_U8: return memory::data_type::u8;
        case DSK_DTYPE_I8: return memory::data_type::s8;
        case DSK_DTYPE_I32: return memory::data_type::s32;
        default:
            throw Error(DSK_INVALID_ARGUMENT,
                        std::string("onednn: no oneDNN data type for dtype ") + dtype_name(dtype));
    }
}

Dims dims_of(const dsk_tensor_desc& t) { return Dims(t.shape, t.shape + t.ndim); }

memory::desc plain(const Dims& dims, memory::data_type type) {
    Dims strides(dims.size());
    int64_t stride = 1;
    for (size_t i = dims.size(); i-- > 0;) {
        strides[i] = stride;
        stride *= dims[i];
    }
    return memory::desc(dims, type, strides);
}

memory::desc plain_of(const dsk_tensor_desc& t) {
    // A scalar is one element.
    return t.ndim == 0 ? plain(Dims{1}, data_type_of(t.dtype)) : plain(dims_of(t), data_type_of(t.dtype));
}

memory::desc matrix(int64_t rows, int64_t cols, bool transposed, memory::data_type type) {
    if (!transposed) return memory::desc({rows, cols}, type, Dims{cols, 1});
    return memory::desc({cols, rows}, type, Dims{1, cols});
}

memory wrap(const memory::desc& desc, const void* data) {
    // oneDNN takes a non-const handle for inputs too; it never writes through an input.
    return memory(desc, engine(), const_cast<void*>(data));
}

namespace {

Relayout relayout(const memory::desc& plain, const memory::desc& chosen, bool input) {
    Relayout r;
    r.plain = plain;
    r.chosen = chosen;
    r.needed = plain != chosen;
    if (r.needed)
        r.reorder = input ? dnnl::reorder(dnnl::reorder::primitive_desc(engine(), plain, engine(), chosen))
                          : dnnl::reorder(dnnl::reorder::primitive_desc(engine(), chosen, engine(), plain));
    return r;
}

}  // namespace

Relayout input_relayout(const memory::desc& plain, const memory::desc& chosen) {
    return relayout(plain, chosen, true);
}

Relayout output_relayout(const memory::desc& plain, const memory::desc& chosen) {
    return relayout(plain, chosen, false);
}

Staged::Staged(const cpu::KernelArgs& args, const Relayout& layout, const void* data, bool input)
    : args_(args), layout_(layout), data_(const_cast<void*>(data)) {
    if (!layout.needed) {
        memory_ = wrap(layout.plain, data);
        return;
    }
    buffer_.resize(layout.chosen.get_size());
    memory_ = wrap(layout.chosen, buffer_.data());
    if (input) execute(args, layout.reorder, {{DNNL_ARG_FROM, wrap(layout.plain, data)}, {DNNL_ARG_TO, memory_}});
}

void Staged::finish() {
    if (layout_.needed)
        execute(args_, layout_.reorder, {{DNNL_ARG_FROM, memory_}, {DNNL_ARG_TO, wrap(layout_.plain, data_)}});
}

ThreadsFor::ThreadsFor(int64_t work) {
    // Inside a parallel region oneDNN runs serially anyway; leave the setting alone there.
    if (work >= kSerialWork || omp_in_parallel()) return;
    const int threads = omp_get_max_threads();
    if (threads <= 1) return;
    saved_ = threads;
    omp_set_num_threads(1);
}

ThreadsFor::~ThreadsFor() {
    if (saved_ > 0) omp_set_num_threads(saved_);
}

void execute(const cpu::KernelArgs& args, const dnnl::primitive& primitive,
             const std::unordered_map<int, memory>& arguments) {
    with_dnnl(args, "running the primitive", [&] {
        dnnl::stream& s = stream();
        primitive.execute(s, arguments);
        s.wait();
    });
}

}  // namespace dsk::onednn
