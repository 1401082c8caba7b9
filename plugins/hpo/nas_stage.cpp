// The `nas` stage: a study over architectures. The space names the architecture's parts
// (architecture.h); each trial trains the base pipeline with its model replaced by the
// `sequential` model those parts describe. Architectures over `max_parameters` are not trained:
// they are recorded failed with their size, and the strategy learns to avoid them.
#include <filesystem>

#include <dsk/dsk_file.hpp>

#include "architecture.h"
#include "hpo_stage.h"
#include "study_report.h"
#include "study_stage.h"

namespace fs = std::filesystem;

namespace dsk::hpo {

namespace {

std::vector<int64_t> input_shape(const Config& stage) {
    std::vector<int64_t> shape;
    for (size_t k = 0; k < stage.size("input"); ++k) shape.push_back(stage.get<int64_t>("input." + std::to_string(k)));
    if (shape.size() != 3) throw Error(DSK_INVALID_ARGUMENT, "nas: input must be [channels, height, width], e.g. [1, 28, 28]");
    return shape;
}

StudyHooks nas_hooks() {
    StudyHooks hooks;
    hooks.validate = [](StageContext& ctx, const search::Space& space) {
        check_architecture_space(space);
        input_shape(ctx.config());
    };
    hooks.configure = [](StageContext& ctx, const search::Space&, StudySettings& s) {
        const Config stage = ctx.config();
        const std::string model_key = stage.get<std::string>("model_key");
        const std::vector<int64_t> input = input_shape(stage);
        const int64_t classes = stage.get<int64_t>("classes");
        const int64_t max_parameters = stage.get<int64_t>("max_parameters");
        s.trial_settings = [=](const search::Assignment& a) {
            const Architecture arch = build_architecture(a, input, classes);
            return std::vector<std::string>{model_key + "={ name = \"sequential\", layers = " + arch.layers + " }"};
        };
        s.reject = [=](const search::Assignment& a) {
            const Architecture arch = build_architecture(a, input, classes);
            if (max_parameters > 0 && arch.parameters > max_parameters)
                return "the architecture has " + std::to_string(arch.parameters) + " parameters, more than max_parameters = " +
                       std::to_string(max_parameters) + " (" + arch.summary + ")";
            return std::string();
        };
    };
    hooks.export_best = [](StageContext& ctx, const search::Space&, const StudySettings& s, const TrialRecord& best) {
        const Config stage = ctx.config();
        const Architecture arch = build_architecture(best.params, input_shape(stage), stage.get<int64_t>("classes"));
        const std::string path = (fs::path(s.dir) / "best_architecture.toml").string();
        const std::string text = "# The best architecture of nas stage '" + s.stage_name + "' (trial " + std::to_string(best.id) + ", " +
                                 s.objective + " = " + search::Value::float_literal(best.objective) + "): " + arch.summary +
                                 "\n# Use it as a pipeline's model = { name = \"sequential\", layers = ... }; best.toml is the whole "
                                 "pipeline.\nparameters = " + std::to_string(arch.parameters) + "\nlayers = " + arch.layers + "\n";
        write_file_atomically(path, {{text.data(), text.size()}});
        Table results = ctx.results();
        results.set("best_architecture", path);
        results.set("best_architecture_parameters", arch.parameters);
        results.set("best_architecture_summary", arch.summary);
        ctx.info("best architecture (" + std::to_string(arch.parameters) + " parameters): " + arch.summary + "; " + path);
    };
    return hooks;
}

}  // namespace

Stage nas_stage() {
    std::vector<dsk_param_spec> params = study_params();
    params.push_back(param_string("model_key", "the pipeline key of the model table the architecture replaces", "\"stages.train.model\""));
    params.push_back(param_array("input", "the shape of one input sample: [channels, height, width]", "[1, 28, 28]"));
    params.push_back(param_int("classes", "outputs of the last layer", "10", 1, 1e9));
    params.push_back(param_int("max_parameters", "architectures with more parameters are not trained (0: no limit)", "0", 0, 9.2e18));
    return Stage{"nas",
                 "Neural architecture search: trains the base pipeline with sequential architectures chosen by a search strategy",
                 params,
                 [](StageContext& ctx) { run_study_stage(ctx, nas_hooks()); },
                 [](StageContext& ctx) { validate_study(ctx, nas_hooks()); }};
}

}  // namespace dsk::hpo
