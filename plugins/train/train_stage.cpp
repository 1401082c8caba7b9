// The `train` stage: trains a classifier on a dataset with an optimizer, evaluates it on the test
// split (and on a validation split held out of the training set, `validation_fraction`) after
// every epoch, checkpoints, and resumes bit for bit from its last checkpoint.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <dsk/dsk_random.hpp>

#include "checkpoint.h"
#include "evaluation.h"
#include "sample_order.h"
#include "stages.h"

namespace fs = std::filesystem;

namespace dsk::train {

void validate_all(const std::vector<std::function<void()>>& checks) {
    std::string messages;
    for (const auto& check : checks) {
        try {
            check();
        } catch (const Error& e) {
            messages += (messages.empty() ? "" : "\n") + std::string(e.what());
        }
    }
    if (!messages.empty()) throw Error(DSK_INVALID_ARGUMENT, messages);
}

namespace {

using Clock = std::chrono::steady_clock;
const char* const kOptimizerReserved[] = {"name", nullptr};

struct Optimizer {
    const dsk_optimizer_iface* iface = nullptr;
    dsk_optimizer* instance = nullptr;
    ~Optimizer() {
        if (instance) iface->destroy(instance);
    }
    double get(const char* name) const {
        double v = 0;
        check(iface->get_hyperparameter(instance, name, &v));
        return v;
    }
};

// With update = "host", the optimizer's step() updates host memory (it reads and writes `data`).
// When the session keeps parameters or gradients in device-only memory (a GPU backend), they go
// through host copies around each step: read before, parameters written back after. Said once
// in the log, with the bytes per step. The default, update = "graph", keeps parameters and
// optimizer state resident on the device instead (AdamUpdate / SGDUpdate nodes).
class HostStagedStep {
  public:
    void stage(const Session& session, const std::vector<dsk_value_id>& param_ids,
               const std::vector<dsk_value_id>& grad_ids, std::vector<dsk_tensor_desc>& params,
               std::vector<dsk_tensor_desc>& grads, const StageContext& ctx) {
        active_ = false;
        for (size_t i = 0; i < params.size(); ++i) active_ = active_ || !params[i].data || !grads[i].data;
        if (!active_) return;
        host_.resize(params.size() * 2);
        uint64_t bytes = 0;
        for (size_t i = 0; i < params.size(); ++i) {
            for (int k = 0; k < 2; ++k) {
                dsk_tensor_desc& d = k == 0 ? params[i] : grads[i];
                std::vector<float>& buffer = host_[2 * i + static_cast<size_t>(k)];
                buffer.resize(static_cast<size_t>(numel(d)));
                const dsk_tensor_desc host = host_tensor(DSK_DTYPE_F32, shape_of(d), buffer.data());
                session.read(k == 0 ? param_ids[i] : grad_ids[i], host);
                d = host;
                bytes += buffer.size() * sizeof(float) * (k == 0 ? 2 : 1);
            }
        }
        if (!logged_) {
            ctx.warn("the session keeps parameters in device memory and the optimizer updates host memory: "
                     "parameters and gradients cross to the host every step (" + std::to_string(bytes) +
                     " bytes per step)");
            logged_ = true;
        }
    }
    void write_back(const Session& session, const std::vector<dsk_value_id>& param_ids) const {
        if (!active_) return;
        for (size_t i = 0; i < param_ids.size(); ++i) {
            const std::vector<float>& buffer = host_[2 * i];
            const dsk_tensor_desc d = session.tensor(param_ids[i]);
            session.write(param_ids[i], host_tensor(DSK_DTYPE_F32, shape_of(d), const_cast<float*>(buffer.data())));
        }
    }

  private:
    std::vector<std::vector<float>> host_;  // [2i] parameter i, [2i + 1] its gradient
    bool active_ = false;
    bool logged_ = false;
};

void validate(StageContext& ctx) {
    const Config stage = ctx.config();
    validate_all({[&] { check_model_config(ctx); },
                  [&] {
                      const auto& optimizer = ctx.provider<dsk_optimizer_iface>("optimizer", stage.get<std::string>("optimizer.name"));
                      ctx.check_config("optimizer", optimizer.params, optimizer.param_count, kOptimizerReserved);
                  },
                  [&] {
                      if (stage.has("test_data") && !stage.has("test_data.split"))
                          throw Error(DSK_INVALID_ARGUMENT, stage.path("test_data") + " needs a split (e.g. split = \"test\")");
                  },
                  [&] {
                      // The range here; whether the fraction leaves samples on both sides once the
                      // data's size is known (split_for_validation, when the stage starts).
                      const double fraction = stage.get<double>("validation_fraction");
                      if (!(fraction >= 0 && fraction < 1)) split_for_validation(0, fraction, stage.path("validation_fraction").c_str());
                  },
                  [&] { check_dataset_config(ctx, "train_data"); },
                  [&] {
                      if (stage.has("test_data")) check_dataset_config(ctx, "test_data");
                  }});
}

const char* const kUpdateModes[] = {"graph", "host", nullptr};

void run(StageContext& ctx) {
    const Config stage = ctx.config();
    const int64_t epochs = stage.get<int64_t>("epochs"), batch = stage.get<int64_t>("batch_size");
    const int64_t classes = stage.get<int64_t>("classes"), eval_batch = stage.get<int64_t>("eval_batch_size");
    const int64_t checkpoint_every = stage.get<int64_t>("checkpoint_every");
    const uint64_t seed = static_cast<uint64_t>(stage.get<int64_t>("seed"));
    const std::string device = stage.get<std::string>("device");
    const std::string model_name = stage.get<std::string>("model.name");
    const std::string stage_name = stage.get<std::string>("name");

    DatasetReader train_data(ctx, "train_data");
    std::unique_ptr<DatasetReader> test_data;
    if (stage.has("test_data")) test_data = std::make_unique<DatasetReader>(ctx, "test_data");
    // The samples trained on and those held out for validation (none unless validation_fraction > 0).
    const double validation_fraction = stage.get<double>("validation_fraction");
    const ValidationSplit split = split_for_validation(train_data.size(), validation_fraction, stage.path("validation_fraction").c_str());
    const bool validating = !split.validation.empty();
    const uint64_t train_samples = split.train.size();
    const int64_t batches = static_cast<int64_t>(train_samples) / batch;  // the last partial batch is dropped
    if (batches == 0)
        throw Error(DSK_INVALID_ARGUMENT, stage.path("batch_size") + " = " + std::to_string(batch) + " exceeds the " +
                                              std::to_string(train_samples) + " training samples" +
                                              (validating ? " left after " + stage.path("validation_fraction") + " holds out " +
                                                                std::to_string(split.validation.size()) + "; lower one of them"
                                                          : std::string()));

    Classifier train_model(ctx, stage, train_data.image_shape(), classes, batch, true);

    Optimizer opt;
    opt.iface = &ctx.provider<dsk_optimizer_iface>("optimizer", stage.get<std::string>("optimizer.name"));
    check(opt.iface->create(opt.iface->self, stage.table("optimizer"), &opt.instance), "creating the optimizer");
    check(opt.iface->set_hyperparameter(opt.instance, "steps_per_epoch", static_cast<double>(batches)));
    check(opt.iface->set_hyperparameter(opt.instance, "total_steps", static_cast<double>(batches * epochs)));
    // The update as graph nodes (on the parameters' device, in the compiled step), or the
    // optimizer's step() on host memory after each run.
    const bool graph_update = stage.get<std::string>("update") == "graph";
    std::vector<dsk_value_id> targets = {train_model.loss};
    if (graph_update) {
        if (!DSK_HAS_MEMBER(opt.iface, dsk_optimizer_iface, feed_update) || !opt.iface->build_update || !opt.iface->feed_update)
            throw Error(DSK_UNIMPLEMENTED, stage.path("update") + " = \"graph\": optimizer '" + std::string(opt.iface->name) +
                                               "' cannot update in a graph (its plugin has no build_update); set update = \"host\"");
        std::vector<dsk_value_id> updates(train_model.trainable.size());
        check(opt.iface->build_update(opt.instance, train_model.graph.raw(), updates.size(), train_model.trainable.data(),
                                      train_model.gradients.data(), updates.data()),
              "adding the optimizer's update to the training graph");
        train_model.add_new_variables();  // the optimizer's state: saved in checkpoints with the weights
        targets.insert(targets.end(), updates.begin(), updates.end());
    } else {
        targets.insert(targets.end(), train_model.gradients.begin(), train_model.gradients.end());
    }
    Session session(ctx.raw(), train_model.graph, device, seed);
    std::unique_ptr<Classifier> eval_model;
    std::unique_ptr<Session> eval_session;
    if (test_data || validating) {
        eval_model = std::make_unique<Classifier>(ctx, stage, test_data ? test_data->image_shape() : train_data.image_shape(), classes,
                                                  eval_batch, false);
        eval_session = std::make_unique<Session>(ctx.raw(), eval_model->graph, device, seed);
    }

    const fs::path checkpoints = fs::path(ctx.run_dir()) / stage_name / "checkpoints";
    // A run directory is new or empty unless resumed, so an existing folder means a resume.
    const bool resuming = fs::exists(checkpoints);
    fs::create_directories(checkpoints);
    const std::string last = (checkpoints / "last.safetensors").string();
    TrainingState state;
    if (fs::exists(last)) {
        state = load_checkpoint(last, train_model, session, {opt.iface, opt.instance});
        session.set_run_count(state.session_runs);
        ctx.info("resuming from " + last + ": epoch " + std::to_string(state.epoch) + ", batch " +
                 std::to_string(state.batch) + ", step " + std::to_string(state.step));
    } else if (resuming) {
        ctx.info("resuming: " + checkpoints.string() + " holds no last.safetensors (the run stopped before its first "
                 "checkpoint; checkpoint_every = " + std::to_string(checkpoint_every) + "), so training starts from scratch");
    }
    // Serialises once; at the end of an epoch writes the epoch's file, then last.safetensors.
    auto save = [&](const std::vector<std::string>& paths) {
        state.session_runs = session.run_count();
        save_checkpoint(paths, train_model, session, {opt.iface, opt.instance}, state, model_name);
    };

    ctx.info("model " + model_name + ": " + std::to_string(train_model.parameter_count) + " parameters; " +
             std::to_string(train_samples) + " training samples, " + std::to_string(batches) + " batches of " +
             std::to_string(batch) + " per epoch" +
             (validating ? "; " + std::to_string(split.validation.size()) + " samples held out for validation" : std::string()));
    std::vector<float> images(static_cast<size_t>(batch * train_data.image_size()));
    std::vector<int64_t> labels(static_cast<size_t>(batch));
    std::vector<int64_t> image_shape = {batch};
    image_shape.insert(image_shape.end(), train_data.image_shape().begin(), train_data.image_shape().end());
    std::vector<dsk_tensor_desc> params(train_model.trainable.size()), grads(train_model.trainable.size());
    HostStagedStep host_step;
    const int64_t log_every = stage.get<int64_t>("log_every");

    Evaluation final_eval, final_validation;
    // The model as it stands, on the held-out samples (read without augmentation).
    auto validate_model = [&] {
        copy_variables(train_model, session, *eval_model, *eval_session);
        return evaluate(*eval_model, *eval_session, train_data, split.validation, classes, eval_batch);
    };
    double images_per_second = 0;
    const bool already_trained = state.epoch >= epochs;  // resumed after the last epoch
    const auto stage_start = Clock::now();
    if (!already_trained)
        ctx.info(std::string("epoch  train_loss  test_loss  test_acc") + (validating ? "  valid_loss  valid_acc" : "") +
                 "    time_s     img/s");
    for (int64_t epoch = state.epoch; epoch < epochs; ++epoch) {
        // The epoch's order of the training samples: drawn from (seed, epoch) only, so a resumed
        // run sees the same order.
        const std::vector<uint64_t> order = permutation(train_samples, mix(seed, static_cast<uint64_t>(epoch)));
        const auto epoch_start = Clock::now();
        // The epoch so far: non-zero only when resuming mid-epoch, so that its train_loss and
        // images_per_second cover the whole epoch, as in an uninterrupted run.
        double loss_sum = state.epoch_loss_sum;
        int64_t loss_count = state.epoch_loss_count;
        const double earlier_seconds = state.epoch_seconds;
        auto epoch_seconds = [&] { return earlier_seconds + std::chrono::duration<double>(Clock::now() - epoch_start).count(); };
        for (int64_t b = state.batch; b < batches; ++b) {
            if (ctx.should_stop()) {
                state.batch = b;
                state.epoch_loss_sum = loss_sum;
                state.epoch_loss_count = loss_count;
                state.epoch_seconds = epoch_seconds();
                save({last});
                throw Error(DSK_CANCELLED, "stopped at epoch " + std::to_string(epoch + 1) + ", batch " +
                                               std::to_string(b) + "; checkpoint " + last +
                                               " (continue with dsk run --resume " + ctx.run_dir() + ")");
            }
            std::vector<uint64_t> indices(static_cast<size_t>(batch));
            for (int64_t i = 0; i < batch; ++i) indices[static_cast<size_t>(i)] = split.train[order[static_cast<size_t>(b * batch + i)]];
            train_data.read(indices, mix(mix(seed, static_cast<uint64_t>(epoch)), static_cast<uint64_t>(b)) | 1,
                            images.data(), labels.data());
            train_data.check_labels(indices, labels.data(), classes);
            session.write(train_model.images, host_tensor(DSK_DTYPE_F32, image_shape, images.data()));
            session.write(train_model.labels, host_tensor(DSK_DTYPE_I64, {batch}, labels.data()));
            if (graph_update) {
                check(opt.iface->feed_update(opt.instance, session.raw()), "optimizer step");
                session.run(targets);
            } else {
                session.run(targets);
                for (size_t i = 0; i < params.size(); ++i) {
                    params[i] = session.tensor(train_model.trainable[i]);
                    grads[i] = session.tensor(train_model.gradients[i]);
                }
                host_step.stage(session, train_model.trainable, train_model.gradients, params, grads, ctx);
                check(opt.iface->step(opt.instance, session.raw(), params.size(), params.data(), grads.data()), "optimizer step");
                host_step.write_back(session, train_model.trainable);
            }
            ++state.step;
            float loss = 0;
            session.read(train_model.loss, host_tensor(DSK_DTYPE_F32, {}, &loss));
            if (!std::isfinite(loss))
                throw Error(DSK_INTERNAL, "the loss became " + std::to_string(loss) + " at epoch " + std::to_string(epoch + 1) +
                                              ", batch " + std::to_string(b) + "; lower the learning rate");
            loss_sum += loss;
            ++loss_count;
            if ((b + 1) % log_every == 0 || b + 1 == batches) {
                const double seconds = epoch_seconds();
                char text[160];
                std::snprintf(text, sizeof text, "epoch %lld/%lld  batch %lld/%lld  loss %.4f  lr %.2g  %.0f img/s",
                              static_cast<long long>(epoch + 1), static_cast<long long>(epochs), static_cast<long long>(b + 1),
                              static_cast<long long>(batches), loss_sum / static_cast<double>(loss_count), opt.get("lr"),
                              static_cast<double>(loss_count * batch) / std::max(seconds, 1e-9));
                ctx.progress(static_cast<double>(epoch * batches + b + 1) / static_cast<double>(epochs * batches), text);
            }
        }
        const double seconds = epoch_seconds();
        const double train_loss = loss_count ? loss_sum / static_cast<double>(loss_count) : 0.0;
        images_per_second = static_cast<double>(loss_count * batch) / std::max(seconds, 1e-9);
        state.epoch = epoch + 1;
        state.batch = 0;
        state.epoch_loss_sum = 0;
        state.epoch_loss_count = 0;
        state.epoch_seconds = 0;
        state.train_loss = train_loss;
        ctx.metric("train_loss", train_loss, epoch + 1);
        ctx.metric("images_per_second", images_per_second, epoch + 1);
        ctx.metric("epoch_time_s", seconds, epoch + 1);
        char line[200], test_columns[64] = "", validation_columns[64] = "";
        if (test_data) {
            copy_variables(train_model, session, *eval_model, *eval_session);
            final_eval = evaluate(*eval_model, *eval_session, *test_data, classes, eval_batch);
            state.test_accuracy_by_epoch.push_back(final_eval.accuracy);
            state.test_loss_by_epoch.push_back(final_eval.loss);
            ctx.metric("test_accuracy", final_eval.accuracy, epoch + 1);
            ctx.metric("test_loss", final_eval.loss, epoch + 1);
            std::snprintf(test_columns, sizeof test_columns, "%9.4f  %8.4f", final_eval.loss, final_eval.accuracy);
        } else {
            std::snprintf(test_columns, sizeof test_columns, "%9s  %8s", "-", "-");
        }
        if (validating) {
            final_validation = validate_model();
            state.validation_accuracy_by_epoch.push_back(final_validation.accuracy);
            state.validation_loss_by_epoch.push_back(final_validation.loss);
            ctx.metric("validation_accuracy", final_validation.accuracy, epoch + 1);
            ctx.metric("validation_loss", final_validation.loss, epoch + 1);
            std::snprintf(validation_columns, sizeof validation_columns, "  %10.4f  %9.4f", final_validation.loss,
                          final_validation.accuracy);
        }
        std::snprintf(line, sizeof line, "%5lld  %10.4f  %s%s  %8.1f  %8.0f", static_cast<long long>(epoch + 1), train_loss,
                      test_columns, validation_columns, seconds, images_per_second);
        ctx.info(line);
        if ((checkpoint_every > 0 && state.epoch % checkpoint_every == 0) || state.epoch == epochs) {
            char name[64];
            std::snprintf(name, sizeof name, "epoch-%04lld.safetensors", static_cast<long long>(state.epoch));
            save({(checkpoints / name).string(), last});
        }
    }
    if (already_trained && test_data) {  // resumed after the last epoch: report it again
        copy_variables(train_model, session, *eval_model, *eval_session);
        final_eval = evaluate(*eval_model, *eval_session, *test_data, classes, eval_batch);
    }
    if (already_trained && validating) final_validation = validate_model();

    Table results = ctx.results();
    if (test_data) {
        final_eval.write_results(results);
        results.set("test_accuracy_by_epoch", state.test_accuracy_by_epoch);
        results.set("test_loss_by_epoch", state.test_loss_by_epoch);
    }
    if (validating) {
        final_validation.write_totals(results, "validation");
        results.set("validation_accuracy_by_epoch", state.validation_accuracy_by_epoch);
        results.set("validation_loss_by_epoch", state.validation_loss_by_epoch);
    }
    results.set("train_loss", state.train_loss);
    results.set("epochs", epochs);
    results.set("steps", state.step);
    results.set("images_per_second", images_per_second);
    results.set("train_time_s", std::chrono::duration<double>(Clock::now() - stage_start).count());
    results.set("parameters", train_model.parameter_count);
    results.set("model", model_name);
    results.set("checkpoint", last);
    if (test_data) {
        char text[96];
        std::snprintf(text, sizeof text, "test accuracy %.4f (%s, %lld epochs)", final_eval.accuracy, model_name.c_str(),
                      static_cast<long long>(epochs));
        ctx.info(text);
    }
}

}  // namespace

Stage train_stage() {
    return {"train",
            "Trains a classifier: model, optimizer, datasets; evaluates on the test split and an optional validation "
            "split each epoch; checkpoints",
            {required(param_table("model", "the model: name = \"mlp\" | \"cnn\" | ... and its keys")),
             param(DSK_PARAM_TABLE, "optimizer", "the optimizer: name = \"adam\" | \"sgd\" | \"adamw\" and its keys",
                   "{ name = \"adam\" }"),
             param(DSK_PARAM_TABLE, "train_data", "the training set: reader (default \"idx\") and its keys",
                   "{ split = \"train\" }"),
             param_table("test_data", "the test set, evaluated after every epoch (optional)"),
             param_float("validation_fraction",
                         "part of the training set held out for validation, in [0, 1): the same samples whatever the seed, "
                         "never trained on nor augmented, evaluated after every epoch (0: none)",
                         "0.0"),
             param_int("epochs", "passes over the training set", "10", 1, 100000),
             param_int("batch_size", "samples per step (the last partial batch is dropped)", "128", 1, 1 << 20),
             param_int("eval_batch_size", "samples per evaluation batch", "1000", 1, 1 << 20),
             param_int("classes", "number of classes", "10", 2, 1 << 20),
             param_int("seed", "seed of initialisation, shuffling, augmentation and dropout", "0", 0, 4.6e18),
             param_int("checkpoint_every", "epochs between checkpoints (0: only at the end)", "1", 0, 100000),
             param_int("log_every", "batches between progress updates", "50", 1, 1 << 20),
             param_string("device", "device backend (empty: the pipeline's preference)", "\"\""),
             param_string("update",
                          "graph: the optimizer's update runs as ops on the parameters' device, in the compiled "
                          "step; host: the optimizer steps on host memory after each run",
                          "\"graph\"", kUpdateModes)},
            run,
            validate};
}

}  // namespace dsk::train
