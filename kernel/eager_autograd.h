// Eager autograd (dsk.h: dsk_eager_tensor_set_requires_grad, dsk_eager_backward): a tape of the
// ops run on tensors that require a gradient, differentiated by the graph's reverse mode.
//
// The tape is a dsk_graph. A tensor marked as requiring a gradient becomes an input value of it
// (a leaf); an op with at least one input that requires a gradient is added as a node (its
// outputs then require one too), and the other tensors it reads (data, labels) become input
// values as well. The tape holds a reference to every tensor it names, so backward can read
// them. Backward appends the gradient nodes with dsk_graph::gradients (the schemas' rules, the
// same code as graph_gradients), runs the ones the requested gradients need eagerly, in order,
// on the recorded tensors, and then consumes the tape (unless asked to retain it). Inside a
// trace those gradient ops are traced like any other op, so a traced training step is one
// static graph.
#pragma once

#include <vector>

#include "eager.h"
#include "graph.h"

namespace dsk::kernel {

struct EagerTape {
    dsk_graph graph{};
    uint64_t epoch = 0;
    std::vector<dsk_eager_tensor*> tensors;  // per value id (a reference each); null for none
    std::vector<uint8_t> requires_grad;      // per value id

    explicit EagerTape(dsk_eager& eager);
    ~EagerTape();
    EagerTape(const EagerTape&) = delete;
    EagerTape& operator=(const EagerTape&) = delete;
};

// Marks (or unmarks) `t` as requiring a gradient, starting a tape when there is none. An op's
// output cannot be unmarked (what made it is already recorded).
void set_requires_grad(dsk_eager& eager, dsk_eager_tensor& t, bool on);
bool requires_grad(const dsk_eager& eager, const dsk_eager_tensor& t);

// Called by dsk_eager::run after an op ran: records it when one of its inputs requires a
// gradient. `op` is the name as called ("domain.op").
void record_on_tape(dsk_eager& eager, const char* op, const dsk_attr* attrs, size_t attr_count,
                    dsk_eager_tensor* const* inputs, size_t input_count, dsk_eager_tensor* const* outputs,
                    size_t output_count);

// d(loss)/d(wrt[i]) as new tensors (one reference each to the caller; null where the loss does
// not depend on wrt[i]). Consumes the tape unless `retain`.
std::vector<dsk_eager_tensor*> backward(dsk_eager& eager, dsk_eager_tensor& loss, dsk_eager_tensor* const* wrt,
                                        size_t count, bool retain);

}  // namespace dsk::kernel
