#include "architecture.h"

namespace dsk::hpo {

namespace {

struct Op {
    const char* name;
    int64_t kernel;
    bool depthwise_separable;
};
const Op kOps[] = {{"conv3x3", 3, false}, {"conv5x5", 5, false}, {"dwsep3x3", 3, true}, {"dwsep5x5", 5, true}, {"skip", 0, false}};

const Op* find_op(const std::string& name) {
    for (const Op& op : kOps)
        if (name == op.name) return &op;
    return nullptr;
}

std::string op_names() {
    std::string out;
    for (const Op& op : kOps) out += (out.empty() ? "\"" : ", \"") + std::string(op.name) + "\"";
    return out;
}

int64_t int_of(const search::Value& v, const std::string& name) {
    if (v.type == DSK_VALUE_INT) return v.i;
    if (v.type == DSK_VALUE_FLOAT && v.f == std::round(v.f)) return static_cast<int64_t>(v.f);
    throw Error(DSK_INVALID_ARGUMENT, "nas: parameter '" + name + "' must be an integer, not " + v.literal());
}

const search::Value* get(const search::Assignment& a, const std::string& name) {
    const auto it = a.find(name);
    return it == a.end() ? nullptr : &it->second;
}

// The largest value a parameter can take (for depth: how many op<k> the space must declare).
int64_t max_of(const search::Param& p) {
    if (p.numeric()) return static_cast<int64_t>(p.high);
    int64_t m = 0;
    for (const search::Value& v : p.choices) m = std::max(m, int_of(v, p.name));
    return m;
}

}  // namespace

Architecture build_architecture(const search::Assignment& a, const std::vector<int64_t>& input, int64_t classes) {
    const search::Value* depth_value = get(a, "depth");
    if (!depth_value) throw Error(DSK_INVALID_ARGUMENT, "nas: the space has no 'depth' (the number of blocks)");
    const int64_t depth = int_of(*depth_value, "depth");
    const std::string activation = get(a, "activation") ? get(a, "activation")->s : "relu";
    const bool batch_norm = get(a, "batch_norm") && get(a, "batch_norm")->b;
    const int64_t hidden = get(a, "hidden") ? int_of(*get(a, "hidden"), "hidden") : 0;
    const double dropout = get(a, "dropout") ? get(a, "dropout")->number() : 0.0;
    if (!(dropout >= 0.0 && dropout < 1.0))
        throw Error(DSK_INVALID_ARGUMENT, "nas: dropout = " + get(a, "dropout")->literal() + " must be a number in [0, 1)");

    Architecture arch;
    std::string layers = "[";
    auto add = [&](const std::string& layer) { layers += (layers.size() > 1 ? ", " : "") + layer; };
    int64_t channels = input.at(0), height = input.at(1), width = input.at(2);
    for (int64_t k = 1; k <= depth; ++k) {
        const std::string op_name = "op" + std::to_string(k), width_name = "width" + std::to_string(k);
        const search::Value* op_value = get(a, op_name);
        if (!op_value) throw Error(DSK_INVALID_ARGUMENT, "nas: depth = " + std::to_string(depth) + " but '" + op_name + "' is not set");
        const Op* op = find_op(op_value->s);
        if (!op) throw Error(DSK_INVALID_ARGUMENT, "nas: " + op_name + " = " + op_value->literal() + " is not one of " + op_names());
        if (op->kernel > 0) {
            const search::Value* w = get(a, width_name);
            if (!w) throw Error(DSK_INVALID_ARGUMENT, "nas: block " + std::to_string(k) + " (" + op->name + ") needs '" + width_name + "'");
            const int64_t out = int_of(*w, width_name);
            const search::Value* r = get(a, "residual" + std::to_string(k));
            const bool residual = r && r->b;
            // The block's op and batch norm; inside a residual layer when it has a skip connection.
            std::string block;
            auto put = [&](const std::string& layer) { block += (block.empty() ? "" : ", ") + layer; };
            const std::string pad = std::to_string(op->kernel / 2), kernel = std::to_string(op->kernel);
            if (op->depthwise_separable) {
                put("{ type = \"conv\", out = " + std::to_string(channels) + ", kernel = " + kernel + ", padding = " + pad +
                    ", groups = " + std::to_string(channels) + " }");
                put("{ type = \"conv\", out = " + std::to_string(out) + ", kernel = 1 }");
                arch.parameters += channels * op->kernel * op->kernel + channels + channels * out + out;
            } else {
                put("{ type = \"conv\", out = " + std::to_string(out) + ", kernel = " + kernel + ", padding = " + pad + " }");
                arch.parameters += channels * out * op->kernel * op->kernel + out;
            }
            if (batch_norm) {
                put("{ type = \"batchnorm\" }");
                arch.parameters += 2 * out;
            }
            if (residual) {
                add("{ type = \"residual\", layers = [" + block + "] }");
                if (channels != out) arch.parameters += channels * out + out;  // the 1x1 projection
            } else {
                add(block);
            }
            channels = out;
            add("{ type = \"activation\", kind = \"" + activation + "\" }");
            arch.summary += (arch.summary.empty() ? "" : " ") + std::string(op->name) + ":" + std::to_string(out) + (residual ? "+res" : "");
        } else {
            arch.summary += (arch.summary.empty() ? "" : " ") + std::string("skip");
        }
        if (height >= 2 && width >= 2) {
            add("{ type = \"maxpool\", kernel = 2 }");
            height /= 2, width /= 2;
        }
    }
    add("{ type = \"flatten\" }");
    int64_t features = channels * height * width;
    if (hidden > 0) {
        add("{ type = \"linear\", out = " + std::to_string(hidden) + " }");
        add("{ type = \"activation\", kind = \"" + activation + "\" }");
        arch.parameters += features * hidden + hidden;
        features = hidden;
    }
    if (dropout > 0) add("{ type = \"dropout\", p = " + search::Value::float_literal(dropout) + " }");
    add("{ type = \"linear\" }");
    arch.parameters += features * classes + classes;
    arch.layers = layers + "]";
    arch.summary += " | " + activation + (batch_norm ? " bn" : "") + (hidden > 0 ? " | hidden " + std::to_string(hidden) : "") +
                    (dropout > 0 ? " | dropout " + search::Value::float_literal(dropout) : "");
    return arch;
}

void check_architecture_space(const search::Space& space) {
    const search::Param* depth = space.find("depth");
    if (!depth || depth->type == search::ParamType::Float)
        throw Error(DSK_INVALID_ARGUMENT, "nas: the space needs depth = { type = \"int\", low = 1, high = 4 } (or categorical of ints): "
                                          "the number of blocks");
    const int64_t max_depth = max_of(*depth);
    for (int64_t k = 1; k <= max_depth; ++k) {
        const std::string op = "op" + std::to_string(k);
        const search::Param* p = space.find(op);
        if (!p || p->type != search::ParamType::Categorical)
            throw Error(DSK_INVALID_ARGUMENT, "nas: depth can be " + std::to_string(max_depth) + ", so the space needs " + op +
                                                  " = { type = \"categorical\", choices = [" + op_names() + "] }");
        for (const search::Value& v : p->choices)
            if (v.type != DSK_VALUE_STRING || !find_op(v.s))
                throw Error(DSK_INVALID_ARGUMENT, "nas: " + op + " choice " + v.literal() + " is not one of " + op_names());
    }
    for (const search::Param& p : space.params()) {
        if (p.name.rfind("residual", 0) == 0) {
            bool booleans = p.type == search::ParamType::Categorical;
            for (const search::Value& v : p.choices) booleans = booleans && v.type == DSK_VALUE_BOOL;
            if (!booleans)
                throw Error(DSK_INVALID_ARGUMENT, "nas: " + p.name + " must be { type = \"categorical\", choices = [true, false] }: "
                                                  "a skip connection around block " + p.name.substr(8));
        }
        const bool known = p.name == "depth" || p.name == "activation" || p.name == "batch_norm" || p.name == "hidden" ||
                           p.name == "dropout" || p.name.rfind("op", 0) == 0 || p.name.rfind("width", 0) == 0 || p.name.rfind("residual", 0) == 0;
        if (!known)
            throw Error(DSK_INVALID_ARGUMENT, "nas: the space parameter '" + p.name + "' is not part of an architecture (depth, op<k>, "
                                              "width<k>, residual<k>, activation, batch_norm, hidden, dropout); search other keys with an hpo stage");
    }
}

}  // namespace dsk::hpo
