// The graph a classification stage runs: images -> model -> logits, softmax cross-entropy
// against the labels, and for training the gradients of every trainable variable.
#pragma once

#include <dsk/dsk_op.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dsk::train {

struct Classifier {
    // `model` is the stage's model table (its `name` picks the architecture).
    Classifier(const StageContext& ctx, const Config& stage, const std::vector<int64_t>& sample_shape, int64_t classes,
               int64_t batch, bool training);

    UniqueGraph graph;
    dsk_value_id images = DSK_VALUE_NONE, labels = DSK_VALUE_NONE, logits = DSK_VALUE_NONE, loss = DSK_VALUE_NONE;
    std::map<std::string, dsk_value_id> variables;  // every variable by name (checkpoints)
    std::vector<dsk_value_id> trainable, gradients;  // in creation order, pairwise
    int64_t parameter_count = 0;                     // trainable scalars

    // Adds to `variables` (and, if trainable, to `trainable`) the graph's variables not listed
    // yet: all of them at construction, an optimizer's state after build_update.
    void add_new_variables();
};

// Copies every variable from one session to another by name (a training graph's weights into
// the evaluation graph); throws when a name or shape does not match.
void copy_variables(const Classifier& from, const Session& from_session, const Classifier& to, const Session& to_session);

// The model table of a stage as the model provider's params see it (for validation).
void check_model_config(const StageContext& ctx);

}  // namespace dsk::train
