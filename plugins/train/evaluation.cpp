#include "evaluation.h"

#include <algorithm>
#include <numeric>

namespace dsk::train {

Evaluation evaluate(const Classifier& model, const Session& session, const DatasetReader& data, int64_t classes,
                    int64_t batch) {
    std::vector<uint64_t> all(data.size());
    std::iota(all.begin(), all.end(), 0);
    return evaluate(model, session, data, all, classes, batch);
}

Evaluation evaluate(const Classifier& model, const Session& session, const DatasetReader& data,
                    const std::vector<uint64_t>& samples, int64_t classes, int64_t batch) {
    Evaluation e;
    e.confusion.assign(static_cast<size_t>(classes), std::vector<int64_t>(static_cast<size_t>(classes), 0));
    std::vector<float> images, logits;
    std::vector<int64_t> labels;
    std::vector<uint64_t> indices;
    double loss_sum = 0;
    for (uint64_t start = 0; start < samples.size(); start += static_cast<uint64_t>(batch)) {
        const int64_t n = static_cast<int64_t>(std::min<uint64_t>(static_cast<uint64_t>(batch), samples.size() - start));
        indices.assign(samples.begin() + static_cast<std::ptrdiff_t>(start), samples.begin() + static_cast<std::ptrdiff_t>(start) + n);
        images.resize(static_cast<size_t>(n * data.image_size()));
        labels.resize(static_cast<size_t>(n));
        data.read(indices, 0, images.data(), labels.data());
        data.check_labels(indices, labels.data(), classes);  // before the loss kernel fails on one
        std::vector<int64_t> shape = {n};
        shape.insert(shape.end(), data.image_shape().begin(), data.image_shape().end());
        session.write(model.images, host_tensor(DSK_DTYPE_F32, shape, images.data()));
        session.write(model.labels, host_tensor(DSK_DTYPE_I64, {n}, labels.data()));
        session.run({model.logits, model.loss});
        logits.resize(static_cast<size_t>(n * classes));
        session.read(model.logits, host_tensor(DSK_DTYPE_F32, {n, classes}, logits.data()));
        float loss = 0;
        session.read(model.loss, host_tensor(DSK_DTYPE_F32, {}, &loss));
        loss_sum += static_cast<double>(loss) * static_cast<double>(n);
        for (int64_t i = 0; i < n; ++i) {
            const float* row = logits.data() + i * classes;
            const int64_t predicted = std::max_element(row, row + classes) - row;
            const int64_t truth = labels[static_cast<size_t>(i)];
            ++e.confusion[static_cast<size_t>(truth)][static_cast<size_t>(predicted)];
        }
    }
    e.samples = samples.size();
    int64_t correct = 0;
    for (int64_t c = 0; c < classes; ++c) {
        int64_t total = 0;
        for (int64_t p = 0; p < classes; ++p) total += e.confusion[c][p];
        correct += e.confusion[c][c];
        e.per_class_accuracy.push_back(total ? static_cast<double>(e.confusion[c][c]) / static_cast<double>(total) : 0.0);
    }
    e.accuracy = e.samples ? static_cast<double>(correct) / static_cast<double>(e.samples) : 0.0;
    e.loss = e.samples ? loss_sum / static_cast<double>(e.samples) : 0.0;
    return e;
}

void Evaluation::write_totals(Table& results, const std::string& prefix) const {
    results.set(prefix + "_accuracy", accuracy);
    results.set(prefix + "_loss", loss);
    results.set(prefix + "_samples", static_cast<int64_t>(samples));
}

void Evaluation::write_results(Table& results) const {
    write_totals(results, "test");
    results.set("per_class_accuracy", per_class_accuracy);
    // Rows by true class: confusion_matrix."3"[5] = samples of class 3 predicted as 5.
    for (size_t c = 0; c < confusion.size(); ++c) results.set("confusion_matrix." + std::to_string(c), confusion[c]);
}

}  // namespace dsk::train
