#include "checkpoint.h"

#include <charconv>
#include <cstring>
#include <type_traits>

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

const std::string& metadata_text(const SafetensorsFile& file, const std::string& path, const char* key) {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end()) throw Error(DSK_DATA_LOSS, path + ": checkpoint metadata lacks '" + key + "'");
    return it->second;
}

[[noreturn]] void bad_field(const std::string& path, const char* key, const std::string& text, const char* what) {
    throw Error(DSK_DATA_LOSS, path + ": checkpoint metadata '" + key + "' = \"" + text + "\" is not " + what +
                                   " (the file is damaged; resume from another checkpoint or start a new run)");
}

// T: an integer type or double. The whole of `text` must be the number.
template <class T>
bool parse_number(const std::string& text, T& out) {
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, out);
    return !text.empty() && error == std::errc() && stop == end;
}

template <class T>
T metadata_number(const SafetensorsFile& file, const std::string& path, const char* key) {
    const std::string& text = metadata_text(file, path, key);
    T value{};
    if (!parse_number(text, value)) bad_field(path, key, text, std::is_integral_v<T> ? "an integer" : "a number");
    return value;
}

// Keys added after the first checkpoints were written: absent means 0 / empty.
template <class T>
T optional_number(const SafetensorsFile& file, const std::string& path, const char* key) {
    return file.metadata.count(key) ? metadata_number<T>(file, path, key) : T{};
}

std::vector<double> optional_list(const SafetensorsFile& file, const std::string& path, const char* key) {
    std::vector<double> out;
    auto it = file.metadata.find(key);
    if (it == file.metadata.end() || it->second.empty()) return out;
    const std::string& text = it->second;
    for (size_t start = 0; start <= text.size();) {
        size_t comma = text.find(',', start);
        if (comma == std::string::npos) comma = text.size();
        double value = 0;
        if (!parse_number(text.substr(start, comma - start), value)) bad_field(path, key, text, "a list of numbers");
        out.push_back(value);
        start = comma + 1;
    }
    return out;
}

// Shortest text that reads back to exactly `value` (so a resumed run reports the same numbers).
std::string number_text(double value) {
    char buf[32];
    const auto [end, error] = std::to_chars(buf, buf + sizeof buf, value);
    return error == std::errc() ? std::string(buf, end) : std::string("nan");
}

std::string list_text(const std::vector<double>& values) {
    std::string out;
    for (size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + number_text(values[i]);
    return out;
}

}  // namespace

void save_checkpoint(const std::vector<std::string>& paths, const Classifier& model, const Session& session,
                     OptimizerRef optimizer, const TrainingState& state, const std::string& model_name) {
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
    file.metadata["epoch_loss_sum"] = number_text(state.epoch_loss_sum);
    file.metadata["epoch_loss_count"] = std::to_string(state.epoch_loss_count);
    file.metadata["epoch_seconds"] = number_text(state.epoch_seconds);
    file.metadata["train_loss"] = number_text(state.train_loss);
    file.metadata["test_accuracy_by_epoch"] = list_text(state.test_accuracy_by_epoch);
    file.metadata["test_loss_by_epoch"] = list_text(state.test_loss_by_epoch);
    if (!state.validation_accuracy_by_epoch.empty()) {  // only with validation_fraction: other checkpoints stay as they were
        file.metadata["validation_accuracy_by_epoch"] = list_text(state.validation_accuracy_by_epoch);
        file.metadata["validation_loss_by_epoch"] = list_text(state.validation_loss_by_epoch);
    }
    write_safetensors(paths, file);
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
    state.epoch = metadata_number<int64_t>(file, path, "epoch");
    state.batch = metadata_number<int64_t>(file, path, "batch");
    state.step = metadata_number<int64_t>(file, path, "step");
    state.session_runs = metadata_number<uint64_t>(file, path, "session_runs");
    state.epoch_loss_sum = optional_number<double>(file, path, "epoch_loss_sum");
    state.epoch_loss_count = optional_number<int64_t>(file, path, "epoch_loss_count");
    state.epoch_seconds = optional_number<double>(file, path, "epoch_seconds");
    state.train_loss = optional_number<double>(file, path, "train_loss");
    state.test_accuracy_by_epoch = optional_list(file, path, "test_accuracy_by_epoch");
    state.test_loss_by_epoch = optional_list(file, path, "test_loss_by_epoch");
    state.validation_accuracy_by_epoch = optional_list(file, path, "validation_accuracy_by_epoch");
    state.validation_loss_by_epoch = optional_list(file, path, "validation_loss_by_epoch");
    if (state.epoch < 0 || state.batch < 0 || state.step < 0 || state.epoch_loss_count < 0)
        throw Error(DSK_DATA_LOSS, path + ": checkpoint metadata holds a negative epoch, batch, step or epoch_loss_count");
    if (state.test_accuracy_by_epoch.size() != state.test_loss_by_epoch.size() ||
        static_cast<int64_t>(state.test_accuracy_by_epoch.size()) > state.epoch)
        throw Error(DSK_DATA_LOSS, path + ": checkpoint metadata 'test_accuracy_by_epoch' and 'test_loss_by_epoch' do not "
                                       "both hold one value per completed epoch (" + std::to_string(state.epoch) + ")");
    if (state.validation_accuracy_by_epoch.size() != state.validation_loss_by_epoch.size() ||
        static_cast<int64_t>(state.validation_accuracy_by_epoch.size()) > state.epoch)
        throw Error(DSK_DATA_LOSS, path + ": checkpoint metadata 'validation_accuracy_by_epoch' and 'validation_loss_by_epoch' "
                                       "do not both hold one value per completed epoch (" + std::to_string(state.epoch) + ")");
    return state;
}

}  // namespace dsk::train
