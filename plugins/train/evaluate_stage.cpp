// The `evaluate` stage: a checkpoint's accuracy, loss, per-class accuracy and confusion matrix
// on a dataset (by default the last checkpoint of this run's `train` stage).
#include <filesystem>

#include "checkpoint.h"
#include "evaluation.h"
#include "stages.h"

namespace fs = std::filesystem;

namespace dsk::train {
namespace {

void validate(StageContext& ctx) {
    validate_all({[&] { check_model_config(ctx); },
                  [&] {
                      if (!ctx.config().has("test_data.split"))
                          throw Error(DSK_INVALID_ARGUMENT, ctx.config().path("test_data") + " needs a split (e.g. split = \"test\")");
                      check_dataset_config(ctx, "test_data");
                  }});
}

void run(StageContext& ctx) {
    const Config stage = ctx.config();
    std::string checkpoint = stage.get<std::string>("checkpoint");
    if (checkpoint.empty())
        checkpoint = (fs::path(ctx.run_dir()) / stage.get<std::string>("from_stage") / "checkpoints" / "last.safetensors").string();
    if (!fs::exists(checkpoint))
        throw Error(DSK_NOT_FOUND, checkpoint + ": no such checkpoint; set " + stage.path("checkpoint") +
                                       " or run a train stage named '" + stage.get<std::string>("from_stage") + "' before this one");
    const int64_t classes = stage.get<int64_t>("classes"), batch = stage.get<int64_t>("batch_size");
    DatasetReader data(ctx, "test_data");
    Classifier model(ctx, stage, data.image_shape(), classes, batch, false);
    Session session(ctx.raw(), model.graph, stage.get<std::string>("device"), 0);
    load_checkpoint(checkpoint, model, session, {nullptr, nullptr});
    Evaluation e = evaluate(model, session, data, classes, batch);
    Table results = ctx.results();
    e.write_results(results);
    results.set("checkpoint", checkpoint);
    ctx.metric("test_accuracy", e.accuracy, 0);
    ctx.metric("test_loss", e.loss, 0);
    char text[128];
    std::snprintf(text, sizeof text, "test accuracy %.4f, loss %.4f on %llu samples", e.accuracy, e.loss,
                  static_cast<unsigned long long>(e.samples));
    ctx.info(text);
}

}  // namespace

Stage evaluate_stage() {
    return {"evaluate",
            "Evaluates a checkpoint: accuracy, loss, per-class accuracy and confusion matrix",
            {required(param_table("model", "the model the checkpoint was trained with")),
             required(param_table("test_data", "the dataset: reader (default \"idx\"), split and its keys")),
             param_string("checkpoint", "a safetensors checkpoint (empty: from_stage's last one in this run)", "\"\""),
             param_string("from_stage", "the train stage whose last checkpoint to use", "\"train\""),
             param_int("batch_size", "samples per batch", "1000", 1, 1 << 20),
             param_int("classes", "number of classes", "10", 2, 1 << 20),
             param_string("device", "device backend (empty: the pipeline's preference)", "\"\"")},
            run,
            validate};
}

}  // namespace dsk::train
