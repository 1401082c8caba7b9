#include "checkpoint.h"

#include <cstring>

namespace dsk::train {
namespace {

constexpr const char* kOptimizerTensor = "__optimizer_state__";
constexpr const char* kFormat = "dsk-checkpoint-1";

int32_t append(void* user, const void* data, size_t size) {
    auto* out = static_cast<std::vector<uint8_t>*>(user);
    const auto* p = static_cast<const uint8_t*>(data);
    out->insert(out->end(), p, p + size);
    return 0;
}

struct Cursor {
    const std::vector<uint8_t>* data;
    size_t at = 0;
};

int32_t consume(void* user, void* data, size_t size) {
    auto* c = static_cast<Cursor*>(user);
    if (c->at + size > c->data->size()) return 1;
    std::memcpy(data, c->data->data() + c->at, size);
    c->at += size;
    return 0;
}

int64_t metadata_int(const SafetensorsFile& file, const std::string& path, const char* key) {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end()) throw Error(DSK_DATA_LOSS, path + ": checkpoint metadata lacks '" + key + "'");
    return std::stoll(it->second);
}

}  // namespace

void save_checkpoint(const std::string& path, const Classifier& model, const Session& session, OptimizerRef optimizer,
                     const TrainingState& state, const std::string& model_name) {
    SafetensorsFile file;
    for (const auto& [name, id] : model.variables) {
        dsk_tensor_desc d = model.graph.desc(id);
        NamedTensor t{"F32", shape_of(d), std::vector<uint8_t>(static_cast<size_t>(numel(d)) * sizeof(float))};
        session.read(id, host_tensor(DSK_DTYPE_F32, t.shape, t.data.data()));
        file.tensors[name] = std::move(t);
    }
    if (optimizer.iface) {
        NamedTensor t{"U8", {}, {}};
        check(optimizer.iface->state_save(optimizer.optimizer, append, &t.data), "saving the optimizer state");
        t.shape = {static_cast<int64_t>(t.data.size())};
        file.tensors[kOptimizerTensor] = std::move(t);
        file.metadata["optimizer"] = optimizer.iface->name;
    }
    file.metadata["format"] = kFormat;
    file.metadata["model"] = model_name;
    file.metadata["epoch"] = std::to_string(state.epoch);
    file.metadata["batch"] = std::to_string(state.batch);
    file.metadata["step"] = std::to_string(state.step);
    file.metadata["session_runs"] = std::to_string(state.session_runs);
    write_safetensors(path, file);
}

TrainingState load_checkpoint(const std::string& path, const Classifier& model, const Session& session,
                              OptimizerRef optimizer) {
    SafetensorsFile file = read_safetensors(path);
    for (const auto& [name, id] : model.variables) {
        auto it = file.tensors.find(name);
        if (it == file.tensors.end())
            throw Error(DSK_DATA_LOSS, path + ": the checkpoint has no tensor '" + name + "' (was it saved from another model?)");
        const auto shape = model.graph.shape(id);
        if (it->second.dtype != "F32" || it->second.shape != shape)
            throw Error(DSK_DATA_LOSS, path + ": tensor '" + name + "' is " + it->second.dtype + " " + shape_text(it->second.shape) +
                                           ", the model needs F32 " + shape_text(shape));
        session.write(id, host_tensor(DSK_DTYPE_F32, shape, it->second.data.data()));
    }
    TrainingState state;
    if (!optimizer.iface) return state;
    auto opt = file.tensors.find(kOptimizerTensor);
    if (opt == file.tensors.end()) throw Error(DSK_DATA_LOSS, path + ": the checkpoint holds no optimizer state");
    Cursor cursor{&opt->second.data};
    check(optimizer.iface->state_load(optimizer.optimizer, consume, &cursor), (path + ": optimizer state").c_str());
    state.epoch = metadata_int(file, path, "epoch");
    state.batch = metadata_int(file, path, "batch");
    state.step = metadata_int(file, path, "step");
    state.session_runs = static_cast<uint64_t>(metadata_int(file, path, "session_runs"));
    return state;
}

}  // namespace dsk::train
