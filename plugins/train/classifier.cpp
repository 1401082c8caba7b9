#include "classifier.h"

namespace dsk::train {
namespace {
const char* const kModelReserved[] = {"name", nullptr};
}

void check_model_config(const StageContext& ctx) {
    const Config stage = ctx.config();
    if (!stage.has("model.name"))
        throw Error(DSK_INVALID_ARGUMENT, stage.path("model") + ": the model table needs a name (e.g. model = { name = \"mlp\" })");
    const auto& model = ctx.provider<dsk_model_iface>("model", stage.get<std::string>("model.name"));
    ctx.check_config("model", model.params, model.param_count, kModelReserved);
}

Classifier::Classifier(const StageContext& ctx, const Config& stage, const std::vector<int64_t>& sample_shape,
                       int64_t classes, int64_t batch, bool training)
    : graph(ctx.raw()) {
    const std::string model_name = stage.get<std::string>("model.name");
    const auto& model = ctx.provider<dsk_model_iface>("model", model_name);
    std::vector<int64_t> shape = {batch};
    shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
    images = graph.input("images", DSK_DTYPE_F32, shape);
    labels = graph.input("labels", DSK_DTYPE_I64, {batch});
    check(model.build(model.self, graph.raw(), stage.table("model"), images, classes, training ? 1 : 0, &logits),
          ("building model '" + model_name + "'").c_str());
    const auto logit_shape = graph.shape(logits);
    if (logit_shape != std::vector<int64_t>{batch, classes})
        throw Error(DSK_INTERNAL, "model '" + model_name + "' produced logits " + shape_text(logit_shape) + ", not [" +
                                      std::to_string(batch) + ", " + std::to_string(classes) + "]");
    loss = graph.node("SoftmaxCrossEntropyLoss", {logits, labels});

    add_new_variables();
    if (training) {
        gradients.assign(trainable.size(), DSK_VALUE_NONE);
        check(host().graph_gradients(graph.raw(), loss, trainable.data(), trainable.size(), gradients.data()),
              "differentiating the loss");
        for (size_t i = 0; i < trainable.size(); ++i) {
            if (gradients[i] != DSK_VALUE_NONE) continue;
            std::string name;
            for (const auto& [variable, id] : variables)
                if (id == trainable[i]) name = variable;
            throw Error(DSK_INVALID_ARGUMENT, "model '" + model_name + "': the loss does not depend on trainable variable '" +
                                                  name + "', so it has no gradient; use it in the model or create it "
                                                  "without DSK_VARIABLE_TRAINABLE");
        }
    }
}

void copy_variables(const Classifier& from, const Session& from_session, const Classifier& to, const Session& to_session) {
    std::vector<float> buffer;
    for (const auto& [name, id] : to.variables) {
        auto it = from.variables.find(name);
        if (it == from.variables.end()) throw Error(DSK_INTERNAL, "variable '" + name + "' is missing from the training graph");
        const auto shape = to.graph.shape(id);
        if (from.graph.shape(it->second) != shape)
            throw Error(DSK_INTERNAL, "variable '" + name + "' has different shapes in the two graphs");
        dsk_tensor_desc d = to.graph.desc(id);
        buffer.resize(static_cast<size_t>(numel(d)));
        dsk_tensor_desc host_data = host_tensor(DSK_DTYPE_F32, shape, buffer.data());
        from_session.read(it->second, host_data);
        to_session.write(id, host_data);
    }
}

void Classifier::add_new_variables() {
    const size_t count = host().graph_variable_count(graph.raw());
    for (size_t i = 0; i < count; ++i) {
        dsk_value_id id = DSK_VALUE_NONE;
        const char* name = nullptr;
        uint32_t flags = 0;
        check(host().graph_variable_at(graph.raw(), i, &id, &name, &flags));
        if (!variables.emplace(name, id).second) continue;  // known already
        if (flags & DSK_VARIABLE_TRAINABLE) {
            trainable.push_back(id);
            parameter_count += numel(graph.desc(id));
        }
    }
}

}  // namespace dsk::train
